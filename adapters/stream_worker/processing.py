"""One batch of Kafka records -> MongoDB read models: decode, park, `fold_batch`, one write, per-partition tracking.

Synchronous (pymongo); the worker's consumer and the Kafka rebuild run it in a thread. Every step is idempotent, so a
batch that is delivered again (a crash before the offsets were committed, a rebalance) changes nothing:
documents carry the position of the last event folded into them and `fold_batch` skips anything at or below it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from adapters import cloudevents
from adapters.mongo_documents import MongoDocumentStore
from adapters.stream_worker.parking import Delivery, MongoParking, Parked
from domain.events import Positioned
from projections.base import Projection
from projections.folding import Stored, fold_batch
from projections.ports import Write

log = logging.getLogger(__name__)

TRACKING = "tracking"  # the collection MongoDocumentStore keeps tracking positions in
TRACKING_PREFIX = "worker:"


def tracking_name(topic: str, partition: int) -> str:
    """The tracking document of one partition: `worker:<topic>:<partition>`."""
    return f"{TRACKING_PREFIX}{topic}:{partition}"


@dataclass
class PartitionMark:
    """How far a batch got in one partition: the highest log position handled and the event behind it."""

    topic: str
    partition: int
    offset: int
    position: int
    event_time: datetime | None
    delivery: Delivery | None = None  # the record of the event at `position`

    def record(self, worker: str, times: Mapping[str, float] | None = None) -> dict[str, Any]:
        """The tracking document; `stages` holds when the event at `position` was read by the relay, sent,
        received here, taken into a batch and written (Unix seconds; those known), for lag breakdowns."""
        d = self.delivery
        stages = {"read": d.relay_read_at, "sent": d.timestamp, "received": d.received_at} if d else {}
        stages.update(times or {})
        return {
            "_id": tracking_name(self.topic, self.partition), "position": self.position, "topic": self.topic,
            "partition": self.partition, "offset": self.offset,
            "event_time": self.event_time.isoformat() if self.event_time else None,
            "event_ts": self.event_time.timestamp() if self.event_time else None,
            "updated_at": datetime.now(UTC).isoformat(), "worker": worker,
            "stages": {name: at for name, at in stages.items() if at is not None},
        }


@dataclass
class BatchOutcome:
    """What one batch did."""

    received: int = 0
    applied: int = 0  # events folded (including those that changed nothing: redeliveries)
    writes: int = 0  # documents written
    parked: list[Parked] = field(default_factory=list)  # newly parked records: the dead-letter topic gets each
    marks: dict[tuple[str, int], PartitionMark] = field(default_factory=dict)


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def decode(delivery: Delivery) -> Positioned:
    """A record's value (CloudEvents JSON) -> the domain event with its log position (upcast)."""
    return cloudevents.from_cloudevent(cloudevents.loads(delivery.value))


