"""The embedded BPMN engine: jobs, gateways, user tasks, timers, messages, errors, retries, compensation, recovery."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.event_store import RecorderEventStore, sqlite_event_store
from commands.bus import Actor, CommandBus
from domain.errors import InvalidStateChange
from domain.process import (
    BpmnErrorThrown,
    CompensationStarted,
    IncidentRaised,
    JobFailed,
    MessageCorrelated,
    ProcessCompleted,
    ProcessStarted,
    TimerFired,
    process_instance_id,
)
from domain.task import Task, TaskCancelled, TaskCreated
from processes.bpmn import BpmnRejected
from processes.engine import EmbeddedEngine, ProcessNotDeployed
from processes.jobs import known_task_types
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
    models.FAILURES.clear()
    yield


def make_engine(bus: CommandBus, store: RecorderEventStore, clock: FakeClock) -> EmbeddedEngine:
    engine = EmbeddedEngine(bus, store, clock=clock, backoff_seconds=10, task_types=known_task_types())
    for xml in (models.SIMPLE, models.REVIEW, models.DEADLINE, models.WAIT_REPLY, models.CATCH_ERROR,
                models.one_task("failing", "test.fail"), models.one_task("flaky", "test.flaky"), models.SAGA):
        engine.deploy(xml, "test.bpmn")
    return engine


@pytest.fixture
def engine(bus: CommandBus, store: RecorderEventStore, clock: FakeClock) -> EmbeddedEngine:
    return make_engine(bus, store, clock)


def events(store: RecorderEventStore, key: str) -> list[Any]:
    return store.events_of(process_instance_id(TENANT, key))


def types(store: RecorderEventStore, key: str) -> list[str]:
    return [type(e).__name__ for e in events(store, key)]


def test_service_task_runs_as_a_job_with_mappings_and_the_gateway_takes_the_feel_branch(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    key = engine.start("simple", tenant=TENANT, variables={"amount": 1500})
    assert types(store, key) == ["ProcessStarted"]
    assert engine.run_jobs() == 1
    job = models.JOBS[0]
    assert job.variables["doubled"] == 3000 and job.headers == {"answer": "1500"}
    assert job.element_id == "Work" and job.process_instance_key == key
    stored = events(store, key)
    assert [type(e).__name__ for e in stored] == ["ProcessStarted", "ProcessAdvanced", "ProcessCompleted"]
    # only the output mapping's target reaches the process; the raw result does not
    assert stored[1].delta["vars"] == {"done": {"by": "Work"}}
    ended = {t["spec"] for t in stored[1].delta["w"][""]["tasks"].values() if t["state"] == 64}
    assert "EndBig" in ended and "EndSmall" not in ended
    assert engine.instance(key, TENANT) is None  # finished instances leave memory


def test_each_step_stores_only_the_tasks_it_changed(engine: EmbeddedEngine, store: RecorderEventStore) -> None:
    key = engine.start("simple", tenant=TENANT, variables={"amount": 5})
    engine.run_jobs()
    started, advanced, _ = events(store, key)
    first = set(started.delta["w"][""]["tasks"])
    second = set(advanced.delta["w"][""]["tasks"])
    assert len(second) < len(first) + len(second)  # not the whole tree again
    assert all(started.delta["w"][""]["tasks"][t]["state"] != advanced.delta["w"][""]["tasks"][t]["state"]
               for t in first & second)


def test_a_repeated_instance_key_starts_nothing_new(engine: EmbeddedEngine, store: RecorderEventStore) -> None:
    key = engine.start("simple", tenant=TENANT, variables={"amount": 1}, instance_key="k-1")
    again = engine.start("simple", tenant=TENANT, variables={"amount": 2}, instance_key="k-1")
    assert key == again == "k-1"
    assert types(store, key) == ["ProcessStarted"]


def test_a_key_finished_before_a_restart_starts_nothing_new(store: RecorderEventStore, clock: FakeClock) -> None:
    first = make_engine(CommandBus(store), store, clock)
    key = first.start("simple", tenant=TENANT, variables={"amount": 1}, instance_key="k-2")
    first.run_jobs()
    # a new process: no instance in memory and no kept aggregate, so the start's append collides and is retried
    again = make_engine(CommandBus(store), store, clock)
    assert again.start("simple", tenant=TENANT, variables={"amount": 2}, instance_key="k-2") == key
    assert types(store, key) == ["ProcessStarted", "ProcessAdvanced", "ProcessCompleted"]
    assert again.instance(key, TENANT) is None


def test_a_step_from_a_stale_engine_is_refused_and_nothing_is_overwritten(
    store: RecorderEventStore, clock: FakeClock
) -> None:
    stale = make_engine(CommandBus(store), store, clock)
    key = stale.start("simple", tenant=TENANT, variables={"amount": 1})
    other = make_engine(CommandBus(store), store, clock)
    assert other.recover() == [key]
    other.run_jobs()  # the other engine finishes the instance
    stale.run_jobs()  # its kept aggregate is behind the store: the append collides and the retry reads it
    assert types(store, key) == ["ProcessStarted", "ProcessAdvanced", "ProcessCompleted"]
    assert stale.instance(key, TENANT) is None  # it forgot the instance it could not save


def test_unknown_process_is_refused_by_name(engine: EmbeddedEngine) -> None:
    with pytest.raises(ProcessNotDeployed, match="'nope'"):
        engine.start("nope", tenant=TENANT, variables={})


def test_bpmn_error_is_caught_by_its_boundary_event(engine: EmbeddedEngine, store: RecorderEventStore) -> None:
    key = engine.start("catch-error", tenant=TENANT, variables={})
    engine.run_jobs()
    thrown = [e for e in events(store, key) if isinstance(e, BpmnErrorThrown)]
    assert [(e.element_id, e.code, e.caught_by) for e in thrown] == [("Call", "rejected", "OnRejected")]
    engine.run_jobs()  # the handler path's job
    assert [j.element_id for j in models.JOBS] == ["Call", "Handle"]
    assert models.JOBS[1].variables["why"] == "policy"
    assert types(store, key)[-1] == "ProcessCompleted"


def test_an_error_code_no_boundary_catches_raises_an_incident(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    key = engine.start("catch-error", tenant=TENANT, variables={"code": "other"})
    engine.run_jobs()
    stored = events(store, key)
    assert [type(e).__name__ for e in stored][-2:] == ["BpmnErrorThrown", "IncidentRaised"]
    assert stored[-2].caught_by is None and "'other'" in stored[-1].message
    assert engine.run_jobs() == 0  # an incident is not retried by itself


def test_technical_failures_back_off_then_end_in_an_incident(
    engine: EmbeddedEngine, store: RecorderEventStore, clock: FakeClock
) -> None:
    key = engine.start("failing", tenant=TENANT, variables={})
    engine.run_jobs()
    failed = [e for e in events(store, key) if isinstance(e, JobFailed)]
    assert [(e.retries_left, e.retry_at) for e in failed] == [(2, (NOW + timedelta(seconds=10)).isoformat())]
    assert engine.fire_due_timers(NOW + timedelta(seconds=9)) == 0
    assert engine.run_jobs() == 0
    engine.fire_due_timers(NOW + timedelta(seconds=10))
    engine.run_jobs()
    clock.now = NOW + timedelta(seconds=10)
    engine.fire_due_timers(NOW + timedelta(seconds=31))  # second back-off doubles: 20 s after the retry
    engine.run_jobs()
    stored = events(store, key)
    assert [e.retries_left for e in stored if isinstance(e, JobFailed)] == [2, 1, 0]
    assert isinstance(stored[-1], IncidentRaised) and "the backend is down" in stored[-1].message
    assert len(models.JOBS) == 3 and {j.key for j in models.JOBS} == {models.JOBS[0].key}


def test_a_flaky_job_succeeds_on_retry(engine: EmbeddedEngine, store: RecorderEventStore) -> None:
    key = engine.start("flaky", tenant=TENANT, variables={})
    for step in range(3):
        engine.fire_due_timers(NOW + timedelta(minutes=step))
        engine.run_jobs()
    assert types(store, key)[-2:] == ["ProcessAdvanced", "ProcessCompleted"]


def test_message_is_correlated_by_key(engine: EmbeddedEngine, store: RecorderEventStore) -> None:
    key = engine.start("wait-reply", tenant=TENANT, variables={"caseId": "c-1"})
    assert not engine.correlate_message(TENANT, "customer-replied", "c-2", {})
    assert not engine.correlate_message("globex", "customer-replied", "c-1", {})
    assert engine.correlate_message(TENANT, "customer-replied", "c-1", {"reply": "thanks"})
    correlated = [e for e in events(store, key) if isinstance(e, MessageCorrelated)]
    assert [(e.element_id, e.name, e.correlation_key) for e in correlated] == [("Reply", "customer-replied", "c-1")]
    engine.run_jobs()
    assert models.JOBS[0].variables["reply"] == "thanks"
    assert types(store, key)[-1] == "ProcessCompleted"


def test_compensation_undoes_completed_steps_newest_first(engine: EmbeddedEngine, store: RecorderEventStore) -> None:
    key = engine.start("saga", tenant=TENANT, variables={})
    while engine.run_jobs():
        pass
    assert [j.element_id for j in models.JOBS] == ["Reserve", "Provision", "Welcome", "Undo_Provision",
                                                   "Undo_Reserve"]
    stored = events(store, key)
    started = [e for e in stored if isinstance(e, CompensationStarted)]
    assert [(e.element_id, e.activities) for e in started] == [("Undo", ["Provision", "Reserve"])]
    assert isinstance(stored[-1], ProcessCompleted)


# ------------------------------------------------------------------------------ user tasks (real task commands)

@pytest.fixture
def case_id(bus: CommandBus, alice: Actor, claim: Any) -> str:
    return open_claim(bus, alice, amount=2500).id


def _task(store: RecorderEventStore, task_id: UUID) -> Task:
    return Task.replay(task_id, store.events_of(task_id))


def test_user_task_becomes_a_task_and_completing_it_finishes_the_branch(
    engine: EmbeddedEngine, store: RecorderEventStore, case_id: str, clock: FakeClock
) -> None:
    key = engine.start("review", tenant=TENANT, variables={"reviewer": "carol", "amount": 2500}, case_id=case_id)
    open_tasks = engine.user_task_ids(key, TENANT)
    assert list(open_tasks) == ["Review"]
    created = store.events_of(open_tasks["Review"])[0]
    assert isinstance(created, TaskCreated)
    assert (created.title, created.assignee, created.candidate_groups, created.priority) == (
        "Review the claim", "carol", ["claims", "senior"], 80)
    assert created.process_instance_key == key and created.element_id == "Review" and created.case_id == case_id
    assert created.form_schema == {"type": "object"}
    assert engine.complete_user_task(TENANT, open_tasks["Review"], {"approved": True})
    assert not engine.complete_user_task(TENANT, open_tasks["Review"], {})  # already done
    assert types(store, key)[-1] == "ProcessAdvanced"
    engine.fire_due_timers(NOW + timedelta(hours=1))
    engine.run_jobs()
    assert types(store, key)[-1] == "ProcessCompleted"
    assert [j.element_id for j in models.JOBS] == ["AfterWait"]


def test_sla_boundary_timer_escalates_without_cancelling_the_task(
    engine: EmbeddedEngine, store: RecorderEventStore, case_id: str
) -> None:
    key = engine.start("review", tenant=TENANT, variables={"reviewer": "carol", "amount": 10}, case_id=case_id)
    task_id = engine.user_task_ids(key, TENANT)["Review"]
    assert engine.next_timer() == NOW + timedelta(hours=1)
    engine.fire_due_timers(NOW + timedelta(hours=48, seconds=1))
    fired = [e.element_id for e in events(store, key) if isinstance(e, TimerFired)]
    assert sorted(fired) == ["Sla", "Wait"]
    engine.run_jobs()
    assert sorted(j.element_id for j in models.JOBS) == ["AfterWait", "Escalate"]
    assert engine.user_task_ids(key, TENANT) == {"Review": task_id}
    assert _task(store, task_id).status == "open"


def test_interrupting_timer_cancels_the_user_task(
    engine: EmbeddedEngine, store: RecorderEventStore, case_id: str
) -> None:
    key = engine.start("deadline", tenant=TENANT, variables={"limit": "P2D"}, case_id=case_id)
    task_id = engine.user_task_ids(key, TENANT)["Answer"]
    engine.fire_due_timers(NOW + timedelta(days=2))
    assert types(store, key)[-2:] == ["TimerFired", "ProcessCompleted"]
    assert isinstance(store.events_of(task_id)[-1], TaskCancelled)
    assert not engine.complete_user_task(TENANT, task_id, {})


def test_recover_after_restart_keeps_the_pending_timer_and_the_open_task(
    tmp_path: Path, case_id: str, store: RecorderEventStore, bus: CommandBus, clock: FakeClock
) -> None:
    first = make_engine(bus, store, clock)
    key = first.start("review", tenant=TENANT, variables={"reviewer": "carol", "amount": 10}, case_id=case_id)
    task_id = first.user_task_ids(key, TENANT)["Review"]
    del first  # the process stops; a new engine opens the same store file
    reopened = sqlite_event_store(tmp_path / "events.db")  # the file the `store` fixture writes
    try:
        second = make_engine(CommandBus(reopened), reopened, clock)
        assert second.recover() == [key]
        assert second.user_task_ids(key, TENANT) == {"Review": task_id}
        assert second.next_timer() == NOW + timedelta(hours=1)
        second.fire_due_timers(NOW + timedelta(hours=1))
        second.run_jobs()
        assert second.complete_user_task(TENANT, task_id, {"approved": True})
        assert [type(e).__name__ for e in reopened.events_of(process_instance_id(TENANT, key))][-1] == (
            "ProcessCompleted")
        assert second.recover() == []
    finally:
        reopened.close()


def test_a_finished_instance_refuses_further_steps(engine: EmbeddedEngine, bus: CommandBus,
                                                   store: RecorderEventStore) -> None:
    from commands.messages import RecordProcessStep, StepEventIn

    key = engine.start("simple", tenant=TENANT, variables={"amount": 1})
    engine.run_jobs()
    step = RecordProcessStep(instance_id=process_instance_id(TENANT, key),
                             events=[StepEventIn(type="ProcessAdvanced", payload={"cause": "x"})])
    with pytest.raises(InvalidStateChange, match="not running"):
        bus.dispatch(step, Actor("process:simple", TENANT, ("process",)))
    assert isinstance(events(store, key)[0], ProcessStarted)


@pytest.mark.parametrize("reserved", ["Start", "End"])
def test_an_element_id_the_engine_reserves_is_refused_by_name(engine: EmbeddedEngine, reserved: str) -> None:
    xml = models.SIMPLE.decode().replace('"Begin"', f'"{reserved}"')
    assert f'<bpmn:startEvent id="{reserved}">' in xml
    with pytest.raises(BpmnRejected, match=f"{reserved}.*reserved"):
        engine.deploy(xml.encode(), "reserved.bpmn")
