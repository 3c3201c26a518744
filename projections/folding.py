"""Fold a batch of logged events into read-model writes: the one algorithm every host uses."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from domain.events import Positioned
from projections.base import Doc, Projection
from projections.ports import Write

Loader = Callable[[str, str], tuple[Doc | None, int] | None]


def fold_batch(projections: Sequence[Projection], batch: Sequence[Positioned], load: Loader) -> list[Write]:
    """Apply each event to the documents it touches; skip any at or below a document's position.

    Returns the documents that changed, each with the position of the last event applied to it, so a
    host stores exactly what a one-by-one fold would have produced.
    """
    state: dict[tuple[str, str], tuple[Doc | None, int]] = {}
    dirty: set[tuple[str, str]] = set()
    for item in batch:
        for projection in projections:
            if not projection.handles(item.event):
                continue
            slot = (projection.collection, projection.key(item.event))
            if slot not in state:
                state[slot] = load(*slot) or (None, 0)
            doc, position = state[slot]
            if item.position <= position:
                continue
            state[slot] = (projection.fold(doc, item.event), item.position)
            dirty.add(slot)
    return [Write(c, k, state[(c, k)][0], state[(c, k)][1]) for (c, k) in state if (c, k) in dirty]
