"""Group commit: concurrent appends share one database transaction.

Whoever finds no commit in progress becomes the leader and writes every append queued so far in one
`insert_events` call; appends arriving meanwhile queue up for the next leader. A lone append is written
at once (no added latency); under load, N appends cost one transaction (and one table lock and fsync on
PostgreSQL). If the shared transaction hits a version conflict, each append of that group is retried
alone so that only the conflicting one fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eventsourcing.persistence import IntegrityError, StoredEvent

Insert = Callable[[Sequence[StoredEvent]], Sequence[int] | None]


@dataclass
class _Append:
    stored: Sequence[StoredEvent]
    done: threading.Event = field(default_factory=threading.Event)
    positions: list[int] = field(default_factory=list)
    error: BaseException | None = None
    lead: bool = False


class GroupCommitter:
    """Funnels concurrent inserts into shared transactions (at most max_group appends each)."""

    def __init__(self, insert: Insert, max_group: int = 128) -> None:
        self._insert = insert
        self._max_group = max_group
        self._lock = threading.Lock()
        self._queue: list[_Append] = []
        self._leading = False
        self.groups = 0
        self.appends = 0

    def insert(self, stored: Sequence[StoredEvent]) -> list[int]:
        """Store the events atomically (possibly together with other appends); return their positions."""
        request = _Append(stored)
        with self._lock:
            self._queue.append(request)
            lead = not self._leading
            if lead:
                self._leading = True
        if not lead:
            request.done.wait()
            if request.lead:  # leadership was handed to us before our own append was written
                request.done.clear()
                self._lead()
                request.done.wait()
        else:
            self._lead()
        if request.error is not None:
            raise request.error
        return request.positions

    def _lead(self) -> None:
        with self._lock:
            group = self._queue[: self._max_group]
            del self._queue[: self._max_group]
        try:
            self._write(group)
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.done.set()
                else:
                    self._leading = False
            for request in group:
                request.done.set()

    def _write(self, group: list[_Append]) -> None:
        self.groups += 1
        self.appends += len(group)
        if len(group) > 1:
            try:
                positions = list(self._insert([s for r in group for s in r.stored]) or [])
            except IntegrityError:
                pass  # somebody in the group lost a race: write them one by one below
            except BaseException as exc:
                for request in group:
                    request.error = exc
                return
            else:
                offset = 0
                for request in group:
                    request.positions = positions[offset : offset + len(request.stored)]
                    offset += len(request.stored)
                return
        for request in group:
            try:
                request.positions = list(self._insert(request.stored) or [])
            except BaseException as exc:
                request.error = exc
