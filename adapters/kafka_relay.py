"""The outbox relay: tails the event store's notification log and publishes each event to Kafka.

Guarantee: everything stored reaches Kafka, in log order per aggregate, at least once.

- The last published position lives in `relay_position(name, position)` in the same database as the
  events (SQLite file or PostgreSQL), written only after the broker acknowledged the whole batch
  (idempotent producer, acks=all). A crash anywhere restarts from the stored position: nothing is
  skipped; the batch in flight at the crash may be sent again (consumers dedupe by `position`).
- One batch: read up to `batch_size` notifications after the stored position, send each published one
  (topic by family, key = aggregate id, CloudEvents structured JSON value), await every ack, store the
  batch's last notification id (internal events are skipped but still advance the position).
- A failed send stops the batch before its position is stored; the relay recreates the producer and
  resends from the stored position after a back-off.
- With its position the relay stores, per topic partition, the last position it has published there
  (`relay_partition_head`, same transaction). A reader that sees position R knows every event at or below
  R is in Kafka and where each partition's last one is: enough to tell whether a consumer that tracks
  positions per partition has applied everything up to a position, without reading the event log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner, murmur2

from adapters import cloudevents
from adapters.contract import DEFAULT_PARTITIONS, DEFAULT_PREFIX, TOPIC_FAMILIES, topic_name, topics
from adapters.event_store import RecorderEventStore
from adapters.kafka_retry import with_kafka_retries
from domain.events import Positioned

log = logging.getLogger(__name__)
CONTENT_TYPE_HEADER = ("content-type", cloudevents.STRUCTURED_CONTENT_TYPE.encode())


@functools.lru_cache(maxsize=100_000)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def key_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """Kafka's default keyed partitioning (murmur2, as the Java client does), with the hash cached:
    aiokafka's murmur2 is pure Python and was most of the relay's CPU time; a case's events share a key."""
    if key is None:
        return int(DefaultPartitioner()(key, all_partitions, available))
    return all_partitions[_key_hash(key) % len(all_partitions)]


class PositionStore(Protocol):
    """Where a relay keeps the last position the broker acknowledged."""

    def load(self, name: str) -> int: ...

    def save(self, name: str, position: int) -> None: ...


Heads = dict[tuple[str, int], int]  # (topic, partition) -> last position published there


@runtime_checkable
class HeadStore(Protocol):
    """A position store that also keeps the last published position per topic partition."""

    def save_heads(self, name: str, position: int, heads: Mapping[tuple[str, int], int]) -> None:
        """Store position and raise each partition's head (never lowers one), in one transaction."""
        ...

    def load_heads(self, name: str) -> tuple[int, Heads]:
        """The stored position and the partition heads, read as one consistent snapshot."""
        ...


class SqlitePositions:
    """relay_position in the SQLite event store file (a plain sqlite3 connection, synchronous=FULL)."""

    def __init__(self, path: str) -> None:
        self.path = path
        conn = self._connect()
        try:
            with conn:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS relay_position (name TEXT PRIMARY KEY, position INTEGER NOT NULL)"
                )
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS relay_partition_head (name TEXT NOT NULL, topic TEXT NOT NULL, "
                    "partition INTEGER NOT NULL, position INTEGER NOT NULL, PRIMARY KEY (name, topic, partition))"
                )
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30)
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def load(self, name: str) -> int:
        conn = self._connect()
        try:
            row = conn.execute("SELECT position FROM relay_position WHERE name=?", (name,)).fetchone()
        finally:
            conn.close()
        return int(row[0]) if row else 0

    def save(self, name: str, position: int) -> None:
        self.save_heads(name, position, {})

    def save_heads(self, name: str, position: int, heads: Mapping[tuple[str, int], int]) -> None:
        conn = self._connect()
        try:
            with conn:
                if heads:
                    conn.executemany(
                        "INSERT INTO relay_partition_head (name, topic, partition, position) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT(name, topic, partition) DO UPDATE SET position=max(position, excluded.position)",
                        [(name, topic, partition, head) for (topic, partition), head in heads.items()],
                    )
                conn.execute(
                    "INSERT INTO relay_position (name, position) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET position=excluded.position",
                    (name, position),
                )
        finally:
            conn.close()

    def load_heads(self, name: str) -> tuple[int, Heads]:
        conn = self._connect()
        try:
            with conn:  # one read transaction: the position and the heads it covers
                row = conn.execute("SELECT position FROM relay_position WHERE name=?", (name,)).fetchone()
                rows = conn.execute(
                    "SELECT topic, partition, position FROM relay_partition_head WHERE name=?", (name,)
                ).fetchall()
        finally:
            conn.close()
        return (int(row[0]) if row else 0), {(str(t), int(p)): int(h) for t, p, h in rows}


