"""The outbox relay against a real Kafka broker: every stored event arrives, in per-case order, as CloudEvents,
and a relay that crashes anywhere (task cancelled, process SIGKILLed, position write failing) resumes with no gap."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient

from adapters import cloudevents
from adapters.contract import topics
from adapters.event_store import RecorderEventStore, sqlite_event_store
from adapters.kafka_relay import KafkaRelay, PositionStore, RelayConfig, key_partitioner, positions_for
from commands.bus import CommandBus
from infra.server import Server
from tests.integration.kafka.support import consume, fill, published
from tests.postgres_store import postgres_store, scratch_database
from tests.waiting import until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def bootstrap(kafka_server: Server) -> str:
    return kafka_server.info()["bootstrap"]


@pytest.fixture
async def prefix(bootstrap: str) -> AsyncIterator[str]:
    """Fresh topics per test (the relay creates them; deleted afterwards)."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        present = set(await admin.list_topics()) & set(_topic_names(name))
        if present:
            await admin.delete_topics(sorted(present))
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecorderEventStore]:
    if request.param == "sqlite":
        event_store = sqlite_event_store(tmp_path / "events.sqlite", synchronous="NORMAL")
        yield event_store
        event_store.close()
        return
    server = request.getfixturevalue("postgres_server")
    with scratch_database(server, "relay") as dbname:
        event_store = postgres_store(server, dbname)
        try:
            yield event_store
        finally:
            event_store.close()


def _topic_names(prefix: str) -> list[str]:
    return sorted(set(topics(prefix).values()))


def _decoded(records: list[ConsumerRecord]) -> list[tuple[ConsumerRecord, dict]]:
    return [(r, cloudevents.loads(r.value)) for r in records]


def assert_per_key_order(records: list[ConsumerRecord]) -> None:
    """Per key (aggregate), first deliveries of positions come in increasing position and aggregate version."""
    by_key: dict[bytes, list[tuple[int, int, int]]] = defaultdict(list)
    partitions: dict[bytes, set[tuple[str, int]]] = defaultdict(set)
    for record, ce in _decoded(records):
        by_key[record.key].append((record.offset, ce["position"], ce["aggregateversion"]))
        partitions[record.key].add((record.topic, record.partition))
    for key, rows in by_key.items():
        assert len(partitions[key]) == 1, f"aggregate {key!r} spread over {partitions[key]}"
        seen: set[int] = set()
        first = []
        for _offset, position, version in sorted(rows):
            if position not in seen:  # a redelivered batch repeats older positions: consumers skip them
                seen.add(position)
                first.append((position, version))
        assert first == sorted(first), f"aggregate {key!r} out of order"
        versions = [v for _p, v in first]
        assert versions == list(range(versions[0], versions[0] + len(versions))), f"aggregate {key!r} has a gap"


async def test_every_event_arrives_once_in_case_order_as_cloudevents(
    store: RecorderEventStore, bootstrap: str, prefix: str,
) -> None:
    case_ids = fill(CommandBus(store), cases=40, rounds=3)
    expected = published(store)
    assert store.max_position() > len(expected)  # command log and case numbers are in the log, but internal

    relay = KafkaRelay(store, RelayConfig(bootstrap=bootstrap, prefix=prefix, batch_size=100))
    await relay.start()
    try:
        assert await relay.catch_up() == store.max_position()
    finally:
        await relay.close()
    assert relay.positions.load("kafka") == store.max_position()

    records = await consume(bootstrap, _topic_names(prefix), until=len(expected))
    positions = [cloudevents.loads(r.value)["position"] for r in records]
    assert Counter(positions) == Counter(p.position for p in expected)  # each exactly once
    assert_per_key_order(records)

    by_position = {p.position: p for p in expected}
    topic_of = topics(prefix)
    for record, ce in _decoded(records):
        stored = by_position[ce["position"]]
        assert ce == cloudevents.to_cloudevent(stored.position, stored.event)
        assert cloudevents.from_cloudevent(ce) == stored
        assert record.topic == topic_of[stored.event.type_name()]
        assert record.key == str(stored.event.aggregate_id).encode() == ce["subject"].encode()
        assert dict(record.headers)["content-type"] == b"application/cloudevents+json; charset=UTF-8"
        # when the relay read it from the store (contract 1.1.0): at most when the record was created for sending
        read_at = float(dict(record.headers)["casestream-relay-read-at"])
        assert read_at <= record.timestamp / 1000 + 0.001
    opened = next(ce for _r, ce in _decoded(records) if ce["type"] == "casestream.CaseOpened.v1")
    assert opened["subject"] in case_ids
    assert (opened["specversion"], opened["source"], opened["datacontenttype"]) == ("1.0", "casestream",
                                                                                    "application/json")
    assert (opened["tenant"], opened["actor"]) == ("acme", "alice")
    assert opened["commandid"] == opened["correlationid"] == opened["causationid"]
    assert {ce["type"] for _r, ce in _decoded(records)} >= {
        "casestream.CaseOpened.v1", "casestream.CommentAdded.v2", "casestream.CaseMovedToStage.v1",
        "casestream.DefinitionPublished.v3", "casestream.QueueDefined.v1",
    }

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(_topic_names(prefix))
    finally:
        await admin.close()
    assert {t["topic"]: len(t["partitions"]) for t in described} == {name: 6 for name in _topic_names(prefix)}
    # one case's events all went to one partition, and the cases spread over several
    case_partitions = {(r.partition) for r in records if r.topic == f"{prefix}.case.v1"}
    assert len(case_partitions) > 1


