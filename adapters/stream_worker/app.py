"""`casestream worker`: a Faust app whose one agent folds the event topics into the MongoDB read models.

The agent only translates: it queues records (manual acks), takes them in batches, hands each batch to the
`BatchProcessor` (decode, park, `fold_batch`, one write, tracking) in a thread, publishes the batch's dead
letters, and only then acknowledges the records, so their offsets are committed after the write.

Order: a case's events share a key, so one partition; Kafka keeps a partition's order, one agent instance
(concurrency 1) per process consumes it, and a partition is owned by one worker of the group at a time. Across
a rebalance the new owner starts at the last committed offset and the position stored in each document refuses
whatever the old owner had already applied. This holds because every read model's document is touched by the
events of one aggregate only (projections key documents by aggregate id or event id).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
import orjson

from adapters.contract import DEFAULT_PARTITIONS, DEFAULT_PREFIX, topics
from adapters.mongo_documents import MongoDocumentStore
from adapters.stream_worker.dead_letters import dead_letter, dead_letter_topic, ensure_topics
from adapters.stream_worker.parking import Delivery, MongoParking, Parked
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


def broker_url(bootstrap: str) -> str:
    """host:port[,host:port] -> Faust's kafka://host:port[;kafka://host:port]."""
    return ";".join(f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip())


def deliveries_of(events: Sequence[Any]) -> list[Delivery]:
    """Faust events -> the raw records the processor works on."""
    out = []
    for event in events:
        m = event.message
        out.append(Delivery(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp))
    return out


class StreamWorker:
    """One worker process: the Faust app, its agent, the MongoDB read models and the dead letters."""

    def __init__(
        self, config: WorkerConfig, projections: Sequence[Projection] = ALL,
        documents: MongoDocumentStore | None = None,
    ) -> None:
        self.config = config
        self.name = config.worker_name
        self.documents = documents or MongoDocumentStore(config.mongo_url, config.database, projections)
        self.processor = BatchProcessor(self.documents, projections, MongoParking(self.documents.db), worker=self.name)
        self.datadir = Path(tempfile.mkdtemp(prefix="casestream-worker-"))
        self.folded = 0
        self.parked = 0
        self.batches = 0
        self.started = time.monotonic()
        self.app = faust.App(
            config.group,
            broker=broker_url(config.bootstrap),
            key_serializer="raw",
            value_serializer="raw",
            datadir=str(self.datadir),
            web_enabled=False,
            topic_disable_leader=True,
            consumer_auto_offset_reset="earliest",
            broker_rebalance_timeout=config.rebalance_timeout,
            broker_session_timeout=config.session_timeout,
            # members hear of a rebalance through their heartbeat: one slower than the rebalance timeout misses
            # the window, is dropped, rejoins and starts the next rebalance (two workers then ping-pong forever)
            broker_heartbeat_interval=max(0.2, min(config.session_timeout / 3, config.rebalance_timeout / 4)),
            broker_max_poll_records=config.batch_size,
            stream_buffer_maxsize=max(4096, config.batch_size * 2),
            producer_acks=-1,
        )
        self.source = self.app.topic(*event_topics(config.prefix), key_type=bytes, value_type=bytes)
        self.dead = self.app.topic(dead_letter_topic(config.prefix), key_type=bytes, value_type=bytes)
        self.app.agent(self.source, name=f"{config.group}.fold", concurrency=1)(self._fold)
        # the document cache is only valid for the partitions this worker owns
        self.app.on_partitions_revoked.connect(self._forget)
        self.app.on_partitions_assigned.connect(self._forget)

    async def _forget(self, *_args: Any, **_kwargs: Any) -> None:
        self.processor.cache.clear()

    async def _fold(self, stream: Any) -> None:
        """Records flow into a bounded queue while the previous batch is being written, so a backlog is folded in
        full batches (Faust's `take_events` stops buffering while its batch is processed, and then waits
        `within` for a handful). Records are acknowledged only after their batch is stored."""
        manual = stream.noack()
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=2 * self.config.batch_size)
        drain = asyncio.ensure_future(self._drain(manual, queue))
        try:
            async for event in manual.events():
                if drain.done():
                    drain.result()  # the drain task failed: let Faust see it
                await queue.put(event)
        finally:
            drain.cancel()

    async def _drain(self, stream: Any, queue: asyncio.Queue[Any]) -> None:
        """Take what is queued (up to a batch; waiting at most `within` for more), fold it, then ack it."""
        loop = asyncio.get_running_loop()
        while True:
            events = [await queue.get()]
            deadline = loop.time() + self.config.within
            while len(events) < self.config.batch_size:
                if not queue.empty():
                    events.append(queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    events.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            await self.handle(deliveries_of(events))
            for event in events:
                await stream.ack(event)

    async def handle(self, deliveries: Sequence[Delivery]) -> BatchOutcome:
        """Apply one batch, retrying (with back-off) until MongoDB and the dead-letter topic have taken it."""
        delay = 0.2
        while True:
            try:
                outcome = await asyncio.to_thread(self.processor.process, deliveries)
                await self.publish_dead_letters(outcome.parked)
            except Exception:
                log.exception("worker %s: a batch of %d records failed; retrying in %.1fs", self.name,
                              len(deliveries), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self.batches += 1
            self.folded += outcome.applied
            self.parked += len(outcome.parked)
            if self.batches % 50 == 1:
                elapsed = max(1e-9, time.monotonic() - self.started)
                log.info("worker %s: %d events folded (%.0f/s since start), %d parked", self.name, self.folded,
                         self.folded / elapsed, self.parked)
            return outcome

    async def publish_dead_letters(self, items: Sequence[Parked]) -> None:
        """Send each parked record to the dead-letter topic and wait for the broker's acks."""
        futures = [
            await self.dead.send(key=item.delivery.key, value=orjson.dumps(dead_letter(item, self.name)))
            for item in items
        ]
        for future in futures:
            await future

    def prepare(self) -> None:
        """Create the event and dead-letter topics if missing (before Faust subscribes)."""
        names = [*event_topics(self.config.prefix), dead_letter_topic(self.config.prefix)]
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # Faust runs on this loop afterwards
        loop.run_until_complete(
            ensure_topics(self.config.bootstrap, names, self.config.partitions, self.config.replication_factor)
        )

    def run(self) -> None:
        """Run until SIGINT or SIGTERM (Faust's worker handles both), then release everything."""
        self.prepare()
        worker = faust.Worker(self.app, loglevel="INFO", redirect_stdouts=False)
        try:
            worker.execute_from_commandline()
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                raise
        finally:
            self.close()

    def close(self) -> None:
        self.documents.close()
        shutil.rmtree(self.datadir, ignore_errors=True)
