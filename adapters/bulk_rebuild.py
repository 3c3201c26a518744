"""Rebuild read models from the whole log in memory: the documents are folded in a dict, each written once.

The live runner loads the documents each batch touches, folds them and writes them back, so a rebuild paid a
SQLite read and an upsert per document per batch. Here the log is read in large windows of undecoded rows
(only the types some projection folds), each row is decoded and folded straight into the in-memory documents,
and the documents are written at the end in one transaction with the tracking position, then the indexes are
built. The fold and its rule (an event at or below a document's position is skipped) are `fold_batch`'s, so the
documents are the ones the live runner stores.

A store that can (SQLite, when no other connection has its file open) is rebuilt in a fresh file beside its
own, written without a journal, swapped in once complete (`SqliteDocumentStore.claim/fresh_file/swap_in`): a
rebuild that stops half-way leaves the read models as they were. Otherwise its tables are reset and refilled in
place.

With `helper` (a SQLite log and document file), a second process folds every other projection (the timeline
while this one folds the cases) into a file of its own beside the document file (no shared write lock) and
indexes it, and this process copies its tables and indexes over in one statement each (SQLite's record
transfer) once it has written its own; then the text indexes and the tracking position. Both read and decode
the events they share, so it pays only where a core is idle (see bench/README.md).

Memory is bounded: past `max_documents` documents in memory they are written (without a tracking position) and
dropped; a later event of a dropped document loads it back. In place, a crash mid-rebuild leaves the tracking
position at 0 (the reset dropped it) and documents each stored with the position of the last event folded into
them, so the next run, live or rebuild, folds every event again and skips those already in a document: the
same result.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from adapters.codec import decoder_for
from domain.events import EVENT_TYPES
from projections.base import Doc, Fold, Projection
from projections.catalog import VERSION, VERSION_MARK

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

    def max_position(self) -> int: ...


@runtime_checkable
class BulkDocuments(Protocol):
    """A document store that writes many documents with a tracking position in one call (SqliteDocumentStore)."""

    def reset(self, *, defer_indexes: bool = False) -> None: ...

    def get_many(self, collection: str, keys: Sequence[str]) -> dict[str, Stored]: ...

    def bulk_write(
        self, documents: Mapping[str, Mapping[str, Stored]], tracking: tuple[str, int] | None = None
    ) -> None: ...

    def ensure_indexes(self, collections: Iterable[str] | None = None, *, text: bool = True) -> None: ...


@runtime_checkable
class FileSwaps(Protocol):
    """A document store that can be rebuilt in a fresh file swapped in at the end (SqliteDocumentStore)."""

    def claim(self) -> bool: ...

    def fresh_file(self) -> Any: ...

    def swap_in(self, fresh: Any) -> None: ...

    def release(self, fresh: Any = None) -> None: ...


@runtime_checkable
class TableCopies(Protocol):
    """A document store that fills its tables from another file's (SqliteDocumentStore), for the helper's."""

    def copy_tables(self, path: str, collections: Sequence[str]) -> None: ...


def _fold_of(projection: Projection, event_type: type) -> Fold:
    """The projection's fold for this type, its in-place one if it has one (the documents folded here are held
    nowhere else); its own `fold` when a subclass overrides the base's."""
    if type(projection).fold is Projection.fold:
        return projection.in_place_folds.get(event_type) or projection.folds[event_type]
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
    helper: tuple[str, str, str] | None = None,
) -> int:
    """Reset the read models and fold the whole log into them; return the last position read.

    helper: (log file, its synchronous mode, document file) to fold every other projection in a second process;
    those projections must be in `projections.catalog.ALL` (the helper finds them there by collection).

    The cyclic GC is off meanwhile: the documents in memory are hundreds of thousands of long-lived dicts that
    each full collection would walk again (half of the CPU time), and folding and decoding make no cycles.
    """
    if window < 1 or max_documents < 1:
        raise ValueError("window and max_documents must be at least 1")
    enabled = gc.isenabled()
    gc.disable()
    # a store that can: build the read models in a fresh file (no journal) and swap it in once complete, so a
    # rebuild that stops half-way leaves the read models as they were
    swapping = documents if isinstance(documents, FileSwaps) and documents.claim() else None
    target: BulkDocuments = documents if swapping is None else swapping.fresh_file()
    try:
        if swapping is None:
            target.reset(defer_indexes=True)
        # what is written from now on has the current shape (projections/catalog.py VERSION)
        target.bulk_write({}, (VERSION_MARK, VERSION))
        stop = _fold_all(log, target, projections, name, window, max_documents, progress, helper)
        if swapping is not None:
            swapping.swap_in(target)
        return stop
    except BaseException:
        if swapping is not None:
            swapping.release(target)
        raise
    finally:
        if enabled:
            gc.enable()


