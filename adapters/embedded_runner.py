"""The in-process runner: tails the event log and keeps the read models up to date.

SQLite's recorder in `eventsourcing` has no subscriptions, so the runner polls the notification log and
is also woken right after each append. Each batch of documents is stored with the runner's tracking
position in one transaction, so a crash between batches replays safely.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from adapters import bulk_rebuild
from adapters.catch_up_thread import CatchUpThread
from adapters.sqlite_documents import SqliteDocumentStore
from commands.ports import EventStore
from domain.events import Positioned
from projections.base import Projection
from projections.catalog import ALL, VERSION, VERSION_MARK
from projections.folding import LoadMany, Stored, fold_batch
from projections.ports import DocumentStore, Write

log = logging.getLogger(__name__)
Subscriber = Callable[[Sequence[Positioned]], None]
# (position before the window, last position of the window, its events) once the read models hold it
WindowListener = Callable[[int, int, Sequence[Positioned]], None]


def freeze_startup_objects() -> None:
    """Move every object alive now (modules, models, the app: what start-up built) out of the cyclic GC's reach.

    Folding and request handling allocate at a high rate, so full collections run often, and each one walked
    these hundreds of thousands of long-lived objects again: about a third of a rebuild's CPU time. They stay
    alive for the life of the process anyway; new objects are collected as before.
    """
    gc.freeze()


class DocumentCache:
    """The documents a runner wrote last, kept decoded: the runner is its read models' only writer, so the next
    events of a busy case fold into the cached document instead of reading and decoding it again (a case with
    a hundred comments is a large JSON document). Least recently used ones go beyond `size`.

    unread: collections of one document per event (`Projection.per_event`: the timeline), neither looked up nor
    kept: each event's own document is new (a query per batch that found nothing), and no later event folds into
    it; a replayed event's is stored again as it was (the write keeps a document at a higher position)."""

    def __init__(self, load_many: LoadMany, size: int = 5_000, unread: frozenset[str] = frozenset()) -> None:
        self._load_many = load_many
        self.size = size
        self.unread = unread
        self._docs: OrderedDict[tuple[str, str], Stored] = OrderedDict()

    def get_many(self, collection: str, keys: Sequence[str]) -> dict[str, Stored]:
        if collection in self.unread:
            return {}
        found: dict[str, Stored] = {}
        missing: list[str] = []
        for key in keys:
            hit = self._docs.get((collection, key))
            if hit is None:
                missing.append(key)
            else:
                found[key] = hit
        if missing:
            found.update(self._load_many(collection, missing))
        return found

    def remember(self, writes: Sequence[Write]) -> None:
        """Documents just stored (folds return new documents, never change these)."""
        for write in writes:
            if write.collection in self.unread:
                continue
            slot = (write.collection, write.key)
            self._docs[slot] = (write.doc, write.position)
            self._docs.move_to_end(slot)
        while len(self._docs) > self.size:
            self._docs.popitem(last=False)

    def clear(self) -> None:
        self._docs.clear()


