"""Poison events: a record whose decode or fold raises goes to the dead-letter topic, the later events of its case
wait (parked in order), other cases go on, and `casestream worker retry-dead-letters` applies the parked events in
order once the fix is deployed. Real Kafka, FerretDB (MongoDB wire) and PostgreSQL; the bug is a deliberately
broken projection deployed into the worker process."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest

from adapters import cloudevents
from adapters.event_store import RecorderEventStore
from adapters.mongo_documents import MongoDocumentStore
from adapters.stream_worker.dead_letters import dead_letter_topic
from adapters.stream_worker.parking import Delivery, MongoParking
from adapters.stream_worker.processing import BatchProcessor
from commands import messages as m
from commands.bus import CommandBus
from domain.events import Positioned
from projections.catalog import ALL
from tests.integration.kafka.support import ACTOR, consume, fill, published
from tests.integration.kafka.support_worker import (
    fresh_fold,
    relay_all,
    run_cli,
    snapshot,
    start_worker,
    wait_until,
    worker_env,
)

pytestmark = pytest.mark.integration

# The "bug" a release shipped: the cases projection cannot fold a comment that says "poison".
BUGGY_RELEASE = """
import projections.cases as _cases
from domain.case import CommentAdded as _CommentAdded
_fold = _cases.FOLDS[_CommentAdded]
def _buggy(doc, event):
    if "poison" in event.body:
        raise ValueError("projection bug: cannot fold this comment")
    return _fold(doc, event)
_cases.FOLDS[_CommentAdded] = _buggy
"""


def _without_case_from(events: list[Positioned], case_id: str, position: int) -> list[Positioned]:
    """The log as the read models may show it while a case is parked: that case's events from `position` on held."""
    return [p for p in events if not (str(p.event.aggregate_id) == case_id and p.position >= position)]


async def test_poison_event_parks_its_case_others_go_on_and_retry_applies_the_rest_in_order(
    tmp_path: Path, event_store: RecorderEventStore, documents: MongoDocumentStore, bootstrap: str, prefix: str,
    mongo_url: str, database: str,
) -> None:
    bus = CommandBus(event_store)
    ids = fill(bus, cases=10, rounds=1)
    victim, other = ids[3], ids[6]
    bus.dispatch(m.AddComment(case_id=uuid.UUID(victim), body="a poison pill"), ACTOR)
    bus.dispatch(m.MoveCaseToStage(case_id=uuid.UUID(victim), stage="new"), ACTOR)
    bus.dispatch(m.AddComment(case_id=uuid.UUID(victim), body="after the poison"), ACTOR)
    bus.dispatch(m.AddComment(case_id=uuid.UUID(other), body="another case goes on"), ACTOR)
    await relay_all(event_store, bootstrap, prefix)
    events = published(event_store)
    poison_at = next(p.position for p in events if getattr(p.event, "body", "") == "a poison pill")
    victim_held = [p.position for p in events if str(p.event.aggregate_id) == victim and p.position >= poison_at]
    assert len(victim_held) == 3 and victim_held[0] == poison_at

    group = f"{prefix}-g"
    worker = start_worker(tmp_path, bootstrap=bootstrap, prefix=prefix, mongo_url=mongo_url, database=database,
                          group=group, preamble=BUGGY_RELEASE, name="buggy")
    try:
        partial = fresh_fold(_without_case_from(events, victim, poison_at))
        await wait_until(lambda: snapshot(documents) == partial, 120, "every case but the parked one", [worker])
        # the dead-letter topic: the poison record with its error and origin, then the records that wait
        letters = [orjson.loads(r.value) for r in
                   await consume(bootstrap, [dead_letter_topic(prefix)], until=len(victim_held), timeout=30)]
        assert [(d["reason"], d["position"]) for d in letters] == [
            ("poison", victim_held[0]), ("waiting", victim_held[1]), ("waiting", victim_held[2])]
        poison = letters[0]
        assert "projection bug: cannot fold this comment" in poison["error"]
        assert (poison["key"], poison["topic"]) == (victim, f"{prefix}.case.v1")
        assert isinstance(poison["partition"], int) and isinstance(poison["offset"], int)
        assert cloudevents.loads(poison["message"].encode())["position"] == poison_at
        assert all(d["error"] is None and d["key"] == victim for d in letters[1:])

        # while parked, the case's new events wait too, and other cases still apply
        bus.dispatch(m.AddComment(case_id=uuid.UUID(victim), body="while parked"), ACTOR)
        bus.dispatch(m.AddComment(case_id=uuid.UUID(other), body="still going"), ACTOR)
        await relay_all(event_store, bootstrap, prefix)
        events = published(event_store)
        partial = fresh_fold(_without_case_from(events, victim, poison_at))
        await wait_until(lambda: snapshot(documents) == partial, 60, "the new events of other cases", [worker])
        parking = MongoParking(documents.db)
        await wait_until(lambda: len(parking.parked_events(victim)) == 4, 30, "the fourth parked event", [worker])
        assert parking.parked_keys() == {victim}
    finally:
        output = worker.stop()
    assert worker.process.returncode == 0, output[-3000:]

    env = worker_env(bootstrap=bootstrap, prefix=prefix, mongo_url=mongo_url, database=database, group=group)
    listed = run_cli(["worker", "retry-dead-letters", "--list"], env)
    assert listed.returncode == 0, listed.stderr
    assert f"{victim}: 4 parked" in listed.stdout and "projection bug" in listed.stdout

    # retrying with the bug still deployed stops at the poison event and keeps the case parked
    still_buggy = run_cli(["worker", "retry-dead-letters"], env, preamble=BUGGY_RELEASE)
    assert still_buggy.returncode == 1, still_buggy.stdout + still_buggy.stderr
    assert "0 applied, then stopped" in still_buggy.stdout
    assert parking.parked_keys() == {victim} and len(parking.parked_events(victim)) == 4
    assert snapshot(documents) == partial

    # the fix deployed: the retry applies the four events in order and unparks the case
    fixed = run_cli(["worker", "retry-dead-letters"], env)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert f"{victim}: 4 applied in order; unparked" in fixed.stdout
    assert snapshot(documents) == fresh_fold(events)
    assert parking.parked_keys() == set() and parking.parked_events(victim) == []
    case = documents.get("cases", victim)
    assert case is not None and case[0] is not None
    assert [c["body"] for c in case[0]["comments"]][-3:] == ["a poison pill", "after the poison", "while parked"]

    # the fixed worker (same group) applies the case's later events directly
    worker = start_worker(tmp_path, bootstrap=bootstrap, prefix=prefix, mongo_url=mongo_url, database=database,
                          group=group, name="fixed")
    try:
        bus.dispatch(m.AddComment(case_id=uuid.UUID(victim), body="after the fix"), ACTOR)
        await relay_all(event_store, bootstrap, prefix)
        events = published(event_store)
        expected = fresh_fold(events)
        await wait_until(lambda: snapshot(documents) == expected, 90, "the case's events after the fix", [worker])
    finally:
        output = worker.stop()
    assert worker.process.returncode == 0, output[-3000:]
    assert parking.parked_keys() == set()


