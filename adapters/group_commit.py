"""Group commit: concurrent appends share one database transaction (commands/coalesce.py does the gathering).

Under load, N appends cost one transaction (and one table lock and fsync on PostgreSQL); a lone append is written
at once. If the shared transaction hits a version conflict, each append of that group is retried alone so that
only the conflicting one fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from eventsourcing.persistence import IntegrityError, StoredEvent

from commands.coalesce import Coalescer

Insert = Callable[[Sequence[StoredEvent]], Sequence[int] | None]


class GroupCommitter:
    """Funnels concurrent inserts into shared transactions (at most max_group appends each)."""

    def __init__(self, insert: Insert, max_group: int = 128) -> None:
        self._insert = insert
        self._coalescer: Coalescer[Sequence[StoredEvent], list[int]] = Coalescer(self._write, max_group)

    @property
    def groups(self) -> int:
        return self._coalescer.groups

    @property
    def appends(self) -> int:
        return self._coalescer.items

    def insert(self, stored: Sequence[StoredEvent]) -> list[int]:
        """Store the events atomically (possibly together with other appends); return their positions."""
        return self._coalescer.submit(stored)

    def _write(self, group: list[Sequence[StoredEvent]]) -> list[list[int] | BaseException]:
        if len(group) > 1:
            try:
                positions = list(self._insert([s for stored in group for s in stored]) or [])
            except IntegrityError:
                pass  # somebody in the group lost a race: write them one by one below
            else:
                outcomes: list[list[int] | BaseException] = []
                offset = 0
                for stored in group:
                    outcomes.append(positions[offset : offset + len(stored)])
                    offset += len(stored)
                return outcomes
        return [self._alone(stored) for stored in group]

    def _alone(self, stored: Sequence[StoredEvent]) -> list[int] | BaseException:
        try:
            return list(self._insert(stored) or [])
        except Exception as exc:  # this append's own failure
            return exc