class PostgresPositions:
    """relay_position in the PostgreSQL event store's database (through the recorder's datastore pool)."""

    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore
        schema = getattr(datastore, "schema", "")
        self.table = f"{schema}.relay_position" if schema else "relay_position"
        self.heads_table = f"{schema}.relay_partition_head" if schema else "relay_partition_head"
        with datastore.transaction(commit=True) as curs:
            curs.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} (name text PRIMARY KEY, position bigint NOT NULL)"
            )
            curs.execute(
                f"CREATE TABLE IF NOT EXISTS {self.heads_table} (name text NOT NULL, topic text NOT NULL, "
                "partition integer NOT NULL, position bigint NOT NULL, PRIMARY KEY (name, topic, partition))"
            )

    def load(self, name: str) -> int:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(f"SELECT position FROM {self.table} WHERE name=%s", (name,))
            row = curs.fetchone()
        return int(row["position"]) if row else 0

    def save(self, name: str, position: int) -> None:
        self.save_heads(name, position, {})

    def save_heads(self, name: str, position: int, heads: Mapping[tuple[str, int], int]) -> None:
        with self.datastore.transaction(commit=True) as curs:
            if heads:
                curs.executemany(
                    f"INSERT INTO {self.heads_table} AS h (name, topic, partition, position) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (name, topic, partition) "
                    "DO UPDATE SET position=GREATEST(h.position, EXCLUDED.position)",
                    [(name, topic, partition, head) for (topic, partition), head in sorted(heads.items())],
                )
            curs.execute(
                f"INSERT INTO {self.table} (name, position) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET position=EXCLUDED.position",
                (name, position),
            )

    def load_heads(self, name: str) -> tuple[int, Heads]:
        with self.datastore.transaction(commit=False) as curs:
            # one statement, so one snapshot: the position and the heads written with it
            curs.execute(
                f"SELECT '' AS topic, -1 AS partition, position FROM {self.table} WHERE name=%s "
                f"UNION ALL SELECT topic, partition, position FROM {self.heads_table} WHERE name=%s",
                (name, name),
            )
            rows = curs.fetchall()
        position = 0
        heads: Heads = {}
        for row in rows:
            if row["partition"] == -1:
                position = int(row["position"])
            else:
                heads[(str(row["topic"]), int(row["partition"]))] = int(row["position"])
        return position, heads


def positions_for(store: RecorderEventStore) -> PositionStore:
    """The position store living in the same database as the event store's events."""
    datastore = getattr(store.recorder, "datastore", None)
    kind = type(datastore).__name__
    if kind == "PostgresDatastore":
        return PostgresPositions(datastore)
    if kind == "SQLiteDatastore":
        return SqlitePositions(datastore.pool.db_name)  # type: ignore[union-attr]
    raise TypeError(f"no relay position store for {kind}")


@dataclass(frozen=True)
class RelayConfig:
    bootstrap: str = "127.0.0.1:29092"
    prefix: str = DEFAULT_PREFIX
    partitions: int = DEFAULT_PARTITIONS
    replication_factor: int = 0  # 0: min(3, number of brokers)
    name: str = "kafka"
    batch_size: int = 500
    poll_interval: float = 0.05  # PostgreSQL has no wake-up from another process: an idle log is polled
    retry_backoff: float = 1.0
    linger_ms: int = 5


