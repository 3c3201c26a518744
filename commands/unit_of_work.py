"""Unit of work: the aggregates one command loads and changes, saved together in one append."""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

from commands.ports import EventStore
from domain.aggregate import Aggregate
from domain.errors import NotFound, VersionConflict
from domain.events import Event

A = TypeVar("A", bound=Aggregate)


class UnitOfWork:
    """Loads aggregates for one tenant and collects what they record."""

    def __init__(self, store: EventStore, tenant: str) -> None:
        self.store = store
        self.tenant = tenant
        self._seen: dict[UUID, Aggregate] = {}

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate, or None when it does not exist in this tenant."""
        if aggregate_id in self._seen:
            found = self._seen[aggregate_id]
            return found if isinstance(found, cls) else None
        events = self.store.events_of(aggregate_id)
        if not events:
            return None
        aggregate = cls.replay(aggregate_id, events)
        if aggregate.tenant != self.tenant:
            return None  # another tenant's data does not exist for this one
        self._seen[aggregate_id] = aggregate
        return aggregate

    def find_latest(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """An aggregate whose whole state is carried by its newest event, loaded from that event alone."""
        if aggregate_id in self._seen:
            found = self._seen[aggregate_id]
            return found if isinstance(found, cls) else None
        last = self.store.last_event_of(aggregate_id)
        if last is None:
            return None
        aggregate = cls(aggregate_id)
        aggregate.apply_as_latest(last)
        if aggregate.tenant != self.tenant:
            return None
        self._seen[aggregate_id] = aggregate
        return aggregate

    def get(self, cls: type[A], aggregate_id: UUID, what: str, expected_version: int | None = None) -> A:
        """The aggregate, or NotFound naming `what`; VersionConflict if not at expected_version."""
        aggregate = self.find(cls, aggregate_id)
        if aggregate is None:
            raise NotFound(f"{what} not found")
        if expected_version is not None and aggregate.version != expected_version:
            raise VersionConflict(
                f"{what} is at version {aggregate.version}, not the expected {expected_version}"
            )
        return aggregate

    def add(self, aggregate: A) -> A:
        """Track a new aggregate so its events are saved with the rest."""
        self._seen[aggregate.id] = aggregate
        return aggregate

    def collect(self) -> list[Event]:
        events: list[Event] = []
        for aggregate in self._seen.values():
            events.extend(aggregate.collect())
        return events
