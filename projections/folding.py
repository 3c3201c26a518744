"""Fold a batch of logged events into read-model writes: the one algorithm every host uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from domain.events import Event, Positioned
from projections.base import Doc, Projection
from projections.ports import Write

Stored = tuple[Doc | None, int]
LoadMany = Callable[[str, Sequence[str]], Mapping[str, Stored]]


def _routes(projections: Sequence[Projection]) -> Callable[[Event], tuple[Projection, ...]]:
    """The projections that handle an event; by event type when `handles` is the base's (a type lookup)."""
    by_type: dict[type[Event], tuple[Projection, ...]] = {}
    plain = all(type(p).handles is Projection.handles for p in projections)

    def targets(event: Event) -> tuple[Projection, ...]:
        if not plain:
            return tuple(p for p in projections if p.handles(event))
        found = by_type.get(type(event))
        if found is None:
            found = by_type[type(event)] = tuple(p for p in projections if p.handles(event))
        return found

    return targets


def fold_batch(projections: Sequence[Projection], batch: Sequence[Positioned], load_many: LoadMany) -> list[Write]:
    """Apply each event to the documents it touches; skip any at or below a document's position.

    The documents a batch touches are loaded with one call per collection, folded in memory, and returned
    (those that changed) with the position of the last event applied, exactly what a one-by-one fold gives.
    """
    targets = _routes(projections)
    plan: list[tuple[int, Event, Projection, str, tuple[str, str]]] = []
    wanted: dict[str, set[str]] = {}
    for item in batch:
        event = item.event
        for projection in targets(event):
            key = projection.key(event)
            collection = projection.collection
            plan.append((item.position, event, projection, key, (collection, key)))
            keys = wanted.get(collection)
            if keys is None:
                keys = wanted[collection] = set()
            keys.add(key)
    state: dict[tuple[str, str], Stored] = {}
    for collection, keys in wanted.items():
        found = load_many(collection, sorted(keys))
        missing: Stored = (None, 0)
        for key in keys:
            state[(collection, key)] = found.get(key, missing)
    dirty: set[tuple[str, str]] = set()
    for position, event, projection, _key, slot in plan:
        doc, stored = state[slot]
        if position <= stored:
            continue
        state[slot] = (projection.fold(doc, event), position)
        dirty.add(slot)
    writes = []
    for slot in sorted(dirty):
        doc, position = state[slot]
        writes.append(Write(slot[0], slot[1], doc, position))
    return writes
