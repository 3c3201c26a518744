"""The 3-node Kafka cluster keeps producing and consuming while one node is down, and takes it back."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.kafka import KafkaCluster, broker_ids
from infra.process import pid_alive
from tests.integration.infra.test_kafka_server import consume

KEYS = ["case-1", "case-2", "case-3", "case-4"]


@pytest.fixture(scope="module")
def kafka_cluster() -> Iterator[KafkaCluster]:
    """Three nodes for this module only; all of them are stopped afterwards, even after a failure."""
    cluster = KafkaCluster()
    started = cluster.up()
    try:
        yield cluster
    finally:
        pids = [pid for pid in cluster.node_pids().values() if pid is not None]
        if started:
            cluster.down()
            assert not any(pid_alive(pid) for pid in pids), "a Kafka node outlived down()"


async def describe_topic(bootstrap: str, topic: str, within: float = 30.0) -> list[dict[str, Any]]:
    """The topic's partitions; a broker may answer without them for a moment after the topic is created (its
    metadata has not reached that broker yet), so asked again until they show, for up to `within` seconds."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    deadline = time.monotonic() + within
    try:
        while True:
            [described] = await admin.describe_topics([topic])
            if described["partitions"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    return sorted(described["partitions"], key=lambda p: p["partition"])


async def produce(producer: AIOKafkaProducer, topic: str, start: int, count: int) -> None:
    for i in range(start, start + count):
        key = KEYS[i % len(KEYS)]
        await producer.send_and_wait(topic, key=key.encode(), value=f"{key}:{i}".encode())


async def test_cluster_survives_one_node_down(kafka_cluster: KafkaCluster) -> None:
    bootstrap = kafka_cluster.info()["bootstrap"]
    topic = f"infra-faults-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])
    finally:
        await admin.close()
    partitions = await describe_topic(bootstrap, topic)
    assert [sorted(p["replicas"]) for p in partitions] == [[1, 2, 3]] * 3

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await produce(producer, topic, 0, 20)

        # Crash the leader of partition 0 (SIGKILL: no controlled shutdown, so the cluster must notice).
        victim = partitions[0]["leader"]
        old_pid = kafka_cluster.stop_node(victim, sig=signal.SIGKILL)
        assert not pid_alive(old_pid)
        assert kafka_cluster.node_pids()[victim] is None

        await produce(producer, topic, 20, 20)  # acks=all with min ISR 2: two live replicas suffice
        survivors = [n.bootstrap for n in kafka_cluster.nodes if n.node_id != victim]
        assert broker_ids(",".join(survivors)) == {1, 2, 3} - {victim}
        during = await describe_topic(",".join(survivors), topic)
        assert all(p["leader"] != victim for p in during)

        records = await consume(",".join(survivors), topic, expected=40)
        values = [r.value.decode() for r in records]  # type: ignore[union-attr]
        for key in KEYS:
            assert [v for v in values if v.startswith(f"{key}:")] == [
                f"{key}:{i}" for i in range(40) if KEYS[i % len(KEYS)] == key
            ]

        new_pid = await asyncio.to_thread(kafka_cluster.restart_node, victim)
        assert new_pid != old_pid
        assert broker_ids(bootstrap) == {1, 2, 3}
        await produce(producer, topic, 40, 8)
    finally:
        await producer.stop()

    # The restarted node catches up and rejoins every partition's in-sync replica set.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        after = await describe_topic(bootstrap, topic)
        if all(sorted(p["isr"]) == [1, 2, 3] for p in after) or loop.time() > deadline:
            break
        await asyncio.sleep(0.5)
    assert [sorted(p["isr"]) for p in after] == [[1, 2, 3]] * 3

    records = await consume(bootstrap, topic, expected=48)
    assert sorted(r.value.decode() for r in records) == sorted(  # type: ignore[union-attr]
        f"{KEYS[i % len(KEYS)]}:{i}" for i in range(48)
    )
