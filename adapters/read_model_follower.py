"""Read models kept by another process: follows the embedded runner's tracking position in the shared SQLite file.

With `casestream serve --workers N` exactly one process runs the EmbeddedRunner (and the process manager); the
others append commands and answer queries from the same SQLite read models. Here such a process learns how far
those read models are (the runner stores its position with every batch, in the same transaction), so that
`wait_for` still means read-your-writes whichever process a client reaches, and hands the events the runner has
folded meanwhile to its own subscribers (the live feed), in log order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from adapters.catch_up_thread import CatchUpThread
from commands.ports import EventStore
from domain.events import Positioned
from projections.base import Projection
from projections.ports import DocumentStore

log = logging.getLogger(__name__)
Subscriber = Callable[[Sequence[Positioned]], None]
RUNNER = "embedded"  # the tracking row of adapters/embedded_runner.py's EmbeddedRunner
IDLE_POLL = 0.05  # how often the position is read while no one waits (the live feed's extra delay at most)
WAITING_POLL = 0.002  # ... while a query waits for a position (read-your-writes)


class TrackingFollower(CatchUpThread):
    """A ReadModelHost for a process that does not fold: position, wait and subscribers from the runner's tracking."""

    thread_name = "casestream-follower"
    failure_message = "following the read models failed; retrying"

    def __init__(self, store: EventStore, documents: DocumentStore, projections: Sequence[Projection],
                 *, batch_size: int = 2000, tracking: str = RUNNER) -> None:
        super().__init__(IDLE_POLL)
        self.store = store
        self.documents = documents
        self.tracking = tracking
        self.batch_size = batch_size
        self.types = frozenset(t.type_name() for p in projections for t in p.folds)
        self.position = documents.tracking(tracking)
        self._subscribers: list[Subscriber] = []
        self._progress = threading.Condition()
        self._waiting = 0
        store.on_append(lambda _position: self._wake.set())  # this process's own commands: look sooner

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call subscriber with the events of each step, once the read models hold them (the live feed)."""
        self._subscribers.append(subscriber)

    def step(self) -> int:
        """Move to the runner's stored position, handing subscribers what lies between; events passed."""
        target = self.documents.tracking(self.tracking)
        after = self.position
        if target <= after:
            return 0
        passed = 0
        while after < target:
            batch, last = (self.store.read_batch(after, min(self.batch_size, target - after), self.types)
                           if self._subscribers else ([], target))
            last = target if last <= after else min(last, target)  # nothing read (a gap): do not spin
            for subscriber in self._subscribers:
                try:
                    subscriber([p for p in batch if p.position <= last])
                except Exception:  # a subscriber's failure must not stop read-your-writes
                    log.exception("follower subscriber failed")
            passed += len(batch)
            after = last
            with self._progress:
                self.position = last
                self._progress.notify_all()
        return max(1, passed)

    def catch_up(self) -> int:
        return self.step()

    def next_wait(self) -> float:
        return WAITING_POLL if self._waiting else IDLE_POLL

    def wait(self, position: int, timeout: float) -> bool:
        """Block until the read models include position (read-your-writes); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._progress:
            if self.position >= position:
                return True
            self._waiting += 1
            try:
                while self.position < position:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._wake.set()
                    self._progress.wait(min(remaining, WAITING_POLL * 5))
            finally:
                self._waiting -= 1
        return True

    def lag(self) -> int:
        """How many events the read models are behind the log."""
        return max(0, self.store.max_position() - self.position)
