"""Rebuild read models from the whole log in memory: the documents are folded in a dict, written once in key order.

The live runner loads the documents each batch touches, folds them and writes them back, so a rebuild paid a
SQLite read and an upsert per document per batch. Here the log is read in large windows of undecoded rows
(only the types some projection folds), each row is decoded and folded straight into the in-memory documents,
and the documents are written at the end in one transaction with the tracking position, then the indexes are
built. The fold and its rule (an event at or below a document's position is skipped) are `fold_batch`'s, so the
documents are the ones the live runner stores.

Memory is bounded: past `max_documents` documents in memory they are written (without a tracking position) and
dropped; a later event of a dropped document loads it back. A crash mid-rebuild leaves the tracking position at
0 (the reset dropped it) and documents each stored with the position of the last event folded into them, so
the next run, live or rebuild, folds every event again and skips those already in a document: the same result.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from adapters.codec import decoder_for
from domain.events import EVENT_TYPES
from projections.base import Doc, Fold, Projection

Stored = tuple[Doc | None, int]
Documents = dict[str, dict[str, Stored]]
# per event type name: (key function, fold, the collection's documents in memory, the collection)
Route = tuple[Callable[[Any], str], Fold, dict[str, Stored], str]

_MISSING: Stored = (None, 0)


@runtime_checkable
class RowLog(Protocol):
    """An event log that hands out undecoded rows (RecorderEventStore)."""

    def read_rows(
        self, after: int, limit: int, types: frozenset[str] | None = None
    ) -> tuple[Sequence[tuple[int, Any, int, str, bytes]], int]: ...


@runtime_checkable
class BulkDocuments(Protocol):
    """A document store that writes many documents with a tracking position in one call (SqliteDocumentStore)."""

    def reset(self, *, defer_indexes: bool = False) -> None: ...

    def get_many(self, collection: str, keys: Sequence[str]) -> dict[str, Stored]: ...

    def bulk_write(
        self, documents: Mapping[str, Mapping[str, Stored]], tracking: tuple[str, int] | None = None
    ) -> None: ...

    def ensure_indexes(self) -> None: ...


def _fold_of(projection: Projection, event_type: type) -> Fold:
    """The projection's fold for this type; its own `fold` when a subclass overrides the base's."""
    if type(projection).fold is Projection.fold:
        return projection.folds[event_type]
    return projection.fold


def _routes(projections: Sequence[Projection], memory: Documents) -> dict[str, tuple[Route, ...]]:
    """Per event type name, the projections folding it, in the order `fold_batch` applies them."""
    routes: dict[str, tuple[Route, ...]] = {}
    for name, event_type in EVENT_TYPES.items():
        found = []
        for p in projections:
            if type(p).handles is not Projection.handles:
                raise TypeError(f"projection {p.collection!r} overrides `handles`: it cannot be routed by type")
            if event_type in p.folds:
                found.append((p.key, _fold_of(p, event_type), memory[p.collection], p.collection))
        if found:
            routes[name] = tuple(found)
    return routes


def supported(log: object, documents: object, projections: Sequence[Projection]) -> bool:
    """Whether `rebuild` can run on these: a row log, a bulk document store, projections routed by event type."""
    return (isinstance(log, RowLog) and isinstance(documents, BulkDocuments)
            and all(type(p).handles is Projection.handles for p in projections))


def rebuild(
    log: RowLog, documents: BulkDocuments, projections: Sequence[Projection], name: str, *,
    window: int = 50_000, max_documents: int = 1_000_000, progress: Callable[[int], None] | None = None,
) -> int:
    """Reset the read models and fold the whole log into them; return the last position read.

    The cyclic GC is off meanwhile: the documents in memory are hundreds of thousands of long-lived dicts that
    each full collection would walk again (half of the CPU time), and folding and decoding make no cycles.
    """
    if window < 1 or max_documents < 1:
        raise ValueError("window and max_documents must be at least 1")
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _rebuild(log, documents, projections, name, window, max_documents, progress)
    finally:
        if enabled:
            gc.enable()


def _rebuild(
    log: RowLog, documents: BulkDocuments, projections: Sequence[Projection], name: str, window: int,
    max_documents: int, progress: Callable[[int], None] | None,
) -> int:
    documents.reset(defer_indexes=True)
    memory: Documents = {p.collection: {} for p in projections}
    dropped: dict[str, set[str]] = {c: set() for c in memory}
    routes = _routes(projections, memory)
    types = frozenset(routes)
    position = 0
    while True:
        rows, last = log.read_rows(position, window, types)
        if last == position:
            break
        events = [(row[0], decoder_for(row[3])(row[4], row[1], row[2]), routes[row[3]]) for row in rows]
        if any(dropped.values()):
            _load_dropped(documents, events, memory, dropped)
        for at, event, targets in events:
            for key_of, fold, docs, _collection in targets:
                key = key_of(event)
                doc, stored = docs.get(key, _MISSING)
                if at <= stored:
                    continue
                docs[key] = (fold(doc, event), at)
        position = last
        if sum(map(len, memory.values())) > max_documents:
            documents.bulk_write(memory)
            for collection, docs in memory.items():
                dropped[collection].update(docs)
                docs.clear()
        if progress is not None:
            progress(position)
    documents.bulk_write(memory, (name, position))
    documents.ensure_indexes()
    return position


def _load_dropped(
    documents: BulkDocuments, events: Sequence[tuple[int, Any, tuple[Route, ...]]], memory: Documents,
    dropped: dict[str, set[str]],
) -> None:
    """Load back the documents these events touch that an earlier flush wrote and dropped from memory."""
    wanted: dict[str, set[str]] = {}
    for _at, event, targets in events:
        for key_of, _fold, docs, collection in targets:
            key = key_of(event)
            if key not in docs and key in dropped[collection]:
                wanted.setdefault(collection, set()).add(key)
    for collection, keys in wanted.items():
        found = documents.get_many(collection, sorted(keys))
        memory[collection].update(found)
        dropped[collection].difference_update(found)
