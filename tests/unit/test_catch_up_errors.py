"""CatchUpThread.last_error: a failed pass is cleared by the next good one; an error a pass notes itself (an event
it passed over) outlives that pass, so /readyz can show it, until a later pass handles events without one."""

from __future__ import annotations

import threading
from collections import deque

from adapters.catch_up_thread import CatchUpThread


class Scripted(CatchUpThread):
    """A follower whose passes do what the test scripted: note an error, raise, or handle n events."""

    def __init__(self, script: list[object]) -> None:
        super().__init__(poll_interval=0.01)
        self.script = deque(script)
        self.passes = 0
        self.done = threading.Event()

    def catch_up(self) -> int:
        self.passes += 1
        if not self.script:
            self.done.set()
            return 0
        step = self.script.popleft()
        if isinstance(step, Exception):
            raise step
        if isinstance(step, str):
            self.last_error = step
            return 1
        assert isinstance(step, int)
        return step


def run(script: list[object]) -> Scripted:
    follower = Scripted(script)
    follower.start()
    try:
        assert follower.done.wait(10)
    finally:
        follower.stop()
    return follower


def test_an_error_noted_in_a_pass_outlives_the_pass_and_the_idle_ones_after_it() -> None:
    follower = run(["event at 7: ProcessNotDeployed('x')", 0, 0])
    assert follower.last_error == "event at 7: ProcessNotDeployed('x')"


def test_a_later_pass_that_handles_events_clears_a_noted_error() -> None:
    assert run(["event at 7: refused", 0, 3]).last_error is None


def test_a_failed_pass_is_cleared_by_the_next_good_one_even_when_idle() -> None:
    follower = run([RuntimeError("store down"), 0])
    assert follower.last_error is None and follower.passes >= 3

