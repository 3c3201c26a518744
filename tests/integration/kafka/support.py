"""Helpers for the relay tests: fill an event store through the CommandBus, read topics back with aiokafka."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from adapters.contract import published_types
from adapters.event_store import RecorderEventStore
from commands import messages as m
from commands.bus import Actor, CommandBus
from domain.events import Positioned
from tests.unit.conftest import claim_definition

ACTOR = Actor("alice", "acme", ("admin", "supervisor", "caseworker"))


def fill(bus: CommandBus, cases: int, rounds: int = 3, *, with_reference: bool = True, tag: str = "") -> list[str]:
    """Publish a definition (and a queue), open `cases` cases, then interleave `rounds` changes over all cases.

    Returns the case ids. Interleaving makes consecutive log positions belong to different cases, so per-case
    order on the wire is a real check.
    """
    if with_reference:
        bus.dispatch(claim_definition(), ACTOR)
        bus.dispatch(m.DefineQueue(key="intake", name="Intake"), ACTOR)
    ids = [bus.dispatch(m.OpenCase(definition_key="claim", title=f"case {tag}{i}", data={"amount": i}), ACTOR).id
           for i in range(cases)]
    stages = ["review", "new"]
    for r in range(rounds):
        for n, case_id in enumerate(ids):
            cid = uuid.UUID(case_id)
            bus.dispatch(m.AddComment(case_id=cid, body=f"round {r} comment on {n}"), ACTOR)
            bus.dispatch(m.MoveCaseToStage(case_id=cid, stage=stages[r % 2]), ACTOR)
    return ids


def published(store: RecorderEventStore, after: int = 0) -> list[Positioned]:
    """Every event the relay is meant to publish, in log order."""
    types = frozenset(published_types())
    out: list[Positioned] = []
    while True:
        batch, last = store.read_batch(after, 2000, types)
        if last == after:
            return out
        out.extend(batch)
        after = last


async def consume(bootstrap: str, topics: Iterable[str], until: int, timeout: float = 60.0) -> list[ConsumerRecord]:
    """Read topics from the start in a fresh group until `until` distinct positions have arrived."""
    from adapters.cloudevents import loads

    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, group_id=f"relay-test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", enable_auto_commit=False, metadata_max_age_ms=1000,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    seen: set[int] = set()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(seen) < until and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                for record in partition_records:
                    records.append(record)
                    seen.add(loads(record.value)["position"])
        # a short extra read, so a duplicate or stray record after the last expected one is seen too
        for partition_records in (await consumer.getmany(timeout_ms=300)).values():
            records.extend(partition_records)
    finally:
        await consumer.stop()
    return records