def _fold_all(
    log: RowLog, documents: BulkDocuments, projections: Sequence[Projection], name: str, window: int,
    max_documents: int, progress: Callable[[int], None] | None, helper: tuple[str, str, str] | None,
) -> int:
    """Fold the log into the (empty) read models, in this process or split with a helper; return the position."""
    stop = log.max_position()
    if helper is None:
        return _fold_into(log, documents, projections, stop, window, max_documents, progress, name)
    if not isinstance(documents, TableCopies):
        raise TypeError("a rebuild with a helper process needs a document store that copies tables (SQLite)")
    mine, theirs = list(projections[0::2]), [p.collection for p in projections[1::2]]
    log_file, synchronous, documents_file = helper
    # its own file: in the shared one its writes and this process's queued for SQLite's one write lock
    helper_file = f"{documents_file}.rebuild-helper"
    _remove_helper_file(helper_file)
    try:
        process = _start_helper(log_file, synchronous, helper_file, theirs, stop, window, max_documents)
        try:
            _fold_into(log, documents, mine, stop, window, max_documents, progress, None)
        except BaseException:
            process.kill()
            raise
        finally:
            process.wait()
        if process.returncode != 0:
            raise RuntimeError(f"the rebuild helper process failed (exit code {process.returncode}); the read "
                               "models are incomplete and the next start folds the log again: run the rebuild "
                               "again")
        documents.copy_tables(helper_file, theirs)  # its tables and indexes, record by record
    finally:
        _remove_helper_file(helper_file)
    documents.ensure_indexes()  # idempotent: builds the copied collections' indexes
    documents.bulk_write({}, (name, stop))
    return stop


def _remove_helper_file(path: str) -> None:
    for stale in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        if os.path.exists(stale):
            os.remove(stale)


def _start_helper(
    log_file: str, synchronous: str, documents_file: str, collections: Sequence[str], stop: int, window: int,
    max_documents: int,
) -> subprocess.Popen[bytes]:
    """Start the helper: a fresh interpreter (not multiprocessing, which re-runs the caller's main script)."""
    args = [log_file, synchronous, documents_file, list(collections), stop, window, max_documents]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p or os.getcwd() for p in sys.path)}
    code = "import sys, json; from adapters.bulk_rebuild import helper_main; helper_main(*json.loads(sys.argv[1]))"
    return subprocess.Popen([sys.executable, "-c", code, json.dumps(args)], env=env)


def helper_main(
    log_file: str, synchronous: str, documents_file: str, collections: Sequence[str], stop: int, window: int,
    max_documents: int,
) -> None:
    """The helper process: fold these collections of the catalog into their tables in a new file, and index them
    (not their text indexes: the parent builds those after copying the tables)."""
    from adapters.event_store import sqlite_event_store
    from adapters.sqlite_documents import SqliteDocumentStore
    from projections.catalog import ALL

    gc.disable()
    by_name = {p.collection: p for p in ALL}
    unknown = [c for c in collections if c not in by_name]
    if unknown:
        raise ValueError(f"collections {unknown} are not in projections.catalog.ALL")
    projections = [by_name[c] for c in collections]
    log = sqlite_event_store(log_file, pool_size=1, synchronous=synchronous)
    documents = SqliteDocumentStore(documents_file, projections, indexes=False, bulk=True)
    try:
        _fold_into(log, documents, projections, stop, window, max_documents, None, None, text=False)
    finally:
        documents.close()
        log.close()


def _fold_into(
    log: RowLog, documents: BulkDocuments, projections: Sequence[Projection], stop: int, window: int,
    max_documents: int, progress: Callable[[int], None] | None, name: str | None, *, text: bool = True,
) -> int:
    """Fold the log up to stop into these projections' (empty) tables and index them (their text indexes too
    when `text`); with name, write its tracking position in the same transaction as the last documents."""
    memory: Documents = {p.collection: {} for p in projections}
    dropped: dict[str, set[str]] = {c: set() for c in memory}
    routes = _routes(projections, memory)
    types = frozenset(routes)
    # per type name: its decoder and its routes, found with one lookup per row
    plans = {topic: (decoder_for(topic), targets) for topic, targets in routes.items()}
    position = 0
    while position < stop:
        rows, last = log.read_rows(position, min(window, stop - position), types)
        if last == position:
            break
        events: Iterable[tuple[int, Any, tuple[Route, ...]]] = (
            (at, plan[0](state, aggregate_id, version), plan[1])
            for at, aggregate_id, version, topic, state in rows for plan in (plans[topic],)
        )
        if any(dropped.values()):  # decoded first: the documents they touch that a flush dropped are loaded back
            events = list(events)
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
    documents.bulk_write(memory, None if name is None else (name, position))
    documents.ensure_indexes(list(memory), text=text)
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
