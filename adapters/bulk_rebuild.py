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

With `helper` (a SQLite log and document file), the log is split by aggregate with a second process: the read
models whose documents each come from one aggregate's events (`Projection.per_aggregate`: cases, timeline) are
folded by this process for half of the aggregates and by the helper for the other half (by the last character of
the aggregate id as stored), so each process decodes and folds only its half of those events; this process also
folds every other read model whole. The helper writes its documents, unindexed, into a file of its own beside the
document file (no shared write lock); this process appends them to its own tables once both are done, then builds
every index once. The halves hold different keys, so the documents are the ones a single process folds.

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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

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
class TableAppends(Protocol):
    """A document store that takes another file's rows into its tables (SqliteDocumentStore), for the helper's:
    appended before any index exists, or copied with their indexes into empty tables."""

    def append_tables(self, path: str, collections: Sequence[str]) -> None: ...

    def copy_tables(self, path: str, collections: Sequence[str]) -> None: ...


class FoldTarget(Protocol):
    """Where a fold's documents go: one store, or several by collection (`_ByCollection`)."""

    def get_many(self, collection: str, keys: Sequence[str]) -> dict[str, Stored]: ...

    def bulk_write(
        self, documents: Mapping[str, Mapping[str, Stored]], tracking: tuple[str, int] | None = None
    ) -> None: ...

    def ensure_indexes(self, collections: Iterable[str] | None = None, *, text: bool = True) -> None: ...


class _ByCollection:
    """Two stores as one fold target: each collection's documents go to (and come back from) the store given
    for it; no tracking position (a split rebuild writes it at the end)."""

    def __init__(self, stores: Mapping[str, BulkDocuments]) -> None:
        self._stores = stores

    def get_many(self, collection: str, keys: Sequence[str]) -> dict[str, Stored]:
        return self._stores[collection].get_many(collection, keys)

    def bulk_write(
        self, documents: Mapping[str, Mapping[str, Stored]], tracking: tuple[str, int] | None = None
    ) -> None:
        if tracking is not None:
            raise ValueError("a split fold writes no tracking position")
        for store in {id(s): s for s in self._stores.values()}.values():
            store.bulk_write({c: docs for c, docs in documents.items() if self._stores[c] is store})

    def ensure_indexes(self, collections: Iterable[str] | None = None, *, text: bool = True) -> None:
        chosen = list(self._stores) if collections is None else list(collections)
        for store in {id(s): s for s in self._stores.values()}.values():
            store.ensure_indexes([c for c in chosen if self._stores[c] is store], text=text)


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
    """Fold the log into the (empty) read models, in this process or split by aggregate with a helper; return the
    position."""
    stop = log.max_position()
    split = [p.collection for p in projections if p.per_aggregate]
    if helper is None or not split:
        return _fold_into(log, documents, projections, stop, window, max_documents, progress, name)
    if not isinstance(documents, TableAppends):
        raise TypeError("a rebuild with a helper process needs a document store that appends tables (SQLite)")
    from adapters.sqlite_documents import SqliteDocumentStore

    log_file, synchronous, documents_file = helper
    # the helper indexes every other per-aggregate read model (the timeline) while this process indexes the rest:
    # its share of the others and this process's share of its own are handed over in side files, each written by
    # one process and read by the other (one file per writer: no waiting for SQLite's write lock)
    theirs = split[1::2]
    mine = [c for c in split if c not in theirs]
    files = Files(f"{documents_file}.rebuild-helper", f"{documents_file}.rebuild-side0",
                  f"{documents_file}.rebuild-side1")
    for path in files:
        _remove_helper_file(path)
    try:
        process = _start_helper(log_file, synchronous, files, theirs, mine, stop, window, max_documents)
        try:
            by_name = {p.collection: p for p in projections}
            side = SqliteDocumentStore(files.side0, [by_name[c] for c in theirs], indexes=False, bulk=True)
            try:
                target = _ByCollection({c: side if c in theirs else documents for c in by_name})
                _fold_into(log, target, projections, stop, window, max_documents, progress, None, share=0,
                           index=False)
            finally:
                side.close()
            _tell(process, b"0\n")  # its share of the helper's read models is in side0
            _hear(process, b"1\n")  # the helper's share of this process's is in side1
            documents.append_tables(files.side1, mine)
            documents.ensure_indexes([c for c in by_name if c not in theirs])
        except BaseException:
            process.kill()
            raise
        finally:
            process.wait()
        if process.returncode != 0:
            raise _helper_failed(process)
        documents.copy_tables(files.helper, theirs)  # the helper's tables and their indexes, record by record
    finally:
        for path in files:
            _remove_helper_file(path)
    documents.ensure_indexes()  # idempotent: what is left (none when all went well)
    documents.bulk_write({}, (name, stop))
    return stop


class Files(NamedTuple):
    """The files of a split rebuild beside the document file: the helper's own (its read models, indexed by it),
    this process's share of those (side0) and the helper's share of this process's (side1)."""

    helper: str
    side0: str
    side1: str


def _helper_failed(process: subprocess.Popen[bytes]) -> RuntimeError:
    return RuntimeError(f"the rebuild helper process failed (exit code {process.poll()}); the read models are "
                        "incomplete and the next start folds the log again: run the rebuild again")


def _tell(process: subprocess.Popen[bytes], line: bytes) -> None:
    """Send the helper one line (it waits for it)."""
    assert process.stdin is not None
    try:
        process.stdin.write(line)
        process.stdin.flush()
    except OSError:
        process.wait()
        raise _helper_failed(process) from None


