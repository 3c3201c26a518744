"""Fold a batch of logged events into read-model writes: the one algorithm every host uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from domain.events import Positioned
from projections.base import Doc, Projection
from projections.ports import Write

Stored = tuple[Doc | None, int]
LoadMany = Callable[[str, Sequence[str]], Mapping[str, Stored]]


def fold_batch(projections: Sequence[Projection], batch: Sequence[Positioned], load_many: LoadMany) -> list[Write]:
    """Apply each event to the documents it touches; skip any at or below a document's position.

    The documents a batch touches are loaded with one call per collection, folded in memory, and returned
    (those that changed) with the position of the last event applied, exactly what a one-by-one fold gives.
    """
    plan: list[tuple[Positioned, Projection, str]] = []
    wanted: dict[str, set[str]] = {}
    for item in batch:
        for projection in projections:
            if projection.handles(item.event):
                key = projection.key(item.event)
                plan.append((item, projection, key))
                wanted.setdefault(projection.collection, set()).add(key)
    state: dict[tuple[str, str], Stored] = {}
    for collection, keys in wanted.items():
        found = load_many(collection, sorted(keys))
        for key in keys:
            state[(collection, key)] = found.get(key, (None, 0))
    dirty: set[tuple[str, str]] = set()
    for item, projection, key in plan:
        slot = (projection.collection, key)
        doc, position = state[slot]
        if item.position <= position:
            continue
        state[slot] = (projection.fold(doc, item.event), item.position)
        dirty.add(slot)
    return [Write(c, k, state[(c, k)][0], state[(c, k)][1]) for (c, k) in sorted(dirty)]
