"""The BPMN elements added for issue 15, each run through the embedded engine as a Camunda Modeler model:
FEEL script tasks, event-based gateways, multi-instance, call activities, business-rule tasks with DMN."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.event_store import RecorderEventStore
from commands.bus import Actor, CommandBus
from domain.process import IncidentRaised, ProcessCompleted, process_instance_id
from domain.task import TaskCreated
from processes.bpmn import BpmnRejected
from processes.engine import EmbeddedEngine
from processes.jobs import known_task_types
from tests.unit import element_models as em
from tests.unit import engine_models as models
from tests.unit.conftest import TENANT, open_claim

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _reset_jobs() -> Iterator[None]:
    models.JOBS.clear()
    yield


@pytest.fixture
def engine(bus: CommandBus, store: RecorderEventStore, clock: FakeClock) -> EmbeddedEngine:
    engine = EmbeddedEngine(bus, store, clock=clock, task_types=known_task_types())
    engine.deploy_dmn(em.DMN)
    for xml in (em.SCRIPT, em.EVENT_GATEWAY, em.multi_service("multi-parallel", False),
                em.multi_service("multi-sequential", True), em.MULTI_USER, em.MULTI_SUBPROCESS, em.CALLED,
                em.call_parent("call", "check-customer"), em.call_parent("call-isolated", "check-customer", False),
                em.call_parent("call-missing", "not-deployed"), em.CALL_MULTI, em.DECISION):
        engine.deploy(xml, "elements.bpmn")
    return engine


def events(store: RecorderEventStore, key: str) -> list[Any]:
    return store.events_of(process_instance_id(TENANT, key))


def completed(store: RecorderEventStore, key: str) -> bool:
    return any(isinstance(e, ProcessCompleted) for e in events(store, key))


def job(element_id: str) -> Any:
    found = [j for j in models.JOBS if j.element_id == element_id]
    assert found, f"no job for {element_id}; jobs: {[j.element_id for j in models.JOBS]}"
    return found[-1]


# ------------------------------------------------------------------------------------------- script tasks

def test_feel_script_task_sets_its_result_variable_and_honours_io_mappings(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    key = engine.start("script", tenant=TENANT, variables={"a": 2, "b": 3})
    engine.run_jobs()
    seen = job("Check").variables
    assert seen["sum"] == 5
    assert seen["shout"] == "TOTAL 50"  # the input mapping `factor` was local to the script ...
    assert "factor" not in seen and "label" not in seen  # ... and with an output mapping only its target is set
    assert completed(store, key)


def test_script_task_without_a_zeebe_script_is_refused_naming_the_element(engine: EmbeddedEngine) -> None:
    xml = em.SCRIPT.replace(b'<zeebe:script expression="=a + b" resultVariable="sum"/>', b"")
    with pytest.raises(BpmnRejected, match=r"Sum: script task without zeebe:script expression and resultVariable"):
        engine.deploy(xml, "bad.bpmn")


# ----------------------------------------------------------------------------------- event-based gateway

def test_event_based_gateway_takes_the_message_that_comes_first_and_drops_the_timer(
    engine: EmbeddedEngine, store: RecorderEventStore, clock: FakeClock
) -> None:
    key = engine.start("event-gateway", tenant=TENANT, variables={"orderId": "o-1"})
    assert engine.next_timer() == NOW + timedelta(hours=1)
    assert engine.correlate_message(TENANT, "approved", "o-1", {"by": "ann"})
    engine.run_jobs()
    assert [j.element_id for j in models.JOBS] == ["Ship"]
    assert job("Ship").variables["by"] == "ann"
    clock.now = NOW + timedelta(hours=2)
    assert engine.fire_due_timers() == 0  # the timer's subscription went with the gateway
    assert not engine.correlate_message(TENANT, "cancelled", "o-1")
    assert completed(store, key)


def test_event_based_gateway_takes_the_timer_when_no_message_comes(
    engine: EmbeddedEngine, store: RecorderEventStore, clock: FakeClock
) -> None:
    key = engine.start("event-gateway", tenant=TENANT, variables={"orderId": "o-2"})
    clock.now = NOW + timedelta(hours=1)
    assert engine.fire_due_timers() == 1
    engine.run_jobs()
    assert [j.element_id for j in models.JOBS] == ["Remind"]
    assert not engine.correlate_message(TENANT, "approved", "o-2")
    assert completed(store, key)


def test_event_based_gateway_second_message_wins_its_own_branch(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    key = engine.start("event-gateway", tenant=TENANT, variables={"orderId": "o-3"})
    assert not engine.correlate_message(TENANT, "cancelled", "o-other")
    assert engine.correlate_message(TENANT, "cancelled", "o-3")
    engine.run_jobs()
    assert [j.element_id for j in models.JOBS] == ["Refund"]
    assert completed(store, key)


def test_a_waiting_event_based_gateway_survives_a_restart(
    bus: CommandBus, store: RecorderEventStore, engine: EmbeddedEngine, clock: FakeClock
) -> None:
    key = engine.start("event-gateway", tenant=TENANT, variables={"orderId": "o-4"})
    again = EmbeddedEngine(bus, store, clock=clock, task_types=known_task_types())
    again.deploy(em.EVENT_GATEWAY, "elements.bpmn")
    assert again.recover() == [key]
    assert again.next_timer() == NOW + timedelta(hours=1)
    assert again.correlate_message(TENANT, "approved", "o-4")
    again.run_jobs()
    assert completed(store, key)


# ---------------------------------------------------------------------------------------- multi-instance

@pytest.mark.parametrize("process_id", ["multi-parallel", "multi-sequential"])
def test_multi_instance_service_task_runs_a_job_per_item_and_collects_outputs_in_order(
    engine: EmbeddedEngine, store: RecorderEventStore, process_id: str
) -> None:
    key = engine.start(process_id, tenant=TENANT, variables={"items": [10, 20, 30]})
    while engine.run_jobs():
        pass
    each = [j for j in models.JOBS if j.element_id == "Each"]
    assert sorted(j.variables["item"] for j in each) == [10, 20, 30]
    assert sorted(j.variables["loopCounter"] for j in each) == [1, 2, 3]
    after = job("After").variables
    assert after["answers"] == ["10", "40", "90"]  # item * loopCounter, at the item's index
    assert "item" not in after and "loopCounter" not in after  # the inner scope does not leak
    assert completed(store, key)


def test_sequential_multi_instance_offers_the_next_job_only_after_the_previous_completed(
    engine: EmbeddedEngine,
) -> None:
    engine.start("multi-sequential", tenant=TENANT, variables={"items": [1, 2]})
    engine.run_jobs()
    each = [j for j in models.JOBS if j.element_id == "Each"]
    assert [j.variables["item"] for j in each] == [1, 2]
    # the output element's variable is each inner instance's own (null until its job sets it): the first's answer
    # does not reach the second, as in Zeebe
    assert [j.variables["answer"] for j in each] == [None, None]


def test_multi_instance_over_an_empty_collection_completes_at_once(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    key = engine.start("multi-parallel", tenant=TENANT, variables={"items": []})
    engine.run_jobs()
    assert [j.element_id for j in models.JOBS] == ["After"]
    assert job("After").variables["answers"] == []
    assert completed(store, key)


def test_multi_instance_user_task_lists_and_completes_one_task_per_approver(
    bus: CommandBus, store: RecorderEventStore, engine: EmbeddedEngine, alice: Actor, claim: Any
) -> None:
    case_id = open_claim(bus, alice).id
    key = engine.start("multi-user", tenant=TENANT, variables={"approvers": ["ann", "bob", "cy"]}, case_id=case_id)
    tasks = engine.open_user_tasks(key, TENANT)
    # one open task per item, each with its own item and loopCounter (and its own `approved`, null so far)
    assert [(t.element_id, t.variables) for t in tasks] == [
        ("Approve", {"approver": name, "loopCounter": n, "approved": None})
        for n, name in enumerate(["ann", "bob", "cy"], 1)]
    created = {e.event.assignee: e.event.aggregate_id for e in store.read(0, 10_000)
               if isinstance(e.event, TaskCreated)}
    assert [t.task_id for t in tasks] == [created["ann"], created["bob"], created["cy"]]
    assert engine.complete_user_task(TENANT, created["bob"], {"approved": False})  # the second item first
    assert [t.variables["approver"] for t in engine.open_user_tasks(key, TENANT)] == ["ann", "cy"]
    assert not models.JOBS
    assert engine.complete_user_task(TENANT, created["cy"], {"approved": True})
    assert engine.complete_user_task(TENANT, created["ann"], {"approved": True})
    assert engine.open_user_tasks(key, TENANT) == []
    engine.run_jobs()
    assert job("After").variables["decisions"] == [True, False, True]  # each item's own answer, in item order
    assert completed(store, key)


def test_sequential_multi_instance_sub_process_gives_each_inner_element_its_item(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    orders = [{"qty": 2, "price": 5}, {"qty": 1, "price": 7}]
    key = engine.start("multi-sub", tenant=TENANT, variables={"orders": orders})
    while engine.run_jobs():
        pass
    books = [j for j in models.JOBS if j.element_id == "Book"]
    assert [j.variables["order"] for j in books] == orders
    assert [j.variables["total"] for j in books] == [10, 7]
    assert job("After").variables["totals"] == [10, 7]
    assert completed(store, key)


def test_multi_instance_without_an_input_collection_is_refused_naming_the_element(engine: EmbeddedEngine) -> None:
    xml = em.multi_service("no-collection", False).replace(b' inputCollection="=items"', b"")
    with pytest.raises(BpmnRejected, match=r"Each: multi-instance needs zeebe:loopCharacteristics inputCollection"):
        engine.deploy(xml, "bad.bpmn")


def test_a_running_multi_instance_survives_a_restart(
    bus: CommandBus, store: RecorderEventStore, engine: EmbeddedEngine, clock: FakeClock
) -> None:
    key = engine.start("multi-sequential", tenant=TENANT, variables={"items": [3, 4]})
    again = EmbeddedEngine(bus, store, clock=clock, task_types=known_task_types())
    again.deploy(em.multi_service("multi-sequential", True), "elements.bpmn")
    assert again.recover() == [key]
    while again.run_jobs():
        pass
    assert job("After").variables["answers"] == ["3", "8"]
    assert completed(store, key)


# ----------------------------------------------------------------------------------------- call activity

def test_call_activity_runs_the_called_process_with_input_and_output_mappings(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    key = engine.start("call", tenant=TENANT, variables={"customer": {"name": "Ann"}})
    engine.run_jobs()
    engine.run_jobs()
    assert job("Inner").variables["who"] == "Ann"  # the input mapping is visible in the called process
    after = job("After").variables
    assert after["checkResult"] == "ok"
    assert after["verdict"] == "ok"  # propagateAllChildVariables defaults to true
    assert "who" not in after  # the input mapping was local to the call
    assert completed(store, key)


def test_call_activity_without_child_propagation_keeps_only_its_outputs(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    key = engine.start("call-isolated", tenant=TENANT, variables={"customer": {"name": "Bo"}})
    engine.run_jobs()
    engine.run_jobs()
    after = job("After").variables
    assert after["checkResult"] == "review"
    assert "verdict" not in after and "recorded" not in after
    assert completed(store, key)


def test_calling_a_process_that_is_not_deployed_raises_an_incident_naming_it(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    key = engine.start("call-missing", tenant=TENANT, variables={"customer": {"name": "Ann"}})
    incidents = [e for e in events(store, key) if isinstance(e, IncidentRaised)]
    assert incidents and "'not-deployed'" in incidents[0].message
    assert not completed(store, key)


def test_multi_instance_call_activity_calls_once_per_item(engine: EmbeddedEngine, store: RecorderEventStore) -> None:
    key = engine.start("call-multi", tenant=TENANT, variables={"names": ["Ann", "Cy", "Ann"]})
    while engine.run_jobs():
        pass
    assert sorted(j.variables["who"] for j in models.JOBS if j.element_id == "Inner") == ["Ann", "Ann", "Cy"]
    assert completed(store, key)
    stored = {}
    for e in events(store, key):
        stored.update((getattr(e, "delta", None) or {}).get("vars", {}))
    assert stored["verdicts"] == ["ok", "review", "ok"]


# ----------------------------------------------------------------------------------- business-rule tasks

@pytest.mark.parametrize(("customer", "amount", "rate"), [
    ("gold", 1500, 0.15), ("gold", 50, 0.1), ("silver", 500, 0.05), ("bronze", 5000, None),
])
def test_business_rule_task_evaluates_a_unique_decision_table(
    engine: EmbeddedEngine, store: RecorderEventStore, customer: str, amount: int, rate: float | None
) -> None:
    key = engine.start("decide", tenant=TENANT, variables={"customer": {"kind": customer}, "amount": amount})
    engine.run_jobs()
    assert job("After").variables["discount"] == rate
    assert completed(store, key)


def test_business_rule_task_of_an_unknown_decision_raises_an_incident(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    engine.deploy(em.DECISION.replace(b'decisionId="discount"', b'decisionId="nope"').replace(
        b'id="decide"', b'id="decide-nope"'), "nope.bpmn")
    key = engine.start("decide-nope", tenant=TENANT, variables={})
    incidents = [e for e in events(store, key) if isinstance(e, IncidentRaised)]
    assert incidents and "'nope'" in incidents[0].message


# ------------------------------------------------------------------------------------- event sub-processes

@pytest.fixture
def subs(engine: EmbeddedEngine) -> EmbeddedEngine:
    engine.deploy(em.EVENT_SUBPROCESSES, "event-subs.bpmn")
    return engine


def test_interrupting_message_event_sub_process_ends_the_main_path(
    subs: EmbeddedEngine, store: RecorderEventStore, clock: FakeClock
) -> None:
    subs.deploy(em.EVENT_SUBPROCESSES_OK, "ok.bpmn")
    key = subs.start("event-subs-ok", tenant=TENANT, variables={"orderId": "o-9"})
    subs.run_jobs()  # the main path now waits ten days
    models.JOBS.clear()
    assert subs.correlate_message(TENANT, "cancel-order", "o-9", {"why": "changed mind"})
    subs.run_jobs()
    assert [j.element_id for j in models.JOBS] == ["Cancelled"]
    assert job("Cancelled").variables["why"] == "changed mind"
    assert completed(store, key)
    assert not subs.correlate_message(TENANT, "note", "o-9")


def test_non_interrupting_message_and_timer_event_sub_processes_run_alongside(
    subs: EmbeddedEngine, store: RecorderEventStore, clock: FakeClock
) -> None:
    key = subs.start("event-subs", tenant=TENANT, variables={"orderId": "o-10", "code": "nothing-matches"})
    subs.run_jobs()
    models.JOBS.clear()
    assert subs.correlate_message(TENANT, "note", "o-10", {"text": "call me"})
    subs.run_jobs()
    assert [j.element_id for j in models.JOBS] == ["Noted"]
    clock.now = NOW + timedelta(days=1)
    assert subs.fire_due_timers() == 1
    subs.run_jobs()
    assert [j.element_id for j in models.JOBS] == ["Noted", "Remind"]
    assert not completed(store, key)
    assert subs.correlate_message(TENANT, "note", "o-10")  # a non-interrupting one can happen again


def test_error_event_sub_process_catches_a_bpmn_error_of_its_code(
    subs: EmbeddedEngine, store: RecorderEventStore
) -> None:
    key = subs.start("event-subs", tenant=TENANT, variables={"orderId": "o-11", "code": "broken"})
    subs.run_jobs()
    subs.run_jobs()
    assert [j.element_id for j in models.JOBS] == ["Work", "Repair"]
    assert completed(store, key)
    assert not [e for e in events(store, key) if isinstance(e, IncidentRaised)]


def test_the_process_completes_when_only_event_sub_processes_wait(
    subs: EmbeddedEngine, store: RecorderEventStore, clock: FakeClock
) -> None:
    subs.deploy(em.EVENT_SUBPROCESSES_OK, "ok.bpmn")
    key = subs.start("event-subs-ok", tenant=TENANT, variables={"orderId": "o-12"})
    subs.run_jobs()
    clock.now = NOW + timedelta(days=10)
    subs.fire_due_timers()
    subs.run_jobs()
    assert completed(store, key)
    assert not subs.correlate_message(TENANT, "note", "o-12")  # its subscriptions ended with it


# ---------------------------------------------------------------------------------------- io mappings

def test_sub_process_input_mappings_are_local_and_its_outputs_reach_the_process(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    engine.deploy(em.SUB_MAPPINGS.replace(b'"test.reject"', b'"test.record"'), "ok.bpmn")
    key = engine.start("sub-mappings", tenant=TENANT, variables={"order": {"total": 10}})
    while engine.run_jobs():
        pass
    assert job("Inner").variables["doubled"] == 20  # visible inside the sub-process
    after = job("After").variables
    assert after["result"] == 21 and "doubled" not in after  # the output mapping, not the local variable
    assert completed(store, key)


def test_error_boundary_output_mappings_see_the_errors_variables(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    engine.deploy(em.SUB_MAPPINGS, "mappings.bpmn")
    key = engine.start("sub-mappings", tenant=TENANT, variables={"order": {"total": 10}})
    while engine.run_jobs():
        pass
    assert job("Handle").variables["reason"] == "rejected: policy"
    assert completed(store, key)


# ------------------------------------------------------------------------------------------- escalation

def test_escalations_are_caught_by_boundary_events_interrupting_or_not(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    engine.deploy(em.ESCALATION, "escalation.bpmn")
    key = engine.start("escalation", tenant=TENANT, variables={})
    while engine.run_jobs():
        pass
    assert sorted(j.element_id for j in models.JOBS) == ["Boss", "Inner", "Warn"]  # never "After"
    assert completed(store, key)


def test_parallel_multi_instance_stops_when_its_completion_condition_holds(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    xml = em.process("mi-until", (
        em.START + em.flow("f0", "StartEvent_1", "Each")
        + em.mi_service("Each", "f0", "f1", em.loop("=items", "item", "answers", "=recorded", sequential=True,
                                                    completion="=loopCounter &gt;= 2"))
        + em.flow("f1", "Each", "EndEvent_1") + em.end("EndEvent_1", "f1")))
    engine.deploy(xml, "until.bpmn")
    key = engine.start("mi-until", tenant=TENANT, variables={"items": [1, 2, 3, 4]})
    while engine.run_jobs():
        pass
    assert [j.variables["item"] for j in models.JOBS] == [1, 2]
    assert completed(store, key)


def test_a_completion_condition_outside_feel_is_refused_at_deploy(engine: EmbeddedEngine) -> None:
    xml = em.process("mi-bad", (
        em.START + em.flow("f0", "StartEvent_1", "Each")
        + em.mi_service("Each", "f0", "f1", em.loop("=items", "item", completion="=loopCounter &gt;&gt; 2"))
        + em.flow("f1", "Each", "EndEvent_1") + em.end("EndEvent_1", "f1")))
    with pytest.raises(BpmnRejected, match="Each: multi-instance completionCondition: unsupported FEEL"):
        engine.deploy(xml, "bad.bpmn")
