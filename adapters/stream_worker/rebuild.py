"""Operator actions on the MongoDB read models: rebuild them (from Kafka or from the event store) and retry
parked events. Stop the workers before a rebuild: a live worker writing while the collections are dropped
would leave documents ahead of events the rebuild has not folded yet."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from adapters.mongo_documents import MongoDocumentStore
from adapters.stream_worker.app import WorkerConfig, event_topics
from adapters.stream_worker.dead_letters import KafkaDeadLetters, dead_letter_topic, ensure_topics
from adapters.stream_worker.parking import Delivery, MongoParking
from adapters.stream_worker.processing import BatchProcessor
from commands.ports import EventStore
from domain.events import Positioned
from projections.base import Projection
from projections.catalog import ALL

REBUILD_CACHE = 200_000  # documents kept in memory by a rebuild (it is the only writer)
# events per rebuild batch at least: a document touched in several batches is replaced once per batch, and
# replaces are what a rebuild spends its time on (one statement each on FerretDB)
REBUILD_BATCH = 10_000


@dataclass(frozen=True)
class RebuildResult:
    """How a rebuild went."""

    events: int
    seconds: float
    writes: int
    parked: int = 0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def line(self, source: str) -> str:
        parked = f", {self.parked} parked (see `casestream worker retry-dead-letters --list`)" if self.parked else ""
        return (f"rebuild from {source}: {self.events:,} events in {self.seconds:.1f}s = {self.rate:,.0f} events/s "
                f"({self.writes:,} document writes{parked})")


def _documents(config: WorkerConfig, projections: Sequence[Projection]) -> MongoDocumentStore:
    return MongoDocumentStore(config.mongo_url, config.database, projections)


def _reset(documents: MongoDocumentStore) -> MongoParking:
    documents.reset(defer_indexes=True)
    parking = MongoParking(documents.db)
    parking.reset()
    return parking


def rebuild_from_store(
    config: WorkerConfig, store: EventStore, projections: Sequence[Projection] = ALL,
    documents: MongoDocumentStore | None = None,
) -> RebuildResult:
    """Drop the read models and fold the event store's whole log into them (fold_batch over read_batch, through the
    workers' write path)."""
    docs = documents or _documents(config, projections)
    try:
        # the same fold and write path as the workers (new documents inserted in bulk, no per-key reads)
        processor = BatchProcessor(docs, projections, _reset(docs), worker=config.worker_name,
                                   cache_size=REBUILD_CACHE)
        types = frozenset(t.type_name() for p in projections for t in p.folds)
        started = time.perf_counter()
        after = events = writes = 0
        size = max(config.batch_size, REBUILD_BATCH)
        while True:
            batch: list[Positioned] = []
            last = after
            while len(batch) < size:  # pages hold bookkeeping too (filtered out): gather a full batch of events
                page, reached = store.read_batch(last, size - len(batch), types)
                if reached == last:
                    break
                batch.extend(page)
                last = reached
            if last == after:
                break
            try:
                writes += processor.fold_events(batch)
            except Exception as exc:
                raise RuntimeError(f"an event after log position {after} (up to {last}) does not fold: {exc!r}; "
                                   "fix the projection and rebuild again") from exc
            events += len(batch)
            after = last
        docs.ensure_indexes()
        return RebuildResult(events, time.perf_counter() - started, writes)
    finally:
        if documents is None:
            docs.close()


async def rebuild_from_kafka(
    config: WorkerConfig, projections: Sequence[Projection] = ALL, documents: MongoDocumentStore | None = None,
) -> RebuildResult:
    """Drop the read models and fold every event topic from its first offset up to its end offset at the start
    (no consumer group: the live workers' offsets are untouched). Poison events are parked as a worker would."""
    docs = documents or _documents(config, projections)
    dead = KafkaDeadLetters(config.bootstrap, dead_letter_topic(config.prefix), config.worker_name)
    consumer = AIOKafkaConsumer(bootstrap_servers=config.bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024)
    try:
        await ensure_topics(config.bootstrap, [dead_letter_topic(config.prefix)], config.partitions,
                            config.replication_factor)
        processor = BatchProcessor(docs, projections, await asyncio.to_thread(_reset, docs),
                                   worker=config.worker_name, cache_size=REBUILD_CACHE)
        await consumer.start()
        partitions = await _partitions(config.bootstrap, event_topics(config.prefix))
        started = time.perf_counter()
        events = writes = parked = 0
        if partitions:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            remaining = {tp for tp in partitions if end[tp] > 0}
            while remaining:
                fetched = await consumer.getmany(*remaining, timeout_ms=1000,
                                                 max_records=max(config.batch_size, REBUILD_BATCH))
                deliveries = [
                    Delivery(r.topic, r.partition, r.offset, r.key, r.value or b"", r.timestamp / 1000)
                    for tp, records in fetched.items() for r in records if r.offset < end[tp]
                ]
                if deliveries:
                    outcome = await asyncio.to_thread(processor.process, deliveries)
                    await dead.publish(outcome.parked)
                    events += outcome.received
                    writes += outcome.writes
                    parked += len(outcome.parked)
                for tp in list(remaining):
                    if await consumer.position(tp) >= end[tp]:
                        remaining.discard(tp)
        await asyncio.to_thread(docs.ensure_indexes)
        return RebuildResult(events, time.perf_counter() - started, writes, parked)
    finally:
        await consumer.stop()
        await dead.close()
        if documents is None:
            docs.close()


async def _partitions(bootstrap: str, names: Sequence[str]) -> list[TopicPartition]:
    """Every partition of the named topics that exist (a consumer without a subscription knows none)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        present = [name for name in names if name in set(await admin.list_topics())]
        described = await admin.describe_topics(present) if present else []
    finally:
        await admin.close()
    return sorted(TopicPartition(str(t["topic"]), int(p["partition"])) for t in described for p in t["partitions"])


def run_rebuild_from_kafka(config: WorkerConfig) -> RebuildResult:
    return asyncio.run(rebuild_from_kafka(config))


def retry_parked(
    config: WorkerConfig, *, keys: Sequence[str] | None = None, list_only: bool = False,
    echo: Callable[[str], None] = print, projections: Sequence[Projection] = ALL,
    documents: MongoDocumentStore | None = None,
) -> int:
    """Apply each parked case's records in order and unpark it; return how many cases are still stuck."""
    docs = documents or _documents(config, projections)
    try:
        parking = MongoParking(docs.db)
        processor = BatchProcessor(docs, projections, parking, worker=config.worker_name)
        wanted = list(keys) if keys else sorted(parking.parked_keys() | parking.keys_with_events())
        if not wanted:
            echo("nothing is parked")
        stuck = 0
        for key in wanted:
            marker = parking.marker(key) or {}
            records = parking.parked_events(key)
            where = (f" since {marker.get('topic')}:{marker.get('partition')}@{marker.get('since_offset')} "
                     f"(position {marker.get('position')})") if marker else ""
            echo(f"{key}: {len(records)} parked{where}: {marker.get('error') or 'no error recorded'}")
            if list_only:
                continue
            applied, error = processor.retry(key)
            if error is None:
                echo(f"{key}: {applied} applied in order; unparked")
            else:
                stuck += 1
                echo(f"{key}: {applied} applied, then stopped: {error} (still parked)")
        return stuck
    finally:
        if documents is None:
            docs.close()