class BatchProcessor:
    """Folds batches of records into a MongoDocumentStore, parking poison events and the events behind them."""

    def __init__(
        self, documents: MongoDocumentStore, projections: Sequence[Projection], parking: MongoParking,
        *, worker: str = "worker", cache_size: int = 50_000,
    ) -> None:
        self.documents = documents
        self.projections = tuple(projections)
        self.parking = parking
        self.worker = worker
        self.tracking: Collection[dict[str, Any]] = documents.db[TRACKING]
        self.cache = DocumentCache(cache_size)
        self.seconds: dict[str, float] = {}  # wall time per phase, summed over batches (for bench/worker.py)
        self._parked_before: set[str] = set()
        # seconds a read of the parked keys is reused (0: read per batch). Reusing is safe for a group member:
        # only a partition's owner parks its keys (the last read plus what it parked since is a superset, and
        # a key a retry released meanwhile is found out by add_waiting) and forget() on every rebalance reads anew
        self.parked_refresh = 0.0
        self._parked_read_at = float("-inf")

    # --- the batch -------------------------------------------------------------------------------------

    def process(self, deliveries: Sequence[Delivery]) -> BatchOutcome:
        """Apply a batch (records in Kafka order per partition); safe to call again with the same records."""
        outcome = BatchOutcome(received=len(deliveries))
        batched = time.time()
        with self._timed("parking"):
            parked_keys = self._parked_keys()
        if parked_keys != self._parked_before:
            # a case was unparked (retried) since the last batch: its documents changed behind the cache
            self.cache.clear()
        blocked: set[str] = set()  # keys parked from this batch on
        waiting: list[Parked] = []  # records of keys parked before this batch
        fresh: list[Parked] = []  # poison records and the records behind them, of keys parked in this batch
        ready: list[tuple[Delivery, Positioned]] = []
        decoded: list[tuple[Delivery, Positioned | BaseException]] = []
        with self._timed("decode"):
            for delivery in deliveries:
                try:
                    decoded.append((delivery, decode(delivery)))
                except Exception as exc:
                    decoded.append((delivery, exc))
        if parked_keys:
            waiting = [Parked(d, key, _position(item), None) for d, item in decoded
                       if (key := d.key_text) is not None and key in parked_keys]
            # keys whose marker went away since we looked (a retry finished): their records are applied now
            released = self.parking.add_waiting(waiting) if waiting else set()
            if released:
                self.cache.clear()
            waiting = [p for p in waiting if p.key not in released]
            parked_keys -= released
        for delivery, item in decoded:
            key = delivery.key_text
            if key is not None and key in parked_keys:
                continue
            if key is not None and key in blocked:
                fresh.append(Parked(delivery, key, _position(item), None))
            elif isinstance(item, BaseException):
                log.error("poison record %s (key %s): %s", delivery.record_id, key, error_text(item))
                if key is None:  # nothing to hold back: an unkeyed record names no case
                    fresh.append(Parked(delivery, "", None, error_text(item)))
                    continue
                blocked.add(key)
                fresh.append(Parked(delivery, key, None, error_text(item)))
            else:
                ready.append((delivery, item))
        writes, applied, poisoned = self._fold(ready)
        for delivery, item, failure in poisoned:
            log.error("poison event at position %d (%s): %s", item.position, delivery.record_id, error_text(failure))
        fresh = _merge_poisoned(fresh, poisoned, ready)
        if fresh:
            self.parking.park_new([p for p in fresh if p.key])
        self._parked_before = parked_keys | {p.key for p in fresh if p.key}
        outcome.applied = len(applied)
        outcome.writes = len(writes)
        outcome.parked = [*waiting, *fresh]
        outcome.marks = self._marks(applied, [*waiting, *fresh])
        with self._timed("tracking"):
            self._advance(outcome.marks.values(), {"batched": batched, "written": time.time()})
        return outcome

    def _parked_keys(self) -> set[str]:
        now = time.monotonic()
        if now - self._parked_read_at < self.parked_refresh:
            return set(self._parked_before)
        self._parked_read_at = now
        return self.parking.parked_keys()

    def forget(self) -> None:
        """Drop what this processor remembers of the database (documents, parked keys): the partitions it works on
        changed, or another process changed their documents."""
        self.cache.clear()
        self._parked_read_at = float("-inf")

    @contextlib.contextmanager
    def _timed(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - started

    def _fold(
        self, ready: Sequence[tuple[Delivery, Positioned]],
    ) -> tuple[list[Write], list[tuple[Delivery, Positioned]], list[tuple[Delivery, Positioned, BaseException]]]:
        """Fold and store the ready events; return (writes stored, events applied, poison events).

        Fast path: fold_batch over the whole batch, documents from the cache or assumed new; new documents are
        inserted (one insert_many per collection) and those that existed after all are folded again on the stored
        document. If a fold raises, the batch is folded event by event to find the poison ones.
        """
        if not ready:
            return [], [], []
        items = [item for _d, item in ready]
        inserted: list[Write] = []
        replaced: list[Write] = []
        generation = self.cache.generation
        try:
            writes = self._fast(items, inserted, replaced)
        except Exception:
            log.warning("a batch of %d events failed to fold; folding one by one to find the poison", len(ready))
        else:
            with self._timed("update"):
                replace_existing(self.documents, writes)
            self.cache.remember([*inserted, *replaced, *writes], generation)
            return [*inserted, *replaced, *writes], list(ready), []
        self.cache.clear()
        writes, applied, poisoned = self._fold_each(ready)
        if inserted:
            # new documents the fast path inserted before a fold failed: those whose last event did not apply
            # (it belongs to a case parked now) go again, the others are already right
            done = {item.position for _d, item in applied}
            for w in inserted:
                if w.position not in done:
                    self.documents.db[w.collection].delete_one({"_id": w.key, "position": w.position})
        self.documents.write(writes)
        return writes, applied, poisoned

    def fold_events(self, items: Sequence[Positioned]) -> int:
        """Fold and store already decoded events (a rebuild from the event store); a failing fold raises.
        Returns the documents written."""
        inserted: list[Write] = []
        replaced: list[Write] = []
        generation = self.cache.generation
        writes = self._fast(items, inserted, replaced)
        with self._timed("update"):
            replace_existing(self.documents, writes)
        self.cache.remember([*inserted, *replaced, *writes], generation)
        return len(inserted) + len(replaced) + len(writes)

    def _fast(self, items: Sequence[Positioned], inserted: list[Write], replaced: list[Write]) -> list[Write]:
        """Fold and store the batch but for the documents assumed new that existed after all: those are folded
        again on what is stored and returned, for the caller to store. New documents are inserted and those known
        (cached) replaced at the same time, on parallel connections (appended to `inserted` and `replaced`)."""
        assumed: set[tuple[str, str]] = set()

        def optimistic(collection: str, keys: Sequence[str]) -> Mapping[str, Stored]:
            found: dict[str, Stored] = {}
            for key in keys:
                hit = self.cache.get((collection, key))
                if hit is None:
                    assumed.add((collection, key))  # not seen by this worker: most likely new
                else:
                    found[key] = hit
            return found

        with self._timed("fold"):
            writes = fold_batch(self.projections, items, optimistic)
        new = [w for w in writes if (w.collection, w.key) in assumed]
        known = [w for w in writes if (w.collection, w.key) not in assumed]
        if any(w.doc is None for w in new):
            # an event folded on a document this worker has not seen (after a rebalance): the document most likely
            # exists and is folded again below, where a poison event may still show; the known documents wait for
            # that refold (then the caller stores them), so none holds an event the poison path leaves out
            with self._timed("insert"):
                existed = insert_new(self.documents, new)
        else:
            with self._timed("insert+update"):
                existed = insert_and_replace(self.documents, new, known)
            replaced.extend(known)
            known = []
        inserted.extend(w for w in new if (w.collection, w.key) not in existed)
        if existed:
            # folded on a document assumed missing: fold those documents' events again on what is stored
            def stored(collection: str, keys: Sequence[str]) -> Mapping[str, Stored]:
                real = [k for k in keys if (collection, k) in existed]
                found = dict(self.documents.get_many(collection, real)) if real else {}
                found.update(optimistic(collection, [k for k in keys if (collection, k) not in existed]))
                return found

            touching = [item for item in items
                        if any(p.handles(item.event) and (p.collection, p.key(item.event)) in existed
                               for p in self.projections)]
            with self._timed("refold"):
                known.extend(w for w in fold_batch(self.projections, touching, stored)
                             if (w.collection, w.key) in existed)
        return known

    def _fold_each(
        self, ready: Sequence[tuple[Delivery, Positioned]],
    ) -> tuple[list[Write], list[tuple[Delivery, Positioned]], list[tuple[Delivery, Positioned, BaseException]]]:
        """Event by event (a fold raised): the events of a case from its poison event on are left out."""
        overlay: dict[tuple[str, str], Stored] = {}
        pending: dict[tuple[str, str], Write] = {}

        def load(collection: str, keys: Sequence[str]) -> Mapping[str, Stored]:
            missing = [k for k in keys if (collection, k) not in overlay]
            found: dict[str, Stored] = dict(self.documents.get_many(collection, missing)) if missing else {}
            found.update({k: overlay[(collection, k)] for k in keys if (collection, k) in overlay})
            return found

        applied: list[tuple[Delivery, Positioned]] = []
        poisoned: list[tuple[Delivery, Positioned, BaseException]] = []
        blocked: set[str | None] = set()
        for delivery, item in ready:
            key = delivery.key_text
            if key is not None and key in blocked:
                continue  # waits behind this batch's poison event (parked by the caller)
            try:
                writes = fold_batch(self.projections, [item], load)
            except Exception as exc:
                poisoned.append((delivery, item, exc))
                if key is not None:
                    blocked.add(key)
                continue
            applied.append((delivery, item))
            for w in writes:
                overlay[(w.collection, w.key)] = (w.doc, w.position)
                pending[(w.collection, w.key)] = w
        return [pending[slot] for slot in sorted(pending)], applied, poisoned

    def _marks(self, applied: Sequence[tuple[Delivery, Positioned]], parked: Sequence[Parked]) -> dict[
            tuple[str, int], PartitionMark]:
        marks: dict[tuple[str, int], PartitionMark] = {}

        def note(d: Delivery, position: int, when: datetime | None) -> None:
            mark = marks.get((d.topic, d.partition))
            if mark is None:
                marks[(d.topic, d.partition)] = PartitionMark(d.topic, d.partition, d.offset, position, when,
                                                              d if position else None)
                return
            mark.offset = max(mark.offset, d.offset)
            if position > mark.position:
                mark.position, mark.event_time, mark.delivery = position, when, d

        for delivery, item in applied:
            note(delivery, item.position, item.event.occurred_at)
        for p in parked:  # parked records move the offset only: the position says what is visible
            note(p.delivery, 0, None)
        return marks

    def _advance(self, marks: Iterable[PartitionMark], times: Mapping[str, float] | None = None) -> None:
        """Move each partition's tracking document forward (never back: a late, older batch leaves it). One
        document per partition, written side by side (each is a ~10-25 ms transaction on FerretDB)."""

        def advance(record: dict[str, Any]) -> None:
            guard = {"_id": record["_id"], "position": {"$lt": record["position"]}}
            try:
                self.tracking.replace_one(guard, record, upsert=True)
            except DuplicateKeyError:
                self.tracking.replace_one(guard, record)

        self.documents.parallel([functools.partial(advance, mark.record(self.worker, times)) for mark in marks])

    # --- retrying parked events ------------------------------------------------------------------------

    def retry(self, key: str) -> tuple[int, str | None]:
        """Apply a parked key's records in order with the current code; unpark it if all apply.

        Returns (records applied, error of the record it stopped at or None). Safe while workers run: records
        parked meanwhile are picked up by the next round, or applied by the worker once the marker is gone.
        """
        applied = 0
        while True:
            marker = self.parking.marker(key)
            records = self.parking.parked_events(key)
            for record in records:
                delivery = Delivery(record["topic"], int(record["partition"]), int(record["offset"]),
                                    key.encode(), str(record["value"]).encode())
                try:
                    writes = fold_batch(self.projections, [decode(delivery)], self.documents.get_many)
                except Exception as exc:
                    self.parking.set_error(key, delivery.record_id, error_text(exc))
                    return applied, error_text(exc)
                self.cache.clear()
                self.documents.write(writes)
                self.parking.remove_events([delivery.record_id])
                applied += 1
            if marker is None:
                self.forget()
                return applied, None  # records left without a marker (a worker released them): applied now
            if self.parking.release(key, int(marker.get("parked", 0))):
                self.forget()
                return applied, None


class DocumentCache:
    """The documents this worker wrote or read last, by (collection, key), so a batch need not read them again.

    Valid only while the worker owns the partitions whose events made them: cleared on every rebalance (the
    app does it) and whenever a case is unparked (a retry rewrote its documents elsewhere). Least recently used
    documents are dropped beyond `size`.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.generation = 0  # bumped by clear(): a batch that started before a clear must not refill the cache
        self._docs: OrderedDict[tuple[str, str], Stored] = OrderedDict()

    def get(self, slot: tuple[str, str]) -> Stored | None:
        hit = self._docs.get(slot)
        if hit is not None:
            self._docs.move_to_end(slot)
        return hit

    def remember(self, writes: Iterable[Write], generation: int) -> None:
        if self.size <= 0 or generation != self.generation:
            return
        docs = self._docs
        for w in writes:
            slot = (w.collection, w.key)
            docs[slot] = (w.doc, w.position)
            docs.move_to_end(slot)
        while len(docs) > self.size:
            docs.popitem(last=False)

    def clear(self) -> None:
        self.generation += 1
        self._docs.clear()

    def __len__(self) -> int:
        return len(self._docs)


def insert_new(documents: MongoDocumentStore, writes: Sequence[Write]) -> set[tuple[str, str]]:
    """Insert documents believed new (one insert_many per collection); return the (collection, key) of those that
    existed (nothing is written for them: they were folded on a wrong assumption)."""
    existed = documents.insert_new(documents.by_collection(writes))
    return {(collection, w.key) for collection, group in existed.items() for w in group}


def insert_and_replace(documents: MongoDocumentStore, new: Sequence[Write],
                       known: Sequence[Write]) -> set[tuple[str, str]]:
    """insert_new(new) and replace_existing(known) at once (different documents); returns what insert_new does."""
    existed = documents.insert_and_replace(documents.by_collection(new), documents.by_collection(known))
    return {(collection, w.key) for collection, group in existed.items() for w in group}


def replace_existing(documents: MongoDocumentStore, writes: Sequence[Write]) -> None:
    """Store documents known to exist (in the cache, or found by insert_new): each replaced only over an older
    position, without the insert attempt write() makes first (on FerretDB a failed insert costs as much as one
    that lands). A document missing after all (its collection dropped under a running worker) is not written."""
    documents.replace_older(documents.by_collection(writes))


def _position(item: Positioned | BaseException) -> int | None:
    return item.position if isinstance(item, Positioned) else None


def _merge_poisoned(
    fresh: list[Parked], poisoned: Sequence[tuple[Delivery, Positioned, BaseException]],
    ready: Sequence[tuple[Delivery, Positioned]],
) -> list[Parked]:
    """Add the fold's poison events, and the ready events of their keys that came after them, to `fresh`;
    the result is in Kafka order (by partition and offset) so each key's first record is its poison one."""
    if not poisoned:
        return fresh
    out = list(fresh)
    first: dict[str, int] = {}
    for delivery, item, exc in poisoned:
        key = delivery.key_text or ""
        first.setdefault(key, delivery.offset)
        out.append(Parked(delivery, key, item.position, error_text(exc)))
    for delivery, item in ready:
        key = delivery.key_text or ""
        if key in first and delivery.offset > first[key] and not any(
                p.delivery.record_id == delivery.record_id for p in out):
            out.append(Parked(delivery, key, item.position, None))
    return sorted(out, key=lambda p: (p.delivery.topic, p.delivery.partition, p.delivery.offset))

