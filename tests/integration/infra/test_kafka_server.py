"""The single-node Kafka broker answers real produce/consume round trips through aiokafka."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from infra.kafka import BROKER_PORT, CONTROLLER_PORT, KafkaServer, describe_cluster
from infra.server import Server

KEYS = ["case-a", "case-b", "case-c"]


async def consume(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[ConsumerRecord]:
    """Read a topic from the start in a fresh consumer group until `expected` records arrived."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"infra-test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(records) < expected and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
        await consumer.commit()
    finally:
        await consumer.stop()
    return records


async def test_kafka_keyed_round_trip_keeps_per_key_order(kafka_server: Server) -> None:
    assert isinstance(kafka_server, KafkaServer)
    bootstrap = kafka_server.info()["bootstrap"]
    assert bootstrap == "127.0.0.1:29092"
    topic = f"infra-roundtrip-{uuid.uuid4().hex[:8]}"  # new topic: created by auto topic creation
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        # Sent without awaiting each one, so several batches are in flight at once.
        futures = [
            await producer.send(topic, key=KEYS[i % 3].encode(), value=f"{KEYS[i % 3]}:{i}".encode()) for i in range(60)
        ]
        await producer.flush()
        metadata = [await f for f in futures]
        partitions = await producer.partitions_for(topic)
    finally:
        await producer.stop()
    assert len(partitions) == 6  # num.partitions from server.properties

    records = await consume(bootstrap, topic, expected=60)
    assert len(records) == 60
    for key in KEYS:
        got = [r.value.decode() for r in records if r.key == key.encode()]  # type: ignore[union-attr]
        assert got == [f"{key}:{i}" for i in range(60) if KEYS[i % 3] == key]
        # One key, one partition: that is what keeps a case's events in order.
        assert len({r.partition for r in records if r.key == key.encode()}) == 1
    assert {m.partition for m in metadata} == {r.partition for r in records}


def test_kafka_reports_one_loopback_broker(kafka_server: Server) -> None:
    cluster = describe_cluster(kafka_server.info()["bootstrap"])
    assert [(b["node_id"], b["host"], b["port"]) for b in cluster["brokers"]] == [(1, "127.0.0.1", 29092)]
    assert cluster["controller_id"] in (1, -1)  # KRaft brokers may hide the active controller


def test_kafka_listens_only_on_loopback(kafka_server: Server) -> None:
    pid = kafka_server.pid()
    assert pid is not None
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    mine = [line.split()[3] for line in out.splitlines() if f"pid={pid}," in line]
    assert {addr.rsplit(":", 1)[1] for addr in mine} >= {str(BROKER_PORT), str(CONTROLLER_PORT)}
    for addr in mine:
        assert addr.rsplit(":", 1)[0] in ("127.0.0.1", "[::ffff:127.0.0.1]"), addr