class FailingSave:
    """A position store whose save fails once after `fail_at` saves: the broker acknowledged, the write did not
    happen (a crash between ack and position write)."""

    def __init__(self, inner: PositionStore, fail_at: int) -> None:
        self.inner = inner
        self.fail_at = fail_at
        self.saves = 0

    def load(self, name: str) -> int:
        return self.inner.load(name)

    def save(self, name: str, position: int) -> None:
        self.saves += 1
        if self.saves == self.fail_at:
            raise OSError("simulated crash after the broker's ack, before the position was stored")
        self.inner.save(name, position)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
async def test_cancelled_relay_and_failed_position_write_resume_without_gap(
    store: RecorderEventStore, bootstrap: str, prefix: str,
) -> None:
    bus = CommandBus(store)
    fill(bus, cases=30, rounds=2)
    config = RelayConfig(bootstrap=bootstrap, prefix=prefix, batch_size=15, poll_interval=0.05, retry_backoff=0.1)

    # 1. a live relay (tailing while commands still arrive), cancelled mid-stream
    first = KafkaRelay(store, config)
    task = asyncio.create_task(first.run())
    writer = asyncio.create_task(asyncio.to_thread(fill, bus, 10, 2, with_reference=False, tag="live"))
    await until(lambda: first.position > 0, "the first batch", timeout=30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await writer
    stopped_at = positions_for(store).load("kafka")
    assert 0 < stopped_at < store.max_position()

    # 2. restart with a position store whose write fails once after an ack: run() retries from the stored position
    flaky = FailingSave(positions_for(store), fail_at=3)
    second = KafkaRelay(store, config, positions=flaky)
    stop = asyncio.Event()
    task = asyncio.create_task(second.run(stop))
    await until(lambda: second.position == store.max_position(), "the whole log", timeout=30)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert flaky.saves > 3
    assert positions_for(store).load("kafka") == store.max_position()

    expected = published(store)
    records = await consume(bootstrap, _topic_names(prefix), until=len(expected))
    positions = Counter(cloudevents.loads(r.value)["position"] for r in records)
    assert set(positions) == {p.position for p in expected}  # no gap, nothing extra
    assert any(n > 1 for n in positions.values())  # the failed write's batch was sent again
    assert_per_key_order(records)


def _relay_process(data_dir: Path, bootstrap: str, prefix: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CASESTREAM_DATA_DIR": str(data_dir),
        "CASESTREAM_EVENT_STORE": "sqlite",
        "CASESTREAM_KAFKA_BOOTSTRAP": bootstrap,
        "CASESTREAM_KAFKA_TOPIC_PREFIX": prefix,
        "CASESTREAM_RELAY_BATCH_SIZE": "20",
        "CASESTREAM_RELAY_POLL_INTERVAL": "0.05",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "casestream.cli_distributed", "relay"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def _stored_position(path: Path) -> int:
    conn = sqlite3.connect(path, timeout=5)
    try:
        row = conn.execute("SELECT position FROM relay_position WHERE name='kafka'").fetchone()
    except sqlite3.OperationalError:  # table not created yet
        return 0
    finally:
        conn.close()
    return int(row[0]) if row else 0


async def test_sigkilled_relay_process_restarts_with_no_gap(tmp_path: Path, bootstrap: str, prefix: str) -> None:
    events_path = tmp_path / "events.sqlite"
    store = sqlite_event_store(events_path, synchronous="NORMAL")
    try:
        fill(CommandBus(store), cases=120, rounds=3)
        expected = published(store)
        total = store.max_position()
    finally:
        store.close()

    process = _relay_process(tmp_path, bootstrap, prefix)
    try:
        await until(lambda: _stored_position(events_path) >= total // 4, "a quarter of the log", timeout=60)
    finally:
        process.send_signal(signal.SIGKILL)
        output = process.communicate(timeout=10)[0].decode()
    killed_at = _stored_position(events_path)
    assert 0 < killed_at < total, output

    process = _relay_process(tmp_path, bootstrap, prefix)
    try:
        await until(lambda: _stored_position(events_path) == total, "the whole log", timeout=60)
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0].decode()
    assert process.returncode == 0, output
    assert f"starts after position {killed_at}" in output

    records = await consume(bootstrap, _topic_names(prefix), until=len(expected))
    positions = {cloudevents.loads(r.value)["position"] for r in records}
    assert positions == {p.position for p in expected}
    assert_per_key_order(records)


def test_key_partitioner_places_keys_like_kafkas_default() -> None:
    """Python and Java producers co-partition by the default murmur2 placement; the cached one must agree."""
    from aiokafka.partitioner import DefaultPartitioner

    default = DefaultPartitioner()
    for _ in range(300):
        key = str(uuid.uuid4()).encode()
        for count in (1, 6, 7, 12):
            partitions = list(range(count))
            assert key_partitioner(key, partitions, partitions) == default(key, partitions, partitions)
    assert key_partitioner(None, [0, 1, 2], [1]) == 1
