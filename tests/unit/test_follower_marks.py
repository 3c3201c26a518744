"""The deployment follower and the message buffer start from their marks beside the log: a restart reads the
aggregates a mark names and the log after it, never the unrelated history before it (reads counted through a
wrapper of the real SQLite store)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from adapters.event_store import RecorderEventStore, sqlite_event_store
from adapters.log_marks import LogMarks, SqliteLogMarks, log_marks_for
from commands.bus import Actor, CommandBus
from commands.process_deployment import DeployProcess
from commands.process_messages import PublishProcessMessage
from domain.events import Event, Positioned
from domain.process_deployment import xml_hash
from processes.deployment_follower import DeploymentFollower
from processes.deployments import deploy_shipped
from processes.engine import EmbeddedEngine
from processes.jobs import known_task_types
from processes.message_buffer import deliver_published
from processes.platform import shipped_files
from tests.unit.conftest import TENANT, open_claim, publish_claim
from tests.unit.test_process_message_buffer import INTEGRATION, WAIT_PAYMENT, FakeClock, correlations

UNRELATED = 150  # case openings between the stop and the restart (several events each)
ADMIN = Actor("ada", TENANT, ("admin",))


class CountingStore:
    """The real store, remembering every window of the log read (`read_batch`: after, last) and every event read
    by position (`read`) or by aggregate (`events_of_many`)."""

    def __init__(self, store: RecorderEventStore) -> None:
        self.store = store
        self.windows: list[tuple[int, int]] = []
        self.by_position = 0
        self.by_aggregate = 0

    def read_batch(self, after: int, limit: int, types: frozenset[str] | None = None) -> tuple[list[Positioned], int]:
        items, last = self.store.read_batch(after, limit, types)
        self.windows.append((after, last))
        return items, last

    def read(self, after: int, limit: int) -> list[Positioned]:
        found = self.store.read(after, limit)
        self.by_position += len(found)
        return found

    def events_of_many(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, list[Event]]:
        found = self.store.events_of_many(aggregate_ids)
        self.by_aggregate += sum(len(events) for events in found.values())
        return found

    def lowest_read(self) -> int:
        """The lowest position any window of the log started after (the head when none was read)."""
        return min((after for after, last in self.windows if last > after), default=self.store.max_position())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture
def marks(store: RecorderEventStore) -> LogMarks:
    found = log_marks_for(store)
    assert isinstance(found, SqliteLogMarks)  # the store is a SQLite file: its marks live in it
    return found


def engine_for(bus: CommandBus, store: Any, clock: FakeClock | None = None) -> EmbeddedEngine:
    return EmbeddedEngine(bus, store, clock=clock, task_types=known_task_types())


def unrelated_history(bus: CommandBus, alice: Actor) -> None:
    publish_claim(bus, alice)
    for n in range(UNRELATED):
        open_claim(bus, alice, title=f"case {n}")


def deploy_own(bus: CommandBus, xml: str) -> str:
    process_id = re.search(r'<bpmn:process id="([^"]+)"', xml)
    assert process_id is not None
    bus.dispatch(DeployProcess(process_id=process_id[1], filename="own.bpmn", xml=xml, content_hash=xml_hash(xml)),
                 ADMIN)
    return process_id[1]


def taken(follower: DeploymentFollower) -> set[tuple[str, str, int, str | None]]:
    return {(d.tenant, d.process_id, d.version, d.error) for d in follower.learned}


def test_a_restarted_deployment_follower_reads_only_the_log_after_its_mark(bus, store, alice, marks):
    deploy_shipped(bus, shipped_files())
    own = deploy_own(bus, shipped_files()[0].read_text(encoding="utf-8"))
    running = DeploymentFollower(store, engine_for(bus, store), marks=marks)
    running.learn()
    unrelated_history(bus, alice)
    running.learn()  # while it runs, the manager has it read up to the log's head
    running.save()  # the stop
    head = store.max_position()
    assert head > 2 * UNRELATED

    counting = CountingStore(store)
    engine = engine_for(bus, counting)
    restarted = DeploymentFollower(counting, engine, marks=marks)
    assert restarted.learn() == head
    assert taken(restarted) == taken(running) and all(error is None for *_, error in taken(restarted))
    assert engine.deployed(own, TENANT) is not None
    assert counting.lowest_read() == head  # nothing before the mark was read from the log
    assert counting.by_aggregate == len(running.learned)  # only the deployments, from their aggregates

    # a deployment stored after the mark is read from the log after it, and only it
    counting.windows.clear()
    second_own = deploy_own(bus, shipped_files()[1].read_text(encoding="utf-8"))
    again = DeploymentFollower(counting, engine_for(bus, counting), marks=marks)
    again.learn()
    assert (TENANT, second_own, 1, None) in taken(again) and taken(again) == taken(restarted) | {
        (TENANT, second_own, 1, None)}
    assert counting.lowest_read() == head


def test_without_a_mark_the_follower_reads_the_whole_log(bus, store, alice):
    deploy_shipped(bus, shipped_files())
    unrelated_history(bus, alice)
    counting = CountingStore(store)
    DeploymentFollower(counting, engine_for(bus, counting)).learn()
    assert counting.lowest_read() == 0  # what the marks save: the count above can tell


def test_a_mark_made_for_another_log_is_ignored(bus, store, alice, marks, tmp_path):
    deploy_shipped(bus, shipped_files())
    follower = DeploymentFollower(store, engine_for(bus, store), marks=marks)
    follower.learn()
    other_marks = SqliteLogMarks(str(tmp_path / "other-marks.db"))
    other_marks.save_mark("deployment-follower", marks.load_mark("deployment-follower") or "")
    other = sqlite_event_store(tmp_path / "other.db")  # a new log: the mark's head names another event
    try:
        unrelated_history(CommandBus(other), alice)
        counting = CountingStore(other)
        fresh = DeploymentFollower(counting, engine_for(CommandBus(other), counting), marks=other_marks)
        fresh.learn()
        assert fresh.learned == [] and counting.lowest_read() == 0
    finally:
        other.close()


def publish(bus: CommandBus, store: Any, engine: EmbeddedEngine, key: int, ttl: str) -> None:
    result = bus.submit(PublishProcessMessage(name="order-paid", correlation_key=key, time_to_live=ttl),
                        INTEGRATION)
    deliver_published(store, engine.messages, engine, UUID(result.id), repeated=result.repeated)


def test_a_restarted_message_buffer_reads_only_the_log_after_its_mark(bus, store, alice, marks):
    clock = FakeClock()
    engine = engine_for(bus, store, clock)
    engine.deploy(WAIT_PAYMENT, "wait-payment.bpmn")
    engine.messages.rebuild(store, marks=marks)
    publish(bus, store, engine, 1, "PT1H")
    publish(bus, store, engine, 2, "PT1H")
    publish(bus, store, engine, 3, "PT1M")  # expires before the restart
    waiting = engine.start("wait-payment", tenant=TENANT, variables={"order": {"id": 1}})
    engine.run_jobs()  # key 1 correlates
    unrelated_history(bus, alice)
    engine.messages.save(store)  # the stop
    head = store.max_position()

    clock.now += timedelta(minutes=5)
    counting = CountingStore(store)
    restarted = engine_for(bus, counting, clock)
    restarted.deploy(WAIT_PAYMENT, "wait-payment.bpmn")
    assert restarted.messages.rebuild(counting, marks=marks) == 1  # key 2 only: 1 correlated, 3 expired
    assert counting.lowest_read() == head
    assert counting.by_aggregate == 2  # the publications of the two messages alive at the stop (2, and 3 since expired)
    later = restarted.start("wait-payment", tenant=TENANT, variables={"order": {"id": 2}})
    restarted.run_jobs()
    assert [e.correlation_key for e in correlations(store, later)] == ["2"] and len(restarted.messages) == 0
    assert [e.correlation_key for e in correlations(store, waiting)] == ["1"]
