"""Unit of work: the aggregates one command loads and changes, saved together in one append."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TypeVar
from uuid import UUID

from commands.ports import AggregateReads
from domain.aggregate import Aggregate
from domain.errors import NotFound, VersionConflict
from domain.events import Event

A = TypeVar("A", bound=Aggregate)


class LoadedAggregates:
    """Aggregates kept after a stored command, so that the next command on them replays only newer events.

    An entry is handed out to one unit of work at a time (taken out, put back only after that command's events
    were stored), so no two commands share state and a failed command's changes are dropped with it. It is used
    only while the stored history still holds, at the entry's version, the very event the entry ends with
    (same event id); otherwise the aggregate is replayed from its first event, as without this cache.
    """

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._entries: OrderedDict[UUID, tuple[Aggregate, UUID]] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, cls: type[A], aggregate_id: UUID, events: Sequence[Event]) -> A:
        """The aggregate at the end of events: a kept one brought up to date, else a replay."""
        with self._lock:
            kept = self._entries.pop(aggregate_id, None)
        if kept is not None:
            aggregate, last_event_id = kept
            version = aggregate.version
            if (
                type(aggregate) is cls and not aggregate.pending and 0 < version <= len(events)
                and events[version - 1].version == version and events[version - 1].event_id == last_event_id
            ):
                for event in events[version:]:
                    aggregate.apply(event)
                return aggregate
        return cls.replay(aggregate_id, events)

    def take(self, cls: type[A], aggregate_id: UUID) -> tuple[A, UUID] | None:
        """The kept aggregate and the id of its newest event, taken out (unchecked against the store)."""
        with self._lock:
            kept = self._entries.pop(aggregate_id, None)
        if kept is None or type(kept[0]) is not cls or kept[0].pending:
            return None
        return kept[0], kept[1]

    def keep(self, aggregate: Aggregate, last_event_id: UUID) -> None:
        """Remember an aggregate whose every event up to its version is stored, the last being last_event_id."""
        if aggregate.pending or aggregate.version < 1:
            return
        with self._lock:
            self._entries[aggregate.id] = (aggregate, last_event_id)
            self._entries.move_to_end(aggregate.id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


class UnitOfWork:
    """Loads aggregates for one tenant and collects what they record."""

    def __init__(
        self, store: AggregateReads, tenant: str, loaded: LoadedAggregates | None = None, *, retry: bool = False
    ) -> None:
        self.store = store
        self.tenant = tenant
        self.loaded = loaded
        self.retry = retry  # an earlier attempt of this command lost a race: read everything from the store
        self._seen: dict[UUID, Aggregate] = {}
        # the id of the newest event of each aggregate loaded with `find` or added (what `release` keeps)
        self._last_event_ids: dict[UUID, UUID | None] = {}
        self._changed: set[UUID] = set()  # aggregates that recorded events (collected)
        self._added: set[UUID] = set()

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate, or None when it does not exist in this tenant."""
        if aggregate_id in self._seen:
            found = self._seen[aggregate_id]
            return found if isinstance(found, cls) else None
        events = self.store.events_of(aggregate_id)
        if not events:
            return None
        if self.loaded is not None:
            aggregate = self.loaded.load(cls, aggregate_id, events)
        else:
            aggregate = cls.replay(aggregate_id, events)
        if aggregate.tenant != self.tenant:
            return None  # another tenant's data does not exist for this one
        self._seen[aggregate_id] = aggregate
        self._last_event_ids[aggregate_id] = events[-1].event_id
        return aggregate

    def find_single_writer(self, cls: type[A], aggregate_id: UUID, *, new: bool = False) -> A | None:
        """`find` for an aggregate that only this process writes (a process instance, by its engine), without
        a store read: the copy kept after its last stored command, or None when the writer says it is `new`.

        A stale answer cannot overwrite anything: the next event it records takes a version the store already
        holds, the append fails on (aggregate, version), and the bus retries the command with `retry` set, which
        reads the store as `find` does.
        """
        if aggregate_id in self._seen or self.retry or self.loaded is None:
            return self.find(cls, aggregate_id)
        kept = self.loaded.take(cls, aggregate_id)
        if kept is None:
            return None if new else self.find(cls, aggregate_id)
        aggregate, last_event_id = kept
        if aggregate.tenant != self.tenant:
            return None
        self._seen[aggregate_id] = aggregate
        self._last_event_ids[aggregate_id] = last_event_id
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
        self._last_event_ids[aggregate.id] = None
        self._added.add(aggregate.id)
        return aggregate

    def touched(self) -> set[UUID]:
        """The ids of the aggregates loaded or added so far."""
        return set(self._seen)

    def changed(self) -> set[UUID]:
        """The ids of the aggregates added, or that recorded events so far (collected or not)."""
        return {aggregate_id for aggregate_id, aggregate in self._seen.items()
                if aggregate.pending or aggregate_id in self._changed or aggregate_id in self._added}

    def collect(self) -> list[Event]:
        events: list[Event] = []
        for aggregate in self._seen.values():
            recorded = aggregate.collect()
            if recorded:
                self._changed.add(aggregate.id)
                if aggregate.id in self._last_event_ids:
                    self._last_event_ids[aggregate.id] = recorded[-1].event_id
            events.extend(recorded)
        return events

    def release(self, *, unchanged_only: bool = False) -> None:
        """After the collected events were stored: keep the loaded aggregates for the next commands. With
        unchanged_only (the events will not be stored), keep only those that recorded nothing."""
        if self.loaded is None:
            return
        for aggregate_id, last_event_id in self._last_event_ids.items():
            if last_event_id is not None and not (unchanged_only and aggregate_id in self._changed):
                self.loaded.keep(self._seen[aggregate_id], last_event_id)