def _hear(process: subprocess.Popen[bytes], line: bytes) -> None:
    """Wait for the helper's line, passing over anything else it printed (an end of file: it stopped)."""
    assert process.stdout is not None
    while (heard := process.stdout.readline()) != line:
        if not heard:
            process.wait()
            raise _helper_failed(process)


def _remove_helper_file(path: str) -> None:
    for stale in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        if os.path.exists(stale):
            os.remove(stale)


def _start_helper(
    log_file: str, synchronous: str, files: Files, theirs: Sequence[str], mine: Sequence[str], stop: int,
    window: int, max_documents: int,
) -> subprocess.Popen[bytes]:
    """Start the helper: a fresh interpreter (not multiprocessing, which re-runs the caller's main script), with a
    pipe each way for the hand-over."""
    args = [log_file, synchronous, list(files), list(theirs), list(mine), stop, window, max_documents]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p or os.getcwd() for p in sys.path)}
    code = "import sys, json; from adapters.bulk_rebuild import helper_main; helper_main(*json.loads(sys.argv[1]))"
    return subprocess.Popen([sys.executable, "-c", code, json.dumps(args)], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)


def helper_main(
    log_file: str, synchronous: str, files: Sequence[str], theirs: Sequence[str], mine: Sequence[str], stop: int,
    window: int, max_documents: int,
) -> None:
    """The helper process: fold the second share of the aggregates into the per-aggregate read models of the
    catalog: `theirs` into its own file, `mine` (the parent's) into side1; tell the parent; once the parent's
    share of `theirs` is in side0, append it and index its own file (not the text indexes: the parent builds
    those after copying the tables)."""
    from adapters.event_store import sqlite_event_store
    from adapters.sqlite_documents import SqliteDocumentStore
    from projections.catalog import ALL

    gc.disable()
    own_file, side0, side1 = files
    by_name = {p.collection: p for p in ALL}
    unknown = [c for c in (*theirs, *mine) if c not in by_name or not by_name[c].per_aggregate]
    if unknown:
        raise ValueError(f"collections {unknown} are not per-aggregate read models of projections.catalog.ALL")
    log = sqlite_event_store(log_file, pool_size=1, synchronous=synchronous)
    own = SqliteDocumentStore(own_file, [by_name[c] for c in theirs], indexes=False, bulk=True)
    try:
        side = SqliteDocumentStore(side1, [by_name[c] for c in mine], indexes=False, bulk=True)
        try:
            target = _ByCollection({**{c: own for c in theirs}, **{c: side for c in mine}})
            _fold_into(log, target, [by_name[c] for c in (*theirs, *mine)], stop, window, max_documents, None,
                       None, share=1, index=False)
        finally:
            side.close()
        sys.stdout.write("1\n")
        sys.stdout.flush()
        if sys.stdin.readline() != "0\n":
            raise RuntimeError("the rebuild's parent process stopped before handing its share over")
        own.append_tables(side0, theirs)
        own.ensure_indexes(text=False)
    finally:
        own.close()
        log.close()


# per type name: its decoder, the routes of an event of this process's share and those of any other share
Plan = tuple[Callable[[Any, Any, int], Any], tuple[Route, ...], tuple[Route, ...]]


def _decoded(
    rows: Iterable[tuple[int, Any, int, str, Any]], plans: Mapping[str, Plan], share: int | None
) -> Iterator[tuple[int, Any, tuple[Route, ...]]]:
    """(position, event, routes) of each row some route of this process folds; rows of the other share's
    aggregates that only per-aggregate read models fold are skipped undecoded."""
    if share is None:
        for at, aggregate_id, version, topic, state in rows:
            plan = plans[topic]
            yield at, plan[0](state, aggregate_id, version), plan[1]
        return
    for at, aggregate_id, version, topic, state in rows:
        decode, mine, others = plans[topic]
        # the share of an aggregate: the parity of the last character of its id as the log hands it out (a hex
        # digit of a random UUID: half of the aggregates each)
        targets = mine if ord(str(aggregate_id)[-1]) & 1 == share else others
        if targets:
            yield at, decode(state, aggregate_id, version), targets


def _fold_into(
    log: RowLog, documents: FoldTarget, projections: Sequence[Projection], stop: int, window: int,
    max_documents: int, progress: Callable[[int], None] | None, name: str | None, *, share: int | None = None,
    index: bool = True,
) -> int:
    """Fold the log up to stop into these projections' (empty) tables, and index them when `index`; with name,
    write its tracking position in the same transaction as the last documents.

    share: fold the events of the per-aggregate projections only for the aggregates of this share (0 or 1)."""
    memory: Documents = {p.collection: {} for p in projections}
    dropped: dict[str, set[str]] = {c: set() for c in memory}
    routes = _routes(projections, memory)
    types = frozenset(routes)
    split = {p.collection for p in projections if p.per_aggregate}
    # one lookup per row
    plans: dict[str, Plan] = {
        topic: (decoder_for(topic), targets, tuple(r for r in targets if r[3] not in split))
        for topic, targets in routes.items()
    }
    position = 0
    while position < stop:
        rows, last = log.read_rows(position, min(window, stop - position), types)
        if last == position:
            break
        events: Iterable[tuple[int, Any, tuple[Route, ...]]] = _decoded(rows, plans, share)
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
    if index:
        documents.ensure_indexes(list(memory))
    return position


def _load_dropped(
    documents: FoldTarget, events: Sequence[tuple[int, Any, tuple[Route, ...]]], memory: Documents,
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
