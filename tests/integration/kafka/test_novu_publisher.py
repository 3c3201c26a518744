"""The Novu publisher against real Kafka and MongoDB (FerretDB), delivering to the Novu stand-in
(tests/standins/novu.py; no Novu server can run here): each expected trigger arrives exactly once with the
right subscribers (also after a crash between delivery and commit, and across a restart of `casestream
notify`), 5xx answers are retried with backoff, and a trigger that keeps failing goes to the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer

from adapters.event_store import RecorderEventStore, sqlite_event_store
from adapters.kafka_relay import KafkaRelay, RelayConfig, key_partitioner
from adapters.novu_audience import MongoAudiences
from adapters.novu_mapping import Trigger
from adapters.novu_publisher import NotifyConfig, NovuPublisher, dead_letter_topic
from adapters.novu_triggers import NovuTriggers, Outcome
from commands import messages as m
from commands.bus import Actor, CommandBus
from infra.kafka import delete_prefixed_topics
from infra.server import Server
from tests.integration.kafka.support import published
from tests.integration.store.test_document_store_contract import mongo_uri
from tests.standins.novu import NovuStandIn, novu_standin
from tests.unit.conftest import claim_definition

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
KEY = "novu-test-key"
ROLES = ("admin", "supervisor", "caseworker")
ALICE, BOB, CAROL = (Actor(user, "acme", ROLES) for user in ("alice", "bob", "carol"))

# (workflow, subscriber ids, actor) in log order, worked out by hand from `scenario`
EXPECTED = [
    ("case-assigned", ["bob"], "alice"),
    ("case-comment-added", ["alice", "bob"], "carol"),
    ("case-stage-changed", ["alice", "carol"], "bob"),
    ("claim-reminder", ["dave"], "bob"),
    ("case-closed", ["bob", "carol"], "alice"),
]


def scenario(bus: CommandBus) -> uuid.UUID:
    """alice opens and assigns to bob; carol comments; bob moves the stage; carol takes the case herself (no
    trigger: nobody is told what they did); a process step asks for a reminder to dave and bob (bob acts, so only
    dave); alice closes."""
    bus.dispatch(claim_definition(), ALICE)
    case_id = uuid.UUID(bus.dispatch(m.OpenCase(definition_key="claim", title="Hail", data={"amount": 3}), ALICE).id)
    bus.dispatch(m.AssignCase(case_id=case_id, assignee="bob"), ALICE)
    bus.dispatch(m.AddComment(case_id=case_id, body="photos attached"), CAROL)
    bus.dispatch(m.MoveCaseToStage(case_id=case_id, stage="review"), BOB)
    bus.dispatch(m.AssignCase(case_id=case_id, assignee="carol"), CAROL)
    bus.dispatch(m.RequestNotification(case_id=case_id, workflow="claim-reminder", recipients=["dave", "bob"],
                                       payload={"days": 3}), BOB)
    bus.dispatch(m.CloseCase(case_id=case_id, reason="paid", resolution="approved"), ALICE)
    return case_id


def notified_event_ids(store: RecorderEventStore) -> list[str]:
    """Ids of the events that should notify someone, in log order (from the event store)."""
    wanted = {"CaseAssigned", "CommentAdded", "CaseMovedToStage", "CaseNotificationRequested", "CaseClosed"}
    items = [p.event for p in published(store) if p.event.type_name() in wanted]
    # carol's self-assignment notifies nobody
    return [str(e.event_id) for e in items if not (e.type_name() == "CaseAssigned" and e.actor == "carol")]


def summary(standin: NovuStandIn) -> list[tuple[str, list[str], str]]:
    return [(b["name"], [t["subscriberId"] for t in b["to"]], b["actor"]) for b in standin.received]


async def until(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


@pytest.fixture
def bootstrap(kafka_server: Server) -> str:
    return str(kafka_server.info()["bootstrap"])


@pytest_asyncio.fixture(loop_scope="function")
async def prefix(bootstrap: str) -> AsyncIterator[str]:
    name = f"nt{uuid.uuid4().hex[:8]}"
    yield name
    await delete_prefixed_topics(bootstrap, name)


@pytest_asyncio.fixture(loop_scope="function")
async def store(tmp_path: Path, bootstrap: str, prefix: str) -> AsyncIterator[RecorderEventStore]:
    """An event store holding the scenario, relayed to Kafka."""
    event_store = sqlite_event_store(tmp_path / "events.sqlite", synchronous="NORMAL")
    scenario(CommandBus(event_store))
    relay = KafkaRelay(event_store, RelayConfig(bootstrap=bootstrap, prefix=prefix))
    await relay.ensure_topics()
    await relay.catch_up()
    await relay.close()
    yield event_store
    event_store.close()


@pytest.fixture
def mongo(ferretdb_server: Server) -> Iterator[tuple[str, str]]:
    uri, database = mongo_uri(ferretdb_server), f"notify_{uuid.uuid4().hex[:10]}"
    yield uri, database
    audiences = MongoAudiences(uri, database)
    audiences.client.drop_database(database)
    audiences.close()


@pytest.fixture
def standin() -> Iterator[NovuStandIn]:
    with novu_standin(KEY) as running:
        yield running


def config(bootstrap: str, prefix: str, **changes: Any) -> NotifyConfig:
    base = NotifyConfig(bootstrap=bootstrap, prefix=prefix, group=f"notify-{uuid.uuid4().hex[:8]}",
                        start="earliest", backoff_seconds=0.05, backoff_max_seconds=0.2, poll_ms=200)
    return replace(base, **changes)


async def run_until(publisher: NovuPublisher, condition: Callable[[], bool], settle: float = 1.0) -> bool:
    """Run the publisher until condition holds (then a little longer, so extra deliveries would show)."""
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    try:
        reached = await until(lambda: condition() or task.done())
        await asyncio.sleep(settle)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    return reached and condition()


def _notify_process(tmp_path: Path, bootstrap: str, prefix: str, group: str, mongo: tuple[str, str],
                    standin: NovuStandIn) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CASESTREAM_DATA_DIR": str(tmp_path / "notify"),
        "CASESTREAM_KAFKA_BOOTSTRAP": bootstrap, "CASESTREAM_KAFKA_TOPIC_PREFIX": prefix,
        "CASESTREAM_NOTIFY_GROUP": group, "CASESTREAM_MONGO_URL": mongo[0], "CASESTREAM_MONGO_DATABASE": mongo[1],
        "CASESTREAM_NOVU_URL": standin.url, "CASESTREAM_NOVU_API_KEY": KEY, "CASESTREAM_NOVU_BACKOFF_SECONDS": "0.05",
    }
    return subprocess.Popen([sys.executable, "-m", "casestream", "notify", "--from-beginning"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> str:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out.decode(errors="replace")[-3000:]
    return out.decode(errors="replace")


async def test_notify_command_triggers_each_notification_once_and_resumes_after_a_restart(
    tmp_path: Path, store: RecorderEventStore, bootstrap: str, prefix: str, mongo: tuple[str, str],
    standin: NovuStandIn,
) -> None:
    group = f"notify-cli-{uuid.uuid4().hex[:8]}"
    process = _notify_process(tmp_path, bootstrap, prefix, group, mongo, standin)
    try:
        assert await until(lambda: len(standin.received) >= len(EXPECTED) or process.poll() is not None)
        await asyncio.sleep(1.0)
    finally:
        output = _stop(process)
    assert summary(standin) == EXPECTED, output[-3000:]
    assert [b["transactionId"] for b in standin.received] == notified_event_ids(store)
    assert {b["tenant"] for b in standin.received} == {"acme"}
    first = standin.received[0]["payload"]
    assert (first["assignee"], first["case_title"], first["tenant"]) == ("bob", "Hail", "acme")
    assert standin.received[3]["payload"]["days"] == 3
    assert standin.duplicates == []

    # a restart in the same group continues after the committed offsets: only the new comment is sent
    case_id = uuid.UUID(standin.received[0]["payload"]["case_id"])
    CommandBus(store).dispatch(m.AddComment(case_id=case_id, body="one more"), BOB)
    relay = KafkaRelay(store, RelayConfig(bootstrap=bootstrap, prefix=prefix))
    await relay.start()  # resumes after its stored position: nothing is sent twice on the wire here
    await relay.catch_up()
    await relay.close()
    process = _notify_process(tmp_path, bootstrap, prefix, group, mongo, standin)
    try:
        assert await until(lambda: len(standin.received) > len(EXPECTED) or process.poll() is not None)
        await asyncio.sleep(1.0)
    finally:
        output = _stop(process)
    assert summary(standin)[len(EXPECTED):] == [("case-comment-added", ["alice", "carol"], "bob")], output[-3000:]
    assert standin.duplicates == []


class CrashAfterFirstSend:
    """Delivers for real, then fails once as a process dying between delivery and offset commit would."""

    def __init__(self, inner: NovuTriggers) -> None:
        self.inner = inner
        self.crashed = False

    async def send(self, trigger: Trigger) -> Outcome:
        outcome = await self.inner.send(trigger)
        if not self.crashed:
            self.crashed = True
            raise RuntimeError("died after delivering, before committing")
        return outcome


async def test_a_redelivered_event_reaches_novu_once(
    store: RecorderEventStore, bootstrap: str, prefix: str, mongo: tuple[str, str], standin: NovuStandIn,
) -> None:
    sender = CrashAfterFirstSend(NovuTriggers(standin.url, KEY))
    audiences = MongoAudiences(*mongo)
    publisher = NovuPublisher(config(bootstrap, prefix, error_backoff_seconds=0.1), sender, audiences)
    try:
        done = await run_until(publisher, lambda: len(standin.received) >= len(EXPECTED))
    finally:
        audiences.close()
    assert done, standin.refused
    assert summary(standin) == EXPECTED
    ids = notified_event_ids(store)
    assert [b["transactionId"] for b in standin.received] == ids
    assert standin.duplicates == [ids[0]]  # the redelivered first trigger was sent again and dropped by "Novu"
    assert publisher.counters.duplicates == 1


async def test_server_errors_are_retried_with_backoff_then_delivered(
    store: RecorderEventStore, bootstrap: str, prefix: str, mongo: tuple[str, str], standin: NovuStandIn,
) -> None:
    standin.fail_next(2)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(seconds)

    audiences = MongoAudiences(*mongo)
    publisher = NovuPublisher(config(bootstrap, prefix, max_attempts=4), NovuTriggers(standin.url, KEY), audiences,
                              sleep=sleep)
    try:
        done = await run_until(publisher, lambda: len(standin.received) >= len(EXPECTED))
    finally:
        audiences.close()
    assert done, standin.refused
    assert summary(standin) == EXPECTED
    assert standin.requests == len(EXPECTED) + 2
    assert sleeps == [0.05, 0.1]  # exponential: the configured first delay, then doubled
    assert publisher.counters.dead_lettered == 0


async def test_a_trigger_failing_every_try_goes_to_the_dead_letter_topic_and_the_rest_continue(
    store: RecorderEventStore, bootstrap: str, prefix: str, mongo: tuple[str, str], standin: NovuStandIn,
) -> None:
    standin.fail_next(3)
    audiences = MongoAudiences(*mongo)
    publisher = NovuPublisher(config(bootstrap, prefix, max_attempts=3), NovuTriggers(standin.url, KEY), audiences)
    try:
        done = await run_until(publisher, lambda: len(standin.received) >= len(EXPECTED) - 1)
    finally:
        audiences.close()
    assert done, standin.refused
    assert summary(standin) == EXPECTED[1:]
    ids = notified_event_ids(store)

    consumer = AIOKafkaConsumer(dead_letter_topic(prefix), bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        letters: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + 20
        while not letters and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                letters.extend(orjson.loads(r.value) for r in records)
    finally:
        await consumer.stop()
    assert len(letters) == 1
    letter = letters[0]
    assert letter["attempts"] == 3
    assert letter["status"] == 500
    assert "500" in letter["error"]
    assert letter["trigger"]["name"] == "case-assigned"
    assert letter["trigger"]["transactionId"] == ids[0]
    assert letter["event"]["id"] == ids[0]
    assert letter["source"]["topic"] == f"{prefix}.case.v1"


class HoldWorkflow:
    """Holds every trigger of one workflow until released (as a Novu that keeps failing it would)."""

    def __init__(self, inner: NovuTriggers, workflow: str) -> None:
        self.inner = inner
        self.workflow = workflow
        self.release = asyncio.Event()

    async def send(self, trigger: Trigger) -> Outcome:
        if trigger.workflow == self.workflow:
            await self.release.wait()
        return await self.inner.send(trigger)


async def test_a_held_trigger_holds_back_only_its_own_partition(
    store: RecorderEventStore, bootstrap: str, prefix: str, mongo: tuple[str, str], standin: NovuStandIn,
) -> None:
    bus = CommandBus(store)
    first_case = next(p.event.aggregate_id for p in published(store) if p.event.type_name() == "CaseOpened")
    partitions = list(range(RelayConfig().partitions))

    def partition(case_id: uuid.UUID) -> int:
        return key_partitioner(str(case_id).encode(), partitions, partitions)

    other = first_case
    while partition(other) == partition(first_case):  # a second case on another partition
        other = uuid.UUID(bus.dispatch(m.OpenCase(definition_key="claim", title="Other", data={"amount": 1}),
                                       ALICE).id)
    bus.dispatch(m.AssignCase(case_id=other, assignee="erin"), ALICE)
    relay = KafkaRelay(store, RelayConfig(bootstrap=bootstrap, prefix=prefix))
    await relay.start()
    await relay.catch_up()
    await relay.close()

    sender = HoldWorkflow(NovuTriggers(standin.url, KEY), "case-comment-added")  # only the first case has one
    audiences = MongoAudiences(*mongo)
    stop = asyncio.Event()
    task = asyncio.create_task(NovuPublisher(config(bootstrap, prefix), sender, audiences).run(stop))
    try:
        # the other case's assignment gets through while the first case's comment is held ...
        assert await until(lambda: ("case-assigned", ["erin"], "alice") in summary(standin), timeout=30)
        await asyncio.sleep(1.0)
        # ... and the first case's later triggers wait behind its comment: its order is kept
        assert [t for t in summary(standin) if t[1] != ["erin"]] == EXPECTED[:1]
        sender.release.set()
        assert await until(lambda: len(standin.received) >= len(EXPECTED) + 1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        audiences.close()
    assert [t for t in summary(standin) if t[1] != ["erin"]] == EXPECTED
