"""`casestream worker` against real Kafka, MongoDB wire (FerretDB) and PostgreSQL: relay -> Kafka -> Faust ->
MongoDB gives exactly the read models a fresh fold of the event store gives; redelivery changes nothing; two
workers in one group share the partitions; both rebuilds give the same read models."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.event_store import RecorderEventStore
from adapters.mongo_documents import MongoDocumentStore
from adapters.stream_worker.parking import Delivery, MongoParking
from adapters.stream_worker.processing import BatchProcessor, tracking_name
from commands.bus import CommandBus
from projections.catalog import ALL
from tests.integration.kafka.support import consume, fill, published
from tests.integration.kafka.support_worker import (
    differences,
    fresh_fold,
    relay_all,
    snapshot,
    start_worker,
    tracking_documents,
    wait_until,
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
