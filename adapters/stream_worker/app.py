"""`casestream worker`: one Kafka consumer-group member that folds the event topics into the MongoDB read models.

A plain aiokafka group consumer (manual commits): it takes what has been fetched (up to a batch, waiting at most
`within` for more), hands the batch to the `BatchProcessor` (decode, park, `fold_batch`, one write, tracking) in
a thread, publishes the batch's dead letters, and only then commits the batch's offsets. The consumer keeps
fetching in the background while a batch is written, so a backlog is folded in full batches. (It was a Faust
agent: Faust's per-record path — conductor, stream, one ack per record — cost ~230 us of CPU per event, more than
decoding and folding it, on the same two cores as the database; bench/README.md.)

Order: a case's events share a key, so one partition; Kafka keeps a partition's order, the consumer hands each
partition's records over in offset order, and a partition is owned by one worker of the group at a time. A
rebalance waits for the batch in flight (its offsets are committed first); the new owner starts at the last
committed offset and the position stored in each document refuses whatever the old owner had already applied.
This holds because every read model's document is touched by the events of one aggregate only (projections key
documents by aggregate id or event id).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from adapters.cloudevents import RELAY_READ_AT_HEADER
from adapters.contract import DEFAULT_PARTITIONS, DEFAULT_PREFIX, topics
from adapters.mongo_documents import MongoDocumentStore
from adapters.stream_worker.dead_letters import KafkaDeadLetters, dead_letter_topic, ensure_topics
from adapters.stream_worker.parking import Delivery, MongoParking
from adapters.stream_worker.processing import BatchOutcome, BatchProcessor
from projections.base import Projection
from projections.catalog import ALL

log = logging.getLogger(__name__)


def default_worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class WorkerConfig:
    """Where a worker reads, writes and how it batches (from Settings in the CLI)."""

    bootstrap: str = "127.0.0.1:29092"
    prefix: str = DEFAULT_PREFIX
    partitions: int = DEFAULT_PARTITIONS
    replication_factor: int = 0
    group: str = "casestream-worker"
    mongo_url: str = "mongodb://127.0.0.1:27517/"
    database: str = "casestream"
    batch_size: int = 2000
    within: float = 0.05
    rebalance_timeout: float = 5.0
    session_timeout: float = 10.0  # a killed worker's partitions move to the others after this
    name: str = ""

    @property
    def worker_name(self) -> str:
        return self.name or default_worker_name()


def event_topics(prefix: str) -> list[str]:
    """The topics the relay publishes to (one per event family)."""
    return sorted(set(topics(prefix).values()))


def relay_read_at(headers: Any) -> float | None:
    """The relay's read-time header of a record (None if absent or malformed)."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for name, value in pairs:
        if name == RELAY_READ_AT_HEADER:
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None


def deliveries_of(records: Sequence[ConsumerRecord[bytes, bytes]], received: float) -> list[Delivery]:
    """Consumer records (received at `received`, Unix seconds) -> the raw records the processor works on."""
    return [
        Delivery(r.topic, r.partition, r.offset, r.key, r.value or b"", r.timestamp / 1000,
                 relay_read_at(r.headers), received)
        for r in records
    ]


