"""The ports the write side needs: where events are appended and read back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol
from uuid import UUID

from domain.events import Event, Positioned


class AggregateReads(Protocol):
    """What a unit of work reads to load aggregates."""

    def events_of(self, aggregate_id: UUID) -> list[Event]:
        """Every event of one aggregate, in version order."""
        ...

    def last_event_of(self, aggregate_id: UUID) -> Event | None:
        """The newest event of one aggregate (None if it has none)."""
        ...


class EventStore(AggregateReads, Protocol):
    """Append-only store of domain events with a global log (the outbox for relays and runners)."""

    def append(self, events: Sequence[Event]) -> list[int]:
        """Store events atomically; return their positions. Raises VersionConflict on a clash."""
        ...

    def events_of_many(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, list[Event]]:
        """`events_of` of several aggregates at once (one query); an aggregate without events maps to []."""
        ...

    def read(self, after: int, limit: int) -> list[Positioned]:
        """Up to limit events after position `after`, in log order."""
        ...

    def read_batch(
        self, after: int, limit: int, types: frozenset[str] | None = None
    ) -> tuple[list[Positioned], int]:
        """Like read, decoding only events whose type name is in types; also the last position scanned."""
        ...

    def max_position(self) -> int:
        """The position of the newest event (0 when empty)."""
        ...

    def position_of(self, aggregate_id: UUID, version: int) -> int | None:
        """The log position of one stored event."""
        ...

    def on_append(self, listener: Callable[[int], None]) -> None:
        """Call listener(last_position) after every successful append (wakes in-process runners); a store shared by
        processes may also call it when another process appended, with position 0 (not known here)."""
        ...

    def close(self) -> None: ...
