"""The built-in task types, run through `run_job` against a real CommandBus on a SQLite event store."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import pytest

from adapters.event_store import RecorderEventStore
from commands import messages as m
from commands.bus import Actor, CommandBus
from domain.case import Case, CaseNotificationRequested
from domain.events import Event
from domain.reference import Record, RecordRemoved, record_id
from domain.task import Task
from processes.jobs import Completed, Failed, Job, Thrown, known_task_types, run_job
from projections.queries import case_timeline
from tests.flaky_store import LOST, FlakyStore
from tests.unit.conftest import TENANT, open_claim

_keys = itertools.count(1)


def job(type_: str, variables: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
        retries: int = 3, key: str | None = None) -> Job:
    return Job(
        key=key or f"job-{next(_keys)}", type=type_, process_instance_key="pi-1", element_id="task",
        tenant=TENANT, variables=dict(variables or {}), headers=dict(headers or {}), retries=retries,
        process_id="claim-lifecycle",
    )


def case_of(store: RecorderEventStore, case_id: str) -> Case:
    return Case.replay(UUID(case_id), store.events_of(UUID(case_id)))


@pytest.fixture
def case_id(bus: CommandBus, alice: Actor, claim: object) -> str:
    return open_claim(bus, alice).id


def test_every_documented_task_type_is_registered():
    assert {
        "case.move-stage", "case.assign", "case.set-queue", "case.update-data", "case.close", "case.notify",
        "record.save", "task.set-priority", "task.assign",
    } <= known_task_types()


def test_move_stage_moves_the_case_as_the_process(bus, store, case_id):
    outcome = run_job(job("case.move-stage", {"caseId": case_id, "stage": "review"}), bus)
    assert outcome == Completed({"stage": "review"})
    assert case_of(store, case_id).stage == "review"
    last = store.events_of(UUID(case_id))[-1]
    assert (last.meta.actor, last.meta.tenant, last.meta.correlation_id) == ("process:claim-lifecycle", TENANT, "pi-1")


def test_a_task_header_names_the_value_before_a_variable(bus, store, case_id):
    outcome = run_job(job("case.move-stage", {"caseId": case_id, "stage": "done"}, {"stage": "review"}), bus)
    assert outcome == Completed({"stage": "review"})
    assert case_of(store, case_id).stage == "review"


def test_a_refused_stage_move_is_a_bpmn_error_with_the_domain_code(bus, store, case_id):
    before = store.max_position()
    outcome = run_job(job("case.move-stage", {"caseId": case_id, "stage": "done"}), bus)
    assert isinstance(outcome, Thrown)
    assert outcome.code == "stage-transition-not-allowed"
    assert store.max_position() == before


@pytest.mark.parametrize(
    ("variables", "named"),
    [({"stage": "review"}, "caseId"), ({"caseId": "not-a-uuid", "stage": "review"}, "caseId"),
     ({"caseId": "CASE"}, "stage"), ({"caseId": "CASE", "stage": "  "}, "stage"),
     ({"caseId": "CASE", "stage": "x" * 41}, "stage")],
)
def test_missing_or_bad_inputs_are_bpmn_errors_naming_the_input(bus, store, case_id, variables, named):
    variables = {k: (case_id if v == "CASE" else v) for k, v in variables.items()}
    before = store.max_position()
    outcome = run_job(job("case.move-stage", variables), bus)
    assert isinstance(outcome, Thrown)
    assert (outcome.code, outcome.variables) == ("invalid-job-input", {"invalidInput": named})
    assert repr(named) in outcome.message
    assert store.max_position() == before


def test_an_unknown_case_is_a_not_found_bpmn_error(bus):
    outcome = run_job(job("case.assign", {"caseId": "00000000-0000-4000-8000-000000000001", "assignee": "carol"}), bus)
    assert isinstance(outcome, Thrown) and outcome.code == "not-found"


def test_assign_assigns_the_case(bus, store, case_id):
    assert run_job(job("case.assign", {"caseId": case_id}, {"assignee": "carol"}), bus) == Completed(
        {"assignee": "carol"}
    )
    assert case_of(store, case_id).assignee == "carol"


def test_set_queue_puts_the_case_in_a_queue_and_null_takes_it_out(bus, store, case_id):
    assert run_job(job("case.set-queue", {"caseId": case_id, "queue": "fraud"}), bus) == Completed({"queue": "fraud"})
    assert case_of(store, case_id).queue == "fraud"
    assert run_job(job("case.set-queue", {"caseId": case_id, "queue": None}), bus) == Completed({"queue": None})
    assert case_of(store, case_id).queue is None


def test_set_queue_to_a_queue_the_definition_lacks_is_refused(bus, case_id):
    outcome = run_job(job("case.set-queue", {"caseId": case_id}, {"queue": "nowhere"}), bus)
    assert isinstance(outcome, Thrown) and outcome.code == "unknown-queue"


def test_update_data_merges_a_variable_object_or_a_json_header(bus, store, case_id):
    assert run_job(job("case.update-data", {"caseId": case_id, "data": {"customer": "Smit"}}), bus) == Completed({})
    run_job(job("case.update-data", {"caseId": case_id}, {"data": '{"amount": 250}'}), bus)
    assert case_of(store, case_id).data == {"amount": 250, "customer": "Smit"}


def test_update_data_refuses_non_objects_and_data_the_schema_refuses(bus, store, case_id):
    for variables, headers in (({"data": [1]}, {}), ({}, {"data": "{not json"}), ({}, {})):
        outcome = run_job(job("case.update-data", {"caseId": case_id, **variables}, headers), bus)
        assert isinstance(outcome, Thrown) and outcome.variables == {"invalidInput": "data"}
    refused = run_job(job("case.update-data", {"caseId": case_id, "data": {"amount": -5}}), bus)
    assert isinstance(refused, Thrown) and refused.code == "validation-failed"
    assert case_of(store, case_id).data == {"amount": 100}


def test_close_closes_with_reason_and_resolution(bus, store, case_id):
    outcome = run_job(job("case.close", {"caseId": case_id, "reason": "paid out", "resolution": "approved"}), bus)
    assert outcome == Completed({"resolution": "approved"})
    assert case_of(store, case_id).status == "closed"
    again = run_job(job("case.close", {"caseId": case_id, "reason": "twice"}), bus)
    assert isinstance(again, Thrown) and again.code == "case-not-open"


def test_close_with_a_resolution_the_definition_lacks_is_refused(bus, store, case_id):
    outcome = run_job(job("case.close", {"caseId": case_id, "reason": "x", "resolution": "maybe"}), bus)
    assert isinstance(outcome, Thrown) and outcome.code == "validation-failed"
    assert case_of(store, case_id).status == "open"


def test_notify_records_a_notification_request_on_the_case(bus, store, runner, documents, case_id):
    outcome = run_job(
        job("case.notify", {"caseId": case_id, "payload": {"number": "CLAIM-000001"}},
            {"template": "claim-received", "recipients": "carol, bob"}),
        bus,
    )
    assert isinstance(outcome, Completed)
    event = store.events_of(UUID(case_id))[-1]
    assert isinstance(event, CaseNotificationRequested)
    assert (event.workflow, event.recipients, event.payload) == (
        "claim-received", ["carol", "bob"], {"number": "CLAIM-000001"}
    )
    assert outcome.variables == {"notificationId": event.notification_id}
    runner.catch_up()
    assert case_timeline(documents, TENANT, case_id)[-1]["summary"] == (
        "requested notification claim-received to carol, bob"
    )


@pytest.mark.parametrize(
    ("inputs", "named"),
    [({"recipients": ["carol"]}, "workflow"), ({"workflow": "w"}, "recipients"),
     ({"workflow": "w", "recipients": []}, "recipients"), ({"workflow": "w", "recipients": [1]}, "recipients"),
     ({"workflow": "w", "recipients": ["c"], "payload": "text"}, "payload")],
)
def test_notify_refuses_bad_inputs_naming_them(bus, case_id, inputs, named):
    outcome = run_job(job("case.notify", {"caseId": case_id, **inputs}), bus)
    assert isinstance(outcome, Thrown)
    assert (outcome.code, outcome.variables) == ("invalid-job-input", {"invalidInput": named})


def test_record_save_saves_a_reference_record(bus, store, alice):
    bus.dispatch(m.DefineRecordType(key="country", name="Country", schema={"type": "object"}), alice)
    outcome = run_job(
        job("record.save", {"data": {"iso": "FR"}}, {"recordType": "country", "recordKey": "fr"}), bus
    )
    rid = record_id(TENANT, "country", "fr")
    assert outcome == Completed({"recordId": str(rid)})
    record = Record.replay(rid, store.events_of(rid))
    assert (record.key, record.data) == ("fr", {"iso": "FR"})


def test_saga_compensations_remove_the_records_their_steps_saved(bus, store, alice, case_id):
    for key in ("account-number", "access-grant"):
        bus.dispatch(m.DefineRecordType(key=key, name=key, schema={"type": "object"}), alice)
    reserved = run_job(job("account.reserve-number", {"caseId": case_id}), bus)
    assert isinstance(reserved, Completed)
    number = reserved.variables["accountNumber"]
    granted = run_job(job("access.provision", {"caseId": case_id, "accountNumber": number, "company_name": "Acme"}),
                      bus)
    assert granted == Completed({"accessGrant": f"{number}-owner"})

    revoked = run_job(job("access.revoke", {"caseId": case_id, "accessGrant": f"{number}-owner"}), bus)
    released = run_job(job("account.release-number", {"caseId": case_id, "accountNumber": number}), bus)

    assert (revoked, released) == (Completed({"accessGrant": None}), Completed({"accountNumber": None}))
    for type_key, key in (("access-grant", f"{number}-owner"), ("account-number", number)):
        rid = record_id(TENANT, type_key, key)
        history = store.events_of(rid)
        assert Record.replay(rid, history).removed, type_key
        removal = history[-1]
        assert isinstance(removal, RecordRemoved)
        assert removal.reason == f"onboarding of case {case_id} was rolled back"


def test_record_save_of_an_unknown_record_type_is_refused(bus):
    outcome = run_job(job("record.save", {"recordType": "planet", "recordKey": "x", "data": {}}), bus)
    assert isinstance(outcome, Thrown) and outcome.code == "not-found"


def test_a_technical_failure_fails_the_job_and_the_retry_stores_the_command_once(store, case_id):
    flaky = CommandBus(FlakyStore(store, failures=1))
    the_job = job("case.assign", {"caseId": case_id, "assignee": "carol"}, retries=3, key="job-flaky")
    outcome = run_job(the_job, flaky)
    assert isinstance(outcome, Failed)
    assert outcome.retries == 2 and LOST in outcome.message
    assert case_of(store, case_id).assignee is None
    assert run_job(the_job, flaky) == Completed({"assignee": "carol"})
    after = store.max_position()
    # the engine may run a job again after its command was stored (a lost completion): nothing new is stored
    assert run_job(the_job, flaky) == Completed({"assignee": "carol"})
    assert store.max_position() == after
    assert case_of(store, case_id).version == 2


PROCESS = Actor("process:claim-lifecycle", TENANT, ("process",))


@pytest.fixture
def process_task(bus: CommandBus, case_id: str) -> str:
    """An open user task of process instance pi-1 at element Review (priority 50, for carol)."""
    created = bus.dispatch(m.CreateTask(
        case_id=case_id, title="Review", assignee="carol", process_instance_key="pi-1", element_id="Review",
    ), PROCESS)
    return created.id


def task_of(store: RecorderEventStore, task_id: str) -> Task:
    return Task.replay(UUID(task_id), store.events_of(UUID(task_id)))


def test_set_priority_changes_the_priority_of_the_named_task(bus, store, process_task):
    outcome = run_job(job("task.set-priority", {"taskId": process_task}, {"priority": "90"}), bus)
    assert outcome == Completed({"taskPriority": 90})
    assert task_of(store, process_task).priority == 90
    again = run_job(job("task.set-priority", {"taskId": process_task, "priority": 90}), bus)
    assert again == Completed({"taskPriority": 90})  # already so: done, not a BPMN error (nor an incident)


@pytest.mark.parametrize(
    ("inputs", "named"),
    [({"priority": 10}, "taskId"), ({"taskId": "nope", "priority": 10}, "taskId"),
     ({"taskId": "TASK"}, "priority"), ({"taskId": "TASK", "priority": "high"}, "priority"),
     ({"taskId": "TASK", "priority": 2.5}, "priority"), ({"taskId": "TASK", "priority": 101}, "priority")],
)
def test_set_priority_refuses_bad_inputs_naming_them(bus, store, process_task, inputs, named):
    inputs = {k: (process_task if v == "TASK" else v) for k, v in inputs.items()}
    outcome = run_job(job("task.set-priority", inputs), bus)
    assert isinstance(outcome, Thrown)
    assert (outcome.code, outcome.variables) == ("invalid-job-input", {"invalidInput": named})
    assert task_of(store, process_task).priority == 50


def test_task_assign_reassigns_and_a_null_assignee_unassigns(bus, store, process_task):
    assert run_job(job("task.assign", {"taskId": process_task, "assignee": "bob"}), bus) == Completed(
        {"taskAssignee": "bob"}
    )
    assert task_of(store, process_task).assignee == "bob"
    assert run_job(job("task.assign", {"taskId": process_task, "assignee": None}), bus) == Completed(
        {"taskAssignee": None}
    )
    assert task_of(store, process_task).assignee is None


def test_task_commands_on_an_unknown_task_are_not_found(bus):
    outcome = run_job(job("task.assign", {"taskId": "00000000-0000-4000-8000-000000000002", "assignee": "x"}), bus)
    assert isinstance(outcome, Thrown) and outcome.code == "not-found"


def test_task_element_finds_the_open_task_of_the_instance_through_the_engine(bus, store, process_task):
    from processes.saga_workers import register_task_lookup

    unregister = register_task_lookup(
        lambda instance, tenant: {"Review": UUID(process_task)} if (instance, tenant) == ("pi-1", TENANT) else {}
    )
    try:
        outcome = run_job(job("task.set-priority", {"taskElement": "Review", "priority": 75}), bus)
        missing = run_job(job("task.set-priority", {"taskElement": "Elsewhere", "priority": 75}), bus)
    finally:
        unregister()
    assert outcome == Completed({"taskPriority": 75})
    assert task_of(store, process_task).priority == 75
    assert isinstance(missing, Thrown) and missing.code == "no-open-task"


class ConflictingStore(FlakyStore):
    """The real store, except that every append loses an optimistic-concurrency race."""

    def append(self, events: Sequence[Event]) -> list[int]:
        from domain.errors import VersionConflict

        raise VersionConflict("another writer won")


def test_contention_that_outlasts_the_bus_retries_is_a_technical_failure_not_a_bpmn_error(store, case_id):
    stuck = CommandBus(ConflictingStore(store, failures=0))
    outcome = run_job(job("case.assign", {"caseId": case_id, "assignee": "carol"}, retries=3, key="job-hot"), stuck)
    assert isinstance(outcome, Failed) and outcome.retries == 2
    assert "VersionConflict" in outcome.message