class EmbeddedRunner(CatchUpThread):
    """Folds the event log into a DocumentStore on a background thread."""

    name = "embedded"
    thread_name = "casestream-runner"
    failure_message = "runner failed; retrying"

    def __init__(
        self, store: EventStore, documents: DocumentStore, projections: Sequence[Projection],
        *, batch_size: int = 2000, poll_interval: float = 0.5, coalesce: float = 0.005,
    ) -> None:
        self.store = store
        self.documents = documents
        self.projections = tuple(projections)
        self.batch_size = batch_size
        super().__init__(poll_interval, coalesce)
        self.position = documents.tracking(self.name)
        head = store.max_position()
        if self.position > head:
            # read models ahead of the log belong to another event store (a wiped or swapped database): rebuild
            log.warning("read models are at %s but the event log ends at %s; rebuilding them", self.position, head)
            documents.reset()
            self.position = 0
        if documents.tracking(VERSION_MARK) < VERSION:
            if self.position:
                # built by folds of an older shape (projections/catalog.py VERSION): fold the log again
                log.warning("read models have an older shape than version %s; rebuilding them", VERSION)
                documents.reset()
                self.position = 0
            documents.write([], (VERSION_MARK, VERSION))
        # events no read model folds (command log, number sequences) are skipped undecoded
        self.types = frozenset(t.type_name() for p in self.projections for t in p.folds)
        self._progress = threading.Condition()
        self._subscribers: list[Subscriber] = []
        self._window_listeners: list[WindowListener] = []
        self.cache = DocumentCache(documents.get_many, unread=frozenset(p.collection for p in self.projections
                                                                        if p.per_event))
        self._cached_at = self.position  # the runner position the cached documents belong to
        self._folded = self.types  # what subscribers see (share_windows may make the runner read more)
        store.on_append(lambda _position: self._wake.set())

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call subscriber with each batch once it is visible in the read models (SSE, publishers)."""
        self._subscribers.append(subscriber)

    def share_windows(self, types: frozenset[str], listener: WindowListener) -> None:
        """Also read events of `types` and hand listener every window of the log once the read models hold it, so
        that another follower of the log (the process manager) need not read and decode it again."""
        self.types = self.types | types
        self._window_listeners.append(listener)

    def step(self) -> int:
        """Apply the next batch; return how many events it held."""
        after = self.position
        if after != self._cached_at:  # moved by someone else (a reset to 0, a rebuild): the cache is not ours
            self.cache.clear()
        batch, last = self.store.read_batch(after, self.batch_size, self.types)
        if last == after:
            return 0
        writes = fold_batch(self.projections, batch, self.cache.get_many)
        try:
            self.documents.write(writes, (self.name, last))
        except BaseException:
            self.cache.clear()  # what is stored is unknown now
            raise
        self.cache.remember(writes)
        self._cached_at = last
        with self._progress:
            self.position = last
            self._progress.notify_all()
        folded = batch if self.types == self._folded else [p for p in batch if type(p.event).__name__ in self._folded]
        for subscriber in self._subscribers:
            try:
                subscriber(folded)
            except Exception:  # a subscriber's failure must not stop the read models
                log.exception("runner subscriber failed")
        for listener in self._window_listeners:
            listener(after, last, batch)
        return max(1, len(batch))

    def catch_up(self) -> int:
        """Apply batches until the log is exhausted; return the number of events applied."""
        total = 0
        while n := self.step():
            total += n
        return total

    def _rebuild_helper(self, processes: int) -> tuple[str, str, str] | None:
        """The files a rebuild's second process opens, when it gets one: asked for, with a SQLite log and document
        store and per-aggregate read models (the helper's share), all of the catalog."""
        if processes not in (1, 2):
            raise ValueError(f"processes must be 1 or 2, not {processes!r}")
        log_file = getattr(self.store, "sqlite_file", None)
        if processes == 1 or log_file is None or not isinstance(self.documents, SqliteDocumentStore):
            return None
        catalog = {id(p) for p in ALL}
        split = [p for p in self.projections if p.per_aggregate]
        if not split or not all(id(p) in catalog for p in split):
            return None
        return log_file[0], log_file[1], self.documents.path

    def rebuild(self, progress: Callable[[int], None] | None = None, processes: int = 1) -> int:
        """Drop the read models and fold the whole log again (indexes built once at the end); return events read.

        On a store and log that support it (SQLite), the documents are folded in memory and written once into a
        fresh file that replaces the read models' file when complete (in place when another connection has it
        open; `adapters.bulk_rebuild`); with processes=2 a helper process folds half of the aggregates into the
        per-aggregate read models in a file of its own, whose rows are then appended before the indexes are built
        (it saves wall time only with a core to spare, so it is not the default); subscribers are not called for
        a rebuild's events then."""
        freeze_startup_objects()
        self.cache.clear()
        if bulk_rebuild.supported(self.store, self.documents, self.projections):
            with self._progress:
                self.position = 0
            last = bulk_rebuild.rebuild(
                self.store, self.documents, self.projections, self.name,  # type: ignore[arg-type]
                progress=progress, helper=self._rebuild_helper(processes),
            )
            with self._progress:
                self.position = last
                self._progress.notify_all()
            return last
        self.documents.reset(defer_indexes=True)
        self.documents.write([], (VERSION_MARK, VERSION))  # what is written from now on has the current shape
        with self._progress:
            self.position = 0
        total = 0
        while n := self.step():
            total += n
            if progress is not None:
                progress(self.position)
        self.documents.ensure_indexes()
        return total

    def start(self) -> None:
        """Start the folding thread (freezing what start-up built out of the cyclic GC's reach first)."""
        if self._thread is None:
            freeze_startup_objects()
        super().start()

    def wait(self, position: int, timeout: float) -> bool:
        """Block until the read models include position (read-your-writes); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._progress:
            while self.position < position:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.set()
                self._progress.wait(min(remaining, 0.5))
        return True

    def lag(self) -> int:
        """How many events the read models are behind the log."""
        return max(0, self.store.max_position() - self.position)
