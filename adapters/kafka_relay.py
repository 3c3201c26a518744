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
- Since contract 1.2.0 each head row also keeps its partition's *spans*: the first and last position of each
  of the last `SPAN_RING` batches that published there, oldest first (text `first-last first-last ...`). No
  event of the partition lies between one span's last and the next span's first, so a consumer that applied
  up to t there has every event of it below the first span starting after t: a reader need not wait for a
  partition's next event to count a position as reached (adapters/read_progress.py, docs/topics.md).
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
from adapters.contract import (
    DEFAULT_PARTITIONS,
    DEFAULT_PREFIX,
    MAX_DEPLOYMENT_RECORD,
    TOPIC_FAMILIES,
    topic_config,
    topic_name,
    topics,
)
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
Span = tuple[int, int]  # the first and last position one relay batch published to one partition
Spans = dict[tuple[str, int], tuple[Span, ...]]  # (topic, partition) -> its last batches' spans, oldest first
SPAN_RING = 16  # spans kept per partition: a consumer further behind than that waits as before 1.2.0


def encode_spans(spans: Sequence[Span]) -> str:
    """Spans as stored: `first-last` pairs separated by spaces."""
    return " ".join(f"{first}-{last}" for first, last in spans)


def decode_spans(text: str | None) -> tuple[Span, ...]:
    """The stored text of spans (None or empty: none; rows written before contract 1.2.0 have none)."""
    if not text:
        return ()
    out = []
    for pair in text.split():
        first, _, last = pair.partition("-")
        out.append((int(first), int(last)))
    return tuple(out)


def extend_spans(ring: Sequence[Span], head: int, span: Span) -> tuple[Span, ...]:
    """A partition's spans after a batch published `span` there. A ring not known yet starts at the stored
    head (or (0, 0): nothing was ever published there), so the first new span already has a predecessor."""
    start = tuple(ring) or ((head, head),)
    return (*start, span)[-SPAN_RING:]


@runtime_checkable
class HeadStore(Protocol):
    """A position store that also keeps the last published position per topic partition."""

    def save_heads(
        self, name: str, position: int, heads: Mapping[tuple[str, int], int], spans: Spans | None = None,
    ) -> None:
        """Store position and raise each partition's head (never lowers one), in one transaction; a head that
        rises replaces its partition's spans with the given ones (if any)."""
        ...

    def load_heads(self, name: str) -> tuple[int, Heads]:
        """The stored position and the partition heads, read as one consistent snapshot."""
        ...

    def load_spans(self, name: str) -> tuple[int, Heads, Spans]:
        """The stored position, the partition heads and their spans, read as one consistent snapshot."""
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
                columns = {row[1] for row in conn.execute("PRAGMA table_info(relay_partition_head)")}
                if "spans" not in columns:  # a table from before contract 1.2.0
                    conn.execute("ALTER TABLE relay_partition_head ADD COLUMN spans TEXT")
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

    def save_heads(
        self, name: str, position: int, heads: Mapping[tuple[str, int], int], spans: Spans | None = None,
    ) -> None:
        conn = self._connect()
        try:
            with conn:
                if heads:
                    # SET expressions see the row as it was: the spans follow a head that rises
                    conn.executemany(
                        "INSERT INTO relay_partition_head (name, topic, partition, position, spans) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(name, topic, partition) DO UPDATE SET "
                        "position=max(position, excluded.position), spans=CASE WHEN excluded.position > position "
                        "AND excluded.spans IS NOT NULL THEN excluded.spans ELSE spans END",
                        [(name, topic, partition, head, _spans_text(spans, (topic, partition)))
                         for (topic, partition), head in heads.items()],
                    )
                conn.execute(
                    "INSERT INTO relay_position (name, position) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET position=excluded.position",
                    (name, position),
                )
        finally:
            conn.close()

    def load_heads(self, name: str) -> tuple[int, Heads]:
        position, heads, _spans = self.load_spans(name)
        return position, heads

    def load_spans(self, name: str) -> tuple[int, Heads, Spans]:
        conn = self._connect()
        try:
            with conn:  # one read transaction: the position and the heads it covers
                row = conn.execute("SELECT position FROM relay_position WHERE name=?", (name,)).fetchone()
                rows = conn.execute(
                    "SELECT topic, partition, position, spans FROM relay_partition_head WHERE name=?", (name,)
                ).fetchall()
        finally:
            conn.close()
        heads = {(str(t), int(p)): int(h) for t, p, h, _s in rows}
        spans = {(str(t), int(p)): decode_spans(text) for t, p, _h, text in rows if text}
        return (int(row[0]) if row else 0), heads, spans


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
            curs.execute(f"ALTER TABLE {self.heads_table} ADD COLUMN IF NOT EXISTS spans text")  # contract 1.2.0
        # SET expressions see the row as it was: the spans follow a head that rises
        self._save = (
            f"WITH heads AS (INSERT INTO {self.heads_table} AS h (name, topic, partition, position, spans) "
            "SELECT %(name)s, u.topic, u.partition, u.head, u.spans FROM unnest(%(topics)s::text[], "
            "%(partitions)s::integer[], %(heads)s::bigint[], %(spans)s::text[]) AS u(topic, partition, head, spans) "
            "ON CONFLICT (name, topic, partition) DO UPDATE SET position=GREATEST(h.position, EXCLUDED.position), "
            "spans=CASE WHEN EXCLUDED.position > h.position AND EXCLUDED.spans IS NOT NULL THEN EXCLUDED.spans "
            "ELSE h.spans END RETURNING 1) "
            f"INSERT INTO {self.table} (name, position) VALUES (%(name)s, %(position)s) "
            "ON CONFLICT (name) DO UPDATE SET position=EXCLUDED.position"
        )

    def load(self, name: str) -> int:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(f"SELECT position FROM {self.table} WHERE name=%s", (name,))
            row = curs.fetchone()
        return int(row["position"]) if row else 0

    def save(self, name: str, position: int) -> None:
        self.save_heads(name, position, {})

    def save_heads(
        self, name: str, position: int, heads: Mapping[tuple[str, int], int], spans: Spans | None = None,
    ) -> None:
        slots = sorted(heads.items())
        params = {
            "name": name, "position": position, "topics": [topic for (topic, _p), _h in slots],
            "partitions": [partition for (_t, partition), _h in slots], "heads": [head for _s, head in slots],
            "spans": [_spans_text(spans, slot) for slot, _h in slots],
        }
        # one statement, so one transaction and one round trip per batch (it was one per partition, plus BEGIN and
        # COMMIT); a data-modifying WITH runs in full whatever the outer statement reads of it
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._save, params, prepare=True)

    def load_heads(self, name: str) -> tuple[int, Heads]:
        position, heads, _spans = self.load_spans(name)
        return position, heads

    def load_spans(self, name: str) -> tuple[int, Heads, Spans]:
        with self.datastore.transaction(commit=False) as curs:
            # one statement, so one snapshot: the position and the heads written with it
            curs.execute(
                f"SELECT '' AS topic, -1 AS partition, position, NULL AS spans FROM {self.table} WHERE name=%s "
                f"UNION ALL SELECT topic, partition, position, spans FROM {self.heads_table} WHERE name=%s",
                (name, name),
            )
            rows = curs.fetchall()
        position = 0
        heads: Heads = {}
        spans: Spans = {}
        for row in rows:
            if row["partition"] == -1:
                position = int(row["position"])
            else:
                slot = (str(row["topic"]), int(row["partition"]))
                heads[slot] = int(row["position"])
                if row["spans"]:
                    spans[slot] = decode_spans(row["spans"])
        return position, heads, spans


