"""A daemon thread that catches a follower of the event log up whenever it is woken, until stopped."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod

from projections.ports import DocumentStore


class CatchUpThread(ABC):
    """Base of the log followers (embedded runner, process manager): wake, catch up, keep the last error.

    A subclass implements `catch_up()`; `_wake.set()` asks for a pass now (after `coalesce` seconds, to
    gather what follows), otherwise one runs every poll_interval. A failed pass is logged under the
    subclass's module and retried after poll_interval.
    """

    thread_name = "casestream-catch-up"
    failure_message = "catch-up failed; retrying"

    def __init__(self, poll_interval: float, coalesce: float = 0.0) -> None:
        self.poll_interval = poll_interval
        self.coalesce = coalesce
        self._last_error: str | None = None
        self._noted = False  # the current pass noted an error itself (a skipped event): it outlives the pass
        self._failed = False  # the last pass raised
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def last_error(self) -> str | None:
        """The last failure: of a pass (cleared by the next good one), or noted by a pass (an event it passed over;
        kept until a later pass handles events without noting one, so /readyz can show it)."""
        return self._last_error

    @last_error.setter
    def last_error(self, value: str | None) -> None:
        self._last_error = value
        self._noted = value is not None

    @abstractmethod
    def catch_up(self) -> object:
        """Handle whatever the log holds past this follower's position."""

    def next_wait(self) -> float:
        """Longest sleep before the next pass when nobody wakes the thread (a subclass may vary it)."""
        return self.poll_interval

    def _loop(self) -> None:
        log = logging.getLogger(type(self).__module__)
        while not self._stop.is_set():
            if self._wake.wait(self.next_wait()) and self.coalesce > 0:
                # under a stream of commands, handle them in batches rather than one pass per command
                time.sleep(self.coalesce)
            self._wake.clear()
            self._noted = False
            try:
                handled = self.catch_up()
            except Exception as exc:
                self._last_error, self._failed = repr(exc), True
                log.exception(self.failure_message)
                self._stop.wait(self.poll_interval)
                continue
            if not self._noted and (self._failed or handled):
                self._last_error = None
            self._failed = False

    def start(self) -> None:
        """Start the thread (once; a second call while it runs does nothing) and ask for a first pass."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
            self._thread.start()
            self._wake.set()

    @property
    def running(self) -> bool:
        """The thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Ask the thread to finish and wait for it (up to 10 s)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


class TrackedCatchUp(CatchUpThread):
    """A log follower behind the read models that stores its position as a tracking row (`tracking_name`) in the
    read-model store: catch_up() runs step() until there is nothing more, wait() blocks until a position is handled.
    """

    tracking_name = "catch-up"

    def __init__(self, documents: DocumentStore, poll_interval: float, coalesce: float = 0.0) -> None:
        super().__init__(poll_interval, coalesce)
        self.documents = documents
        self.position = documents.tracking(self.tracking_name)
        self._progress = threading.Condition()

    @abstractmethod
    def step(self) -> int:
        """Handle the next batch; how many events were read (0: nothing more for now)."""

    def catch_up(self) -> int:
        total = 0
        while n := self.step():
            total += n
        return total

    def wait(self, position: int, timeout: float) -> bool:
        """Block until position is handled; False on timeout."""
        with self._progress:
            return self._progress.wait_for(lambda: self.position >= position, timeout)

    def _advance(self, position: int) -> None:
        """Store position as handled (never backwards) and wake the waiters."""
        with self._progress:
            if position > self.position:
                self.documents.write([], (self.tracking_name, position))
                self.position = position
                self._progress.notify_all()