class _Handover(ConsumerRebalanceListener):  # type: ignore[misc]
    """Rebalances wait for the batch in flight and its commit; the document cache is forgotten either way."""

    def __init__(self, worker: StreamWorker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.worker.batch_lock:
            await self.worker.settle_commit()
            self.worker.processor.forget()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.worker.processor.forget()
        log.info("worker %s: assigned %s", self.worker.name,
                 ", ".join(sorted(f"{tp.topic}:{tp.partition}" for tp in assigned)) or "nothing")


class StreamWorker:
    """One worker process: its group consumer, the MongoDB read models and the dead letters."""

    def __init__(
        self, config: WorkerConfig, projections: Sequence[Projection] = ALL,
        documents: MongoDocumentStore | None = None,
    ) -> None:
        self.config = config
        self.name = config.worker_name
        self.documents = documents or MongoDocumentStore(config.mongo_url, config.database, projections)
        self.processor = BatchProcessor(self.documents, projections, MongoParking(self.documents.db), worker=self.name)
        self.processor.parked_refresh = 1.0  # one group member: parked keys read once a second, not per batch
        self.dead = KafkaDeadLetters(config.bootstrap, dead_letter_topic(config.prefix), self.name)
        self.folded = 0
        self.parked = 0
        self.batches = 0
        self.started = time.monotonic()
        self.batch_lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._commit: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._logged_at = time.monotonic()

    def _new_consumer(self) -> AIOKafkaConsumer:
        c = self.config
        return AIOKafkaConsumer(
            bootstrap_servers=c.bootstrap,
            group_id=c.group,
            client_id=f"casestream-worker-{self.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=c.batch_size,
            session_timeout_ms=int(c.session_timeout * 1000),
            rebalance_timeout_ms=int(c.rebalance_timeout * 1000),
            # members hear of a rebalance through their heartbeat: one slower than the rebalance timeout misses
            # the window, is dropped, rejoins and starts the next rebalance (two workers then ping-pong forever)
            heartbeat_interval_ms=int(1000 * max(0.2, min(c.session_timeout / 3, c.rebalance_timeout / 4))),
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )

    async def serve(self, stop: asyncio.Event) -> None:
        """Consume, fold and commit until stop is set; then commit what was folded and leave the group."""
        names = [*event_topics(self.config.prefix), dead_letter_topic(self.config.prefix)]
        await ensure_topics(self.config.bootstrap, names, self.config.partitions, self.config.replication_factor)
        self._stop = stop
        consumer = self._consumer = self._new_consumer()
        consumer.subscribe(event_topics(self.config.prefix), listener=_Handover(self))
        await consumer.start()
        log.info("worker %s: joined group %s", self.name, self.config.group)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                fetch = asyncio.ensure_future(consumer.getmany(timeout_ms=1000, max_records=self.config.batch_size))
                await asyncio.wait([fetch, stopping], return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    fetch.cancel()
                    break
                records = _in_order(fetch.result())
                if not records:
                    continue
                received = time.time()
                if len(records) < self.config.batch_size and self.config.within > 0:
                    # a small batch waits a little for more (one MongoDB write for many events)
                    more = await consumer.getmany(timeout_ms=int(self.config.within * 1000),
                                                  max_records=self.config.batch_size - len(records))
                    records = _merge(records, more)
                async with self.batch_lock:
                    owned = consumer.assignment()
                    # records of partitions revoked since they were fetched belong to their new owner now
                    mine = [r for r in records if TopicPartition(r.topic, r.partition) in owned]
                    if mine:
                        await self.handle(deliveries_of(mine, received))
                        await self.settle_commit()
                        self._commit = asyncio.ensure_future(self._commit_offsets(consumer, mine))
        finally:
            stopping.cancel()
            async with self.batch_lock:
                await self.settle_commit()
            with contextlib.suppress(Exception):
                await consumer.stop()
            await self.dead.close()
            self._consumer = None

    async def _commit_offsets(self, consumer: AIOKafkaConsumer, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
        try:
            await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()})
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # a rebalance took the partitions: their new owner starts at the last committed offset and the
            # documents' positions refuse what this batch already applied
            log.warning("worker %s: committing offsets failed (%s: %s)", self.name, type(exc).__name__, exc)

    async def settle_commit(self) -> None:
        """Wait for the last batch's offset commit (it runs while the next batch is fetched and folded)."""
        commit, self._commit = self._commit, None
        if commit is not None:
            await commit

    async def handle(self, deliveries: Sequence[Delivery]) -> BatchOutcome:
        """Apply one batch, retrying (with back-off) until MongoDB and the dead-letter topic have taken it."""
        delay = 0.2
        while True:
            try:
                outcome = await asyncio.to_thread(self.processor.process, deliveries)
                await self.dead.publish(outcome.parked)
            except Exception:
                if self._stop is not None and self._stop.is_set():
                    raise  # stopping: the batch is not committed, the next owner folds it again
                log.exception("worker %s: a batch of %d records failed; retrying in %.1fs", self.name,
                              len(deliveries), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self.batches += 1
            self.folded += outcome.applied
            self.parked += len(outcome.parked)
            if self.batches == 1 or time.monotonic() - self._logged_at >= 10:
                self._logged_at = time.monotonic()
                elapsed = max(1e-9, time.monotonic() - self.started)
                phases = ", ".join(f"{k} {v:.1f}" for k, v in sorted(self.processor.seconds.items()))
                log.info("worker %s: %d events folded in %d batches (%.0f/s since start), %d parked; seconds by "
                         "phase: %s", self.name, self.folded, self.batches, self.folded / elapsed, self.parked,
                         phases)
            return outcome

    def run(self) -> None:
        """Run until SIGINT or SIGTERM, then commit, leave the group and release everything."""

        # the document cache keeps up to 50,000 documents alive: with the default thresholds the collector walks
        # them over and over while batches allocate their events and documents (~20% of the CPU per event)
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await self.serve(stop)

        try:
            asyncio.run(main())
        finally:
            self.close()

    def close(self) -> None:
        self.documents.close()


def _in_order(fetched: Mapping[TopicPartition, Sequence[ConsumerRecord[Any, Any]]]) -> list[ConsumerRecord[Any, Any]]:
    """Every fetched record, partition by partition, each partition in offset order."""
    return [r for tp in sorted(fetched, key=lambda tp: (tp.topic, tp.partition)) for r in fetched[tp]]


def _merge(records: list[ConsumerRecord[Any, Any]],
           more: Mapping[TopicPartition, Sequence[ConsumerRecord[Any, Any]]]) -> list[ConsumerRecord[Any, Any]]:
    """Records of a second fetch after the first's (each partition's records stay in offset order)."""
    if not more:
        return records
    return sorted([*records, *_in_order(more)], key=lambda r: (r.topic, r.partition, r.offset))
