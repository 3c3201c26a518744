"""Windows of the log the embedded runner already read and decoded, kept for a follower of the same log
(EmbeddedRunner.share_windows): a follower that reaches a window takes its events from here instead of reading the
log again; one that falls behind the few kept reads the store itself."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

from domain.events import Positioned

KEPT = 64  # windows: a follower further behind than this reads the store


class OfferedWindows:
    """The runner's recent windows (after, last, decoded events), taken by one follower in log order."""

    def __init__(self, kept: int = KEPT) -> None:
        self._windows: deque[tuple[int, int, Sequence[Positioned]]] = deque(maxlen=kept)
        self._lock = threading.Lock()

    def offer(self, after: int, last: int, batch: Sequence[Positioned]) -> None:
        """Keep the decoded events of (after, last] (runner window listener)."""
        with self._lock:
            self._windows.append((after, last, batch))

    def __bool__(self) -> bool:
        return bool(self._windows)

    def take(self, position: int, limit: int | None = None) -> tuple[list[Positioned], int] | None:
        """The events after `position` of the kept window that covers it, up to its end or `limit` if that comes
        first, and where they end; None when no kept window starts at or before `position` (read the store).
        The part of a window past `limit` stays for the next take."""
        with self._lock:
            while self._windows and self._windows[0][1] <= position:
                self._windows.popleft()  # taken already
            if not self._windows or self._windows[0][0] > position:
                return None
            _after, last, events = self._windows[0]
            if limit is None or last <= limit:
                self._windows.popleft()
            else:  # the limit falls inside it: the rest stays
                self._windows[0] = (limit, last, events)
                last = limit
        return [p for p in events if position < p.position <= last], last