def _record(topic: str, offset: int, item: Positioned | None, *, key: str, value: bytes | None = None) -> Delivery:
    if value is None:
        assert item is not None
        value = cloudevents.dumps(cloudevents.to_cloudevent(item.position, item.event))
    return Delivery(topic, 0, offset, key.encode() if key else None, value)


def test_undecodable_records_are_parked_by_key_and_stay_parked_until_they_decode(
    tmp_path: Path, documents: MongoDocumentStore,
) -> None:
    from adapters.event_store import sqlite_event_store

    store = sqlite_event_store(tmp_path / "events.sqlite")
    try:
        ids = fill(CommandBus(store), cases=3, rounds=1)
        events = published(store)
    finally:
        store.close()
    victim = ids[1]
    topic = "t.case.v1"
    broken = next(i for i, p in enumerate(events) if str(p.event.aggregate_id) == victim and i > 5)
    deliveries = []
    for offset, item in enumerate(events):
        key = str(item.event.aggregate_id)
        if offset == broken:
            deliveries.append(_record(topic, offset, None, key=key, value=b'{"specversion": "1.0", "type": "x"'))
        else:
            deliveries.append(_record(topic, offset, item, key=key))
    deliveries.append(_record(topic, len(events), None, key="", value=b"not even json"))

    processor = BatchProcessor(documents, ALL, MongoParking(documents.db), worker="test")
    outcome = processor.process(deliveries)
    held = [p for i, p in enumerate(events) if str(p.event.aggregate_id) == victim and i >= broken]
    assert [(p.error is not None, p.key) for p in outcome.parked] == [
        (True, victim), *[(False, victim)] * (len(held) - 1), (True, "")]
    assert "JSONDecodeError" in (outcome.parked[0].error or "")
    expected = fresh_fold([p for p in events if p not in held])
    assert snapshot(documents) == expected
    parking = MongoParking(documents.db)
    assert parking.parked_keys() == {victim}  # the unkeyed record names no case: dead-lettered, nothing held

    # delivered again, a parked record is stored once; a later record of the case waits behind them
    outcome = processor.process([deliveries[broken + 1]])
    assert [p.error for p in outcome.parked] == [None] and outcome.applied == 0
    assert len(parking.parked_events(victim)) == len(held)
    outcome = processor.process([Delivery(topic, 0, 999, victim.encode(), deliveries[broken + 1].value)])
    assert [p.error for p in outcome.parked] == [None] and outcome.applied == 0
    assert [r["offset"] for r in parking.parked_events(victim)] == [broken, *[
        i for i, p in enumerate(events) if p in held and i != broken], 999]

    # the stored record still does not decode: the retry stops at it and changes nothing
    applied, error = processor.retry(victim)
    assert (applied, parking.parked_keys()) == (0, {victim})
    assert error is not None and "JSONDecodeError" in error
    assert snapshot(documents) == expected
