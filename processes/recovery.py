"""Finding the process instances a restarted engine must load again."""

from __future__ import annotations

from uuid import UUID

from commands.ports import EventStore
from domain.process import ProcessCancelled, ProcessCompleted, ProcessStarted

_TYPES = frozenset({ProcessStarted.__name__, ProcessCompleted.__name__, ProcessCancelled.__name__})


def unfinished_instances(store: EventStore, batch: int = 10_000) -> list[UUID]:
    """Ids of instances started and neither completed nor cancelled, in start order (one filtered log scan)."""
    running: dict[UUID, None] = {}
    after = 0
    while True:
        items, last = store.read_batch(after, batch, _TYPES)
        for item in items:
            if isinstance(item.event, ProcessStarted):
                running[item.event.aggregate_id] = None
            else:
                running.pop(item.event.aggregate_id, None)
        if last <= after:
            return list(running)
        after = last
