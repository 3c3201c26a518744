"""Incidents instead of silent stops, and the operator's retry / cancel / set-variables on the embedded engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore
from adapters.rego_policy import RegoPolicy
from adapters.sqlite_documents import SqliteDocumentStore
from commands.bus import Actor, CommandBus
from domain.errors import Forbidden, InvalidStateChange
from domain.process import IncidentNotOpen, IncidentRaised, process_instance_id
from processes import operations
from processes.engine import EmbeddedEngine
from processes.jobs import known_task_types
from projections import process_queries
from projections.ports import Query
from tests.unit import engine_models as models
from tests.unit.conftest import TENANT
from tests.unit.engine_models import flow, process, service

ADMIN = Actor("root", TENANT, ("admin",))
POLICIES = Path(__file__).resolve().parents[2] / "policies"

START = '<bpmn:startEvent id="Begin"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
END = '<bpmn:endEvent id="{0}"><bpmn:incoming>{1}</bpmn:incoming></bpmn:endEvent>'

# an exclusive gateway with one conditional flow and no default, right after the start
NO_MATCH = process("no-match", (
    START + flow("f1", "Begin", "Gate")
    + '<bpmn:exclusiveGateway id="Gate"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>big</bpmn:outgoing>'
      '</bpmn:exclusiveGateway>'
    + flow("big", "Gate", "Work", "=amount &gt; 1000") + service("Work", "test.record", "big", "f3")
    + flow("f3", "Work", "Done") + END.format("Done", "f3")))

# a job, then a gateway with no outgoing flow at all (accepted at deploy, fails when reached)
DEAD_END = process("dead-end", (
    START + flow("f1", "Begin", "Work") + service("Work", "test.record", "f1", "f2") + flow("f2", "Work", "Gate")
    + '<bpmn:exclusiveGateway id="Gate"><bpmn:incoming>f2</bpmn:incoming></bpmn:exclusiveGateway>'))

# a message catch whose correlation key names a variable the instance does not have
NO_KEY = process("no-key", (
    START + flow("f1", "Begin", "Reply")
    + '<bpmn:intermediateCatchEvent id="Reply"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
      '<bpmn:messageEventDefinition messageRef="Msg"/></bpmn:intermediateCatchEvent>'
    + flow("f2", "Reply", "Done") + END.format("Done", "f2")),
    '<bpmn:message id="Msg" name="answer"><bpmn:extensionElements>'
    '<zeebe:subscription correlationKey="=ticket"/></bpmn:extensionElements></bpmn:message>')


@pytest.fixture(autouse=True)
def _reset_jobs() -> Iterator[None]:
    models.JOBS.clear()
    models.FAILURES.clear()
    yield


def make_engine(bus: CommandBus, store: RecorderEventStore) -> EmbeddedEngine:
    engine = EmbeddedEngine(bus, store, backoff_seconds=0, task_types=known_task_types())
    for xml in (NO_MATCH, DEAD_END, NO_KEY, models.one_task("failing", "test.fail"), models.REVIEW):
        engine.deploy(xml, "test.bpmn")
    return engine


@pytest.fixture
def engine(bus: CommandBus, store: RecorderEventStore) -> EmbeddedEngine:
    return make_engine(bus, store)


def stored(store: RecorderEventStore, key: str) -> list[Any]:
    return store.events_of(process_instance_id(TENANT, key))


def types(store: RecorderEventStore, key: str) -> list[str]:
    return [type(e).__name__ for e in stored(store, key)]


def incidents(store: RecorderEventStore, key: str) -> list[IncidentRaised]:
    return [e for e in stored(store, key) if isinstance(e, IncidentRaised)]


def test_an_unmatched_gateway_at_the_start_stores_the_instance_with_an_incident(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    key = engine.start("no-match", tenant=TENANT, variables={"amount": 5})
    assert types(store, key) == ["ProcessStarted", "IncidentRaised"]
    (incident,) = incidents(store, key)
    assert (incident.kind, incident.element_id) == ("element", "Gate")
    assert "No conditions satisfied" in incident.message
    assert engine.instance(key, TENANT) is not None  # open, waiting for an operator


def test_retrying_the_gateway_after_fixing_the_data_takes_the_branch(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    key = engine.start("no-match", tenant=TENANT, variables={"amount": 5})
    (incident,) = incidents(store, key)
    iid = process_instance_id(TENANT, key)
    operations.retry_incident(engine, TENANT, iid, incident.incident_id, ADMIN, variables={"amount": 5000},
                              note="amount corrected")
    assert engine.run_jobs() == 1
    assert types(store, key)[-4:] == ["IncidentResolved", "ProcessAdvanced", "ProcessAdvanced", "ProcessCompleted"]
    resolved = stored(store, key)[-4]
    assert resolved.actor == "root" and resolved.note == "amount corrected" and resolved.resolution == "retried"
    with pytest.raises(InvalidStateChange):  # finished: nothing left to retry
        operations.retry_incident(engine, TENANT, iid, incident.incident_id, ADMIN)


def test_a_gateway_without_outgoing_flow_is_an_incident_and_a_restart_keeps_it_without_crashing(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    key = engine.start("dead-end", tenant=TENANT)
    engine.run_jobs()
    assert types(store, key) == ["ProcessStarted", "ProcessAdvanced", "IncidentRaised"]
    assert incidents(store, key)[0].element_id == "Gate"
    again = make_engine(CommandBus(store), store)
    assert again.recover() == [key]
    assert again.run_jobs() == 0  # nothing re-run: the failed gateway waits for an operator
    instance = again.instance(key, TENANT)
    assert instance is not None and set(instance.extra["incidents"]) == {incidents(store, key)[0].incident_id}
    assert types(store, key)[-1] == "IncidentRaised"  # no new incident on every restart


def test_a_message_catch_whose_correlation_key_has_no_value_is_an_incident(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    key = engine.start("no-key", tenant=TENANT)
    (incident,) = incidents(store, key)
    assert incident.kind == "message" and incident.element_id == "Reply" and "=ticket" in incident.message
    iid = process_instance_id(TENANT, key)
    operations.retry_incident(engine, TENANT, iid, incident.incident_id, ADMIN, variables={"ticket": "T-1"})
    assert engine.correlate_message(TENANT, "answer", "T-1")
    assert types(store, key)[-1] == "ProcessCompleted"


def test_a_job_out_of_retries_is_retried_by_the_operator_with_new_tries(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    key = engine.start("failing", tenant=TENANT)
    for _ in range(3):
        engine.run_jobs()
        engine.fire_due_timers()
    (incident,) = incidents(store, key)
    assert incident.kind == "job" and incident.job_type == "test.fail" and incident.process_id == "failing"
    before = len(models.JOBS)
    iid = process_instance_id(TENANT, key)
    operations.retry_job(engine, TENANT, iid, "Job", ADMIN, retries=2)
    engine.run_jobs()
    assert [job.retries for job in models.JOBS[before:]] == [2, 1]  # two more tries (no back-off here)
    assert [i.incident_id != incident.incident_id for i in incidents(store, key)] == [False, True]  # failed again
    with pytest.raises(IncidentNotOpen):
        operations.retry_incident(engine, TENANT, iid, incident.incident_id, ADMIN)


def test_cancelling_an_incident_cancels_the_instance_and_resolves_it(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    key = engine.start("no-match", tenant=TENANT, variables={"amount": 1})
    (incident,) = incidents(store, key)
    operations.cancel_instance(engine, TENANT, process_instance_id(TENANT, key), ADMIN, "wrong data",
                               incident_id=incident.incident_id)
    assert types(store, key)[-2:] == ["IncidentResolved", "ProcessCancelled"]
    assert stored(store, key)[-2].resolution == "cancelled"
    assert engine.instance(key, TENANT) is None


def test_operations_are_the_operators_commands_and_the_policy_decides_them(
    store: RecorderEventStore,
) -> None:
    bus = CommandBus(store, policy=RegoPolicy(POLICIES))
    engine = make_engine(bus, store)
    key = engine.start("no-match", tenant=TENANT, variables={"amount": 1})
    iid = process_instance_id(TENANT, key)
    with pytest.raises(Forbidden):
        operations.set_variables(engine, TENANT, iid, Actor("bob", TENANT, ("supervisor",)), {"amount": 2})
    assert types(store, key) == ["ProcessStarted", "IncidentRaised"]  # nothing stored
    operations.set_variables(engine, TENANT, iid, ADMIN, {"amount": 2})
    assert types(store, key)[-2:] == ["ProcessVariablesModified", "ProcessAdvanced"]
    assert stored(store, key)[-1].delta["vars"] == {"amount": 2}
    assert engine.instance(key, TENANT).variables["amount"] == 2  # type: ignore[union-attr]


def test_the_read_models_list_incidents_and_instances_and_the_timeline_shows_them(
    engine: EmbeddedEngine, store: RecorderEventStore, documents: SqliteDocumentStore, runner: EmbeddedRunner
) -> None:
    case_id = "6f1b0d9e-0000-4000-8000-000000000001"
    key = engine.start("no-match", tenant=TENANT, variables={"amount": 1}, case_id=case_id)
    other = engine.start("review", tenant=TENANT, variables={"amount": 1, "reviewer": "carol"})
    runner.catch_up()
    page = process_queries.list_incidents(documents, TENANT, state="open")
    assert [(i["element_id"], i["case_id"], i["process_id"]) for i in page.items] == [("Gate", case_id, "no-match")]
    incident_id = page.items[0]["id"]
    flagged = process_queries.list_instances(documents, TENANT, has_incident=True)
    assert [i["instance_key"] for i in flagged.items] == [key]
    detail = process_queries.get_instance(documents, TENANT, str(process_instance_id(TENANT, other)))
    assert {e["element_id"] for e in detail["elements"]} >= {"Review", "Wait"}
    assert detail["variables"]["reviewer"] == "carol"
    operations.retry_incident(engine, TENANT, process_instance_id(TENANT, key), incident_id, ADMIN,
                              variables={"amount": 2000})
    runner.catch_up()
    assert process_queries.list_incidents(documents, TENANT, state="open").items == []
    assert process_queries.get_incident(documents, TENANT, incident_id)["resolved_by"] == "root"
    assert process_queries.list_instances(documents, TENANT, has_incident=True).items == []
    lines = [e["summary"] for e in documents.find(Query("timeline", TENANT, {"case_id": case_id}, sort="at",
                                                        descending=False))]
    assert any(line.startswith("process incident at Gate") for line in lines)
    assert "retried the process incident at Gate" in lines
    assert process_queries.list_incidents(documents, "another-tenant").items == []


SET_QUEUE = process("set-queue", (
    START + flow("f1", "Begin", "Queue")
    + service("Queue", "case.set-queue", "f1", "f2",
              '<zeebe:taskHeaders><zeebe:header key="queue" value="fraud"/></zeebe:taskHeaders>')
    + flow("f2", "Queue", "Done") + END.format("Done", "f2")))


def test_a_job_whose_command_changes_nothing_completes_instead_of_raising_an_incident(
    engine: EmbeddedEngine, bus: CommandBus, store: RecorderEventStore
) -> None:
    from commands.messages import QueueCase
    from tests.unit.conftest import open_claim, publish_claim

    alice = Actor("alice", TENANT, ("caseworker",))
    publish_claim(bus, alice)
    case_id = open_claim(bus, alice).id
    bus.dispatch(QueueCase(case_id=case_id, queue="fraud"), alice)
    engine.deploy(SET_QUEUE, "set-queue.bpmn")
    key = engine.start("set-queue", tenant=TENANT, case_id=case_id)
    engine.run_jobs()
    assert types(store, key) == ["ProcessStarted", "ProcessAdvanced", "ProcessCompleted"]  # the case was there


# an exclusive split into a parallel join: the join waits for a branch the split did not take
DEAD_JOIN = process("dead-join", (
    START + flow("f1", "Begin", "Split")
    + '<bpmn:exclusiveGateway id="Split" default="toA"><bpmn:incoming>f1</bpmn:incoming>'
      '<bpmn:outgoing>toA</bpmn:outgoing><bpmn:outgoing>toB</bpmn:outgoing></bpmn:exclusiveGateway>'
    + flow("toA", "Split", "A") + flow("toB", "Split", "B", "=amount &gt; 10")
    + service("A", "test.record", "toA", "a2") + service("B", "test.record", "toB", "b2")
    + flow("a2", "A", "Join") + flow("b2", "B", "Join")
    + '<bpmn:parallelGateway id="Join"><bpmn:incoming>a2</bpmn:incoming><bpmn:incoming>b2</bpmn:incoming>'
      '<bpmn:outgoing>f9</bpmn:outgoing></bpmn:parallelGateway>'
    + flow("f9", "Join", "Done") + END.format("Done", "f9")))


def test_an_instance_left_waiting_at_a_join_no_branch_can_reach_is_a_stuck_incident(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    engine.deploy(DEAD_JOIN, "dead-join.bpmn")
    key = engine.start("dead-join", tenant=TENANT, variables={"amount": 1})
    assert incidents(store, key) == []  # job A still to run: not stuck yet
    engine.run_jobs()
    (incident,) = incidents(store, key)
    assert (incident.kind, incident.element_id) == ("stuck", "Join") and "never arrive" in incident.message
    assert engine.instance(key, TENANT) is not None  # open for an operator to cancel
