"""Finding the process instances a restarted engine must know again."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID

from commands.ports import EventStore
from domain.events import EVENT_TYPES, Positioned
from domain.process import ProcessCancelled, ProcessCompleted, ProcessEvent, ProcessStarted

_TYPES = frozenset({ProcessStarted.__name__, ProcessCompleted.__name__, ProcessCancelled.__name__})


@dataclass(frozen=True)
class Unfinished:
    """An instance started and neither completed nor cancelled: its id, key and tenant."""

    instance_id: UUID
    key: str
    tenant: str


def unfinished_instances(store: EventStore, batch: int = 10_000) -> list[Unfinished]:
    """Instances started and neither completed nor cancelled, in start order (one filtered scan of the log's
    start and end events: their states are folded later, one instance at a time, when it is needed)."""
    running: dict[UUID, Unfinished] = {}
    after = 0
    while True:
        items, last = store.read_batch(after, batch, _TYPES)
        for item in items:
            event = item.event
            if isinstance(event, ProcessStarted):
                running[event.aggregate_id] = Unfinished(event.aggregate_id, event.instance_key, event.tenant)
            else:
                running.pop(event.aggregate_id, None)
        if last <= after:
            return list(running.values())
        after = last


def changes_after(store: EventStore, position: int, batch: int = 10_000) -> Iterator[Positioned]:
    """Every process-instance event after `position`, in log order (what a checkpoint does not know yet)."""
    types = frozenset(name for name, event_type in EVENT_TYPES.items() if issubclass(event_type, ProcessEvent))
    after = position
    while True:
        items, last = store.read_batch(after, batch, types)
        yield from items
        if last <= after:
            return
        after = last