def _spans_text(spans: Spans | None, slot: tuple[str, int]) -> str | None:
    ring = spans.get(slot) if spans else None
    return encode_spans(ring) if ring else None


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
        self._heads: Heads = {}
        self._spans: Spans = {}
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
                NewTopic(name, self.config.partitions, replicas, topic_configs=topic_config(name))
                for name in self.topic_names() if name not in existing
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
            max_request_size=MAX_DEPLOYMENT_RECORD,  # a deployment carries its whole file (adapters/contract.py)
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
        sent = await self._send(batch, time.time())
        heads = {slot: span[1] for slot, span in sent.items()}
        if isinstance(self.positions, HeadStore):
            rings = {slot: extend_spans(self._spans.get(slot, ()), self._heads.get(slot, 0), span)
                     for slot, span in sent.items()}
            await asyncio.to_thread(self.positions.save_heads, self.config.name, last, heads, rings)
            # remembered only once stored: a failed save reloads them with the position (run)
            self._spans.update(rings)
            self._heads.update(heads)
        else:
            await asyncio.to_thread(self.positions.save, self.config.name, last)
        self.position = last
        return last - after

    async def publish(self, batch: Sequence[Positioned], read_at: float | None = None) -> Heads:
        """Send every event of a batch, wait until the broker acknowledged all of them; return the last position
        each topic partition received. `read_at`: when the batch was read from the store (a record header)."""
        sent = await self._send(batch, time.time() if read_at is None else read_at)
        return {slot: span[1] for slot, span in sent.items()}

    async def _send(self, batch: Sequence[Positioned], read_at: float) -> dict[tuple[str, int], Span]:
        """Send a batch, await every ack; the first and last position each topic partition received."""
        if not batch:
            return {}
        if self._producer is None:
            self._producer = await self._start_producer()
        producer = self._producer
        headers = [CONTENT_TYPE_HEADER, (cloudevents.RELAY_READ_AT_HEADER, f"{read_at:.6f}".encode())]
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
        spans: dict[tuple[str, int], Span] = {}
        for item, ack in zip(batch, acks, strict=True):  # the batch is in position order
            slot = (str(ack.topic), int(ack.partition))
            first, _last = spans.get(slot, (item.position, item.position))
            spans[slot] = (first, item.position)
        return spans

    async def _load(self) -> None:
        """The stored position, and the heads and spans the next batch's spans extend."""
        if isinstance(self.positions, HeadStore):
            self.position, heads, spans = await asyncio.to_thread(self.positions.load_spans, self.config.name)
            self._heads, self._spans = heads, dict(spans)
        else:
            self.position = await asyncio.to_thread(self.positions.load, self.config.name)

    async def start(self, attempts: int = 30) -> None:
        """Create the topics (retried with back-off for about two minutes while a broker is unreachable, so a relay
        starting while one node of the cluster restarts does not die with it), load the position, open the
        producer."""
        await with_kafka_retries(self.ensure_topics, "creating topics", log, attempts)
        await self._load()
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
                    await _wait_any(stop, self._wake, self.config.retry_backoff)
                    await self._reload(stop)  # the spans too: a save that failed may have been stored after all
                    continue
                if advanced == 0:
                    await _wait_any(stop, self._wake, self.config.poll_interval)
        finally:
            await self._stop_producer()

    async def _reload(self, stop: asyncio.Event) -> None:
        """Load the stored position again, retrying while the store does not answer (a server slow under load is
        no reason for the relay to exit); returns without it once stop is set."""
        while not stop.is_set():
            try:
                await self._load()
                return
            except Exception:
                log.exception("relay %s: loading its position failed; retrying", self.config.name)
                await _wait_any(stop, self._wake, self.config.retry_backoff)

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