class KafkaRelay:
    """Publishes the event log to Kafka, durably tracking the last acknowledged position."""

    def __init__(
        self, store: RecorderEventStore, config: RelayConfig | None = None, positions: PositionStore | None = None,
    ) -> None:
        self.store = store
        self.config = config or RelayConfig()
        self.positions = positions or positions_for(store)
        self.topic_of = topics(self.config.prefix)
        self.types = frozenset(self.topic_of)
        self.position = 0
        self.published = 0
        self._producer: AIOKafkaProducer | None = None
        self._wake = asyncio.Event()

    # --- set-up ----------------------------------------------------------------------------------------

    def topic_names(self) -> list[str]:
        return [topic_name(family, self.config.prefix) for family in TOPIC_FAMILIES]

    async def ensure_topics(self) -> None:
        """Create every family's topic with the configured partition count (existing ones are kept)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.config.bootstrap)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            replicas = self.config.replication_factor
            if replicas <= 0:
                replicas = min(3, len((await admin.describe_cluster())["brokers"]))
            wanted = [
                NewTopic(name, self.config.partitions, replicas) for name in self.topic_names() if name not in existing
            ]
            if wanted:
                with contextlib.suppress(TopicAlreadyExistsError):  # another relay created it first
                    response = await admin.create_topics(wanted)
                    for topic, code, message in _topic_errors(response):
                        if code not in (0, TopicAlreadyExistsError.errno):
                            raise RuntimeError(f"creating topic {topic} failed: error {code} {message}")
            described = await admin.describe_topics(self.topic_names())
            for topic in described:
                count = len(topic.get("partitions", ()))
                if count < self.config.partitions:
                    log.warning("topic %s has %d partitions (< %d); not changed, since adding partitions "
                                "would move keys", topic.get("topic"), count, self.config.partitions)
        finally:
            await admin.close()

    async def _start_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.config.bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=self.config.linger_ms,
            partitioner=key_partitioner,
            client_id=f"casestream-relay-{self.config.name}",
        )
        await producer.start()
        return producer

    async def _stop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    # --- work ------------------------------------------------------------------------------------------

    def wake(self) -> None:
        """Look at the log now instead of at the next poll (call on the relay's loop; from another thread use
        loop.call_soon_threadsafe(relay.wake))."""
        self._wake.set()

    async def step(self) -> int:
        """Publish the next batch; return how many notifications it advanced over (0: nothing new)."""
        after = self.position
        batch, last = await asyncio.to_thread(self.store.read_batch, after, self.config.batch_size, self.types)
        if last == after:
            return 0
        heads = await self.publish(batch, read_at=time.time())
        if isinstance(self.positions, HeadStore):
            await asyncio.to_thread(self.positions.save_heads, self.config.name, last, heads)
        else:
            await asyncio.to_thread(self.positions.save, self.config.name, last)
        self.position = last
        return last - after

    async def publish(self, batch: Sequence[Positioned], read_at: float | None = None) -> Heads:
        """Send every event of a batch, wait until the broker acknowledged all of them; return the last position
        each topic partition received. `read_at`: when the batch was read from the store (a record header)."""
        if not batch:
            return {}
        if self._producer is None:
            self._producer = await self._start_producer()
        producer = self._producer
        stamp = f"{time.time() if read_at is None else read_at:.6f}".encode()
        headers = [CONTENT_TYPE_HEADER, (cloudevents.RELAY_READ_AT_HEADER, stamp)]
        futures = []
        for item in batch:
            event = item.event
            value = cloudevents.dumps(cloudevents.to_cloudevent(item.position, event))
            futures.append(await producer.send(
                self.topic_of[event.type_name()], value=value, key=str(event.aggregate_id).encode(),
                headers=headers,
            ))
        acks = await asyncio.gather(*futures)
        self.published += len(batch)
        heads: Heads = {}
        for item, ack in zip(batch, acks, strict=True):
            slot = (str(ack.topic), int(ack.partition))
            heads[slot] = max(heads.get(slot, 0), item.position)
        return heads

    async def start(self, attempts: int = 30) -> None:
        """Create the topics (retried with back-off for about two minutes while a broker is unreachable, so a relay
        starting while one node of the cluster restarts does not die with it), load the position, open the
        producer."""
        await with_kafka_retries(self.ensure_topics, "creating topics", log, attempts)
        self.position = await asyncio.to_thread(self.positions.load, self.config.name)
        self._producer = await self._start_producer()
        log.info("relay %s starts after position %d", self.config.name, self.position)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Relay until stop is set (or the task is cancelled); failed batches are retried from the stored position."""
        stop = stop or asyncio.Event()
        await self.start()
        try:
            while not stop.is_set():
                try:
                    advanced = await self.step()
                except Exception:
                    log.exception("relay batch after position %d failed; retrying", self.position)
                    await self._stop_producer()
                    self.position = await asyncio.to_thread(self.positions.load, self.config.name)
                    await _wait_any(stop, self._wake, self.config.retry_backoff)
                    continue
                if advanced == 0:
                    await _wait_any(stop, self._wake, self.config.poll_interval)
        finally:
            await self._stop_producer()

    async def catch_up(self) -> int:
        """Publish until the log is exhausted (for tests and one-shot use); return notifications advanced."""
        total = 0
        while n := await self.step():
            total += n
        return total

    async def close(self) -> None:
        await self._stop_producer()


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        wake.clear()


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    out = []
    for entry in getattr(response, "topic_errors", ()) or ():
        topic, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        out.append((topic, int(code), message))
    return out
