"""`casestream worker` against real Kafka, MongoDB wire (FerretDB) and PostgreSQL: relay -> Kafka -> worker ->
MongoDB gives exactly the read models a fresh fold of the event store gives; redelivery changes nothing; two
workers in one group share the partitions; both rebuilds give the same read models."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from adapters.event_store import RecorderEventStore
from adapters.mongo_documents import MongoDocumentStore
from adapters.stream_worker.app import WorkerConfig
from adapters.stream_worker.parking import Delivery, MongoParking
from adapters.stream_worker.processing import BatchProcessor, tracking_name
from adapters.stream_worker.rebuild import rebuild_from_kafka, rebuild_from_store
from commands.bus import CommandBus
from projections.catalog import ALL
from projections.ports import Write
from tests.integration.kafka.support import consume, fill, published
from tests.integration.kafka.support_worker import (
    differences,
    fresh_fold,
    relay_all,
    run_cli,
    snapshot,
    start_worker,
    tracking_documents,
    wait_joined,
    wait_until,
    worker_env,
)

pytestmark = pytest.mark.integration


async def test_worker_folds_relayed_events_into_the_read_models_a_fresh_fold_gives(
    tmp_path: Path, event_store: RecorderEventStore, documents: MongoDocumentStore, bootstrap: str, prefix: str,
    mongo_url: str, database: str,
) -> None:
    fill(CommandBus(event_store), cases=30, rounds=2)
    await relay_all(event_store, bootstrap, prefix)
    events = published(event_store)
    expected = fresh_fold(events)
    assert len(expected["cases"]) == 30 and len(expected["timeline"]) > 90

    worker = start_worker(tmp_path, bootstrap=bootstrap, prefix=prefix, mongo_url=mongo_url, database=database,
                          group=f"{prefix}-g", batch_size=200)
    try:
        await wait_until(lambda: snapshot(documents) == expected, 120, "the read models", [worker])
        # events after the worker caught up are applied too (a live log)
        fill(CommandBus(event_store), cases=5, rounds=1, with_reference=False, tag="late")
        await relay_all(event_store, bootstrap, prefix)
        events = published(event_store)
        expected = fresh_fold(events)
        await wait_until(lambda: snapshot(documents) == expected, 60, "the late events", [worker])
    finally:
        output = worker.stop()
    assert worker.process.returncode == 0, output[-3000:]
    assert "stopped after" in output

    # per-partition tracking: the highest applied position of each partition, and the time of that event
    tracked = tracking_documents(documents)
    by_partition: dict[str, int] = {}
    records = await consume(bootstrap, sorted({f"{prefix}.case.v1", f"{prefix}.definition.v1",
                                              f"{prefix}.reference.v1"}), until=len(events))
    from adapters import cloudevents

    for record in records:
        name = tracking_name(record.topic, record.partition)
        by_partition[name] = max(by_partition.get(name, 0), cloudevents.loads(record.value)["position"])
    assert {name: doc["position"] for name, doc in tracked.items()} == by_partition
    at_position = {p.position: p.event for p in events}
    for name, doc in tracked.items():
        assert doc["event_time"] == at_position[doc["position"]].occurred_at.isoformat(), name
        assert documents.tracking(name) == doc["position"]
        assert doc["worker"] == worker.name
        # the trip of that event, stage by stage (relay read, sent, received, batched, written), in order
        stages = doc["stages"]
        times = [stages[stage] for stage in ("read", "sent", "received", "batched", "written")]
        assert all(a <= b + 0.001 for a, b in itertools.pairwise(times)), stages  # Kafka's clock is in ms

    # the same records delivered again (a crash before the offsets were committed) change nothing
    before = snapshot(documents)
    processor = BatchProcessor(documents, ALL, MongoParking(documents.db), worker="redelivery")
    deliveries = [Delivery(r.topic, r.partition, r.offset, r.key, r.value) for r in records]
    outcome = processor.process(deliveries[: len(deliveries) // 2])
    outcome2 = processor.process(deliveries)
    assert outcome.applied + outcome2.applied == len(deliveries) + len(deliveries) // 2
    assert outcome.writes == outcome2.writes == 0
    assert snapshot(documents) == before
    assert differences(snapshot(documents), expected) == []

    # a worker that restarts with an empty cache over half-applied read models (documents it assumes new exist)
    documents.reset()
    first = BatchProcessor(documents, ALL, MongoParking(documents.db), worker="first")
    first.process(deliveries[: len(deliveries) // 2])
    second = BatchProcessor(documents, ALL, MongoParking(documents.db), worker="second")
    for start in range(len(deliveries) // 3, len(deliveries), 40):
        second.process(deliveries[start:start + 40])
    assert differences(snapshot(documents), expected) == []


async def test_two_workers_in_one_group_share_the_partitions_and_hand_over_on_leaving(
    tmp_path: Path, event_store: RecorderEventStore, documents: MongoDocumentStore, bootstrap: str, prefix: str,
    mongo_url: str, database: str,
) -> None:
    bus = CommandBus(event_store)
    fill(bus, cases=2, rounds=0)
    await relay_all(event_store, bootstrap, prefix)  # the relay creates the topics before the workers subscribe
    group = f"{prefix}-g"
    workers = [start_worker(tmp_path, bootstrap=bootstrap, prefix=prefix, mongo_url=mongo_url, database=database,
                            group=group, name=name, batch_size=50) for name in ("alpha", "beta")]
    try:
        await wait_joined(bootstrap, group, 2, workers)
        fill(bus, cases=40, rounds=2, with_reference=False, tag="shared")
        await relay_all(event_store, bootstrap, prefix)
        expected = fresh_fold(published(event_store))
        await wait_until(lambda: snapshot(documents) == expected, 120, "the read models", workers)
        before = tracking_documents(documents)
        assert {doc["worker"] for doc in before.values()} == {"alpha", "beta"}  # each wrote the partitions it owned

        # one leaves; the other takes over its partitions and each case's later events still apply in order
        output = workers[0].stop()
        assert workers[0].process.returncode == 0, output[-3000:]
        await wait_joined(bootstrap, group, 1, workers[1:])
        fill(bus, cases=10, rounds=2, with_reference=False, tag="after")
        await relay_all(event_store, bootstrap, prefix)
        expected = fresh_fold(published(event_store))
        await wait_until(lambda: snapshot(documents) == expected, 120, "the read models after the hand-over",
                         workers[1:])
        after = tracking_documents(documents)
        moved = {name for name, doc in after.items() if doc["position"] != before.get(name, {}).get("position")}
        assert {after[name]["worker"] for name in moved} == {"beta"}
        assert any(before.get(name, {}).get("worker") == "alpha" for name in moved)  # beta took alpha's over
    finally:
        for worker in workers:
            worker.stop()


async def test_rebuilds_from_the_store_and_from_kafka_give_the_read_models_a_fresh_fold_gives(
    event_store: RecorderEventStore, documents: MongoDocumentStore, bootstrap: str, prefix: str, mongo_url: str,
    database: str,
) -> None:
    fill(CommandBus(event_store), cases=25, rounds=2)
    await relay_all(event_store, bootstrap, prefix)
    events = published(event_store)
    expected = fresh_fold(events)
    config = WorkerConfig(bootstrap=bootstrap, prefix=prefix, mongo_url=mongo_url, database=database, batch_size=100,
                          name="rebuild")
    # something stale to be dropped: a document no event produced, and a tracking position
    documents.write([Write("cases", "stale", {"id": "stale", "tenant": "acme"}, 10**9)], ("old-runner", 5))

    result = rebuild_from_store(config, event_store, documents=documents)
    assert result.events == len(events) and result.rate > 0
    assert differences(snapshot(documents), expected) == []
    assert documents.tracking("old-runner") == 0

    documents.write([Write("cases", "stale", {"id": "stale", "tenant": "acme"}, 10**9)])
    result = await rebuild_from_kafka(config, documents=documents)
    assert result.events == len(events)  # each record once: the relay sent each once here
    assert differences(snapshot(documents), expected) == []
    assert {name: doc["position"] for name, doc in tracking_documents(documents).items()} != {}

    # the command prints the rate
    env = worker_env(bootstrap=bootstrap, prefix=prefix, mongo_url=mongo_url, database=database, group="unused")
    done = run_cli(["worker", "rebuild", "--from", "kafka"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"rebuild from kafka: {len(events):,} events in" in done.stdout and "events/s" in done.stdout
    assert snapshot(documents) == expected
