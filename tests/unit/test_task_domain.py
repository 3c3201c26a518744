"""Task rules through the real bus: who may claim, unclaim, complete, cancel; forms; finished tasks stay finished."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from adapters.event_store import RecorderEventStore
from commands import messages as m
from commands.bus import Actor, CommandBus, Result
from domain.errors import AlreadyExists, CaseNotOpen, InvalidStateChange, NotFound, NotPermitted, ValidationFailed
from domain.task import (
    Task,
    TaskAlreadyClaimed,
    TaskAssigned,
    TaskCompleted,
    TaskCreated,
    TaskFinished,
)
from tests.unit.conftest import TENANT, make_ctx, open_claim

PROCESS = Actor("process:onboarding", TENANT, ("process",))
DAN = Actor("dan", TENANT, ("caseworker", "claims"))  # a member of the `claims` group
ERIN = Actor("erin", TENANT, ("viewer",))  # in no group a task names
FORM: dict[str, Any] = {
    "type": "object",
    "required": ["approved"],
    "properties": {
        "approved": {"type": "boolean"},
        "amount": {"type": "number", "minimum": 0},
        "note": {"type": "string", "maxLength": 20},
    },
    "additionalProperties": False,
}


def _task(store: RecorderEventStore, task_id: str) -> Task:
    return Task.replay(UUID(task_id), store.events_of(UUID(task_id)))


def _create(bus: CommandBus, actor: Actor, case_id: str, **fields: Any) -> Result:
    fields.setdefault("title", "Check the invoice")
    return bus.dispatch(m.CreateTask(case_id=UUID(case_id), **fields), actor)


@pytest.fixture
def case_id(claim: Result, bus: CommandBus, alice: Actor) -> str:
    return open_claim(bus, alice, title="Hail on the roof").id


def _refused(store: RecorderEventStore, bus: CommandBus, command: m.Command, actor: Actor, error: type) -> Any:
    """Dispatch command, expect error, and check that nothing was stored."""
    before = store.max_position()
    with pytest.raises(error) as caught:
        bus.dispatch(command, actor)
    assert store.max_position() == before
    return caught.value


# -- creating -------------------------------------------------------------------------------------------------------


def test_ad_hoc_task_copies_case_number_and_title(bus, store, alice, case_id):
    due = datetime(2026, 12, 1, 17, 0, tzinfo=timezone(timedelta(hours=2)))
    created = _create(bus, alice, case_id, candidate_groups=["claims"], due_at=due, priority=70)
    events = store.events_of(UUID(created.id))
    assert len(events) == 1 and isinstance(events[0], TaskCreated)
    event = events[0]
    assert (event.case_id, event.case_title, event.case_number) == (case_id, "Hail on the roof", "CLAIM-000001")
    assert event.due_at == "2026-12-01T15:00:00+00:00"  # kept in UTC
    assert (event.priority, event.candidate_groups, event.actor) == (70, ["claims"], "alice")
    assert event.process_instance_key is None and event.element_id is None
    assert created.extra == {"case_id": case_id}


def test_task_on_a_closed_case_is_refused(bus, store, alice, case_id):
    bus.dispatch(m.CloseCase(case_id=UUID(case_id), reason="paid"), alice)
    _refused(store, bus, m.CreateTask(case_id=UUID(case_id), title="Too late"), alice, CaseNotOpen)


def test_task_on_another_tenants_case_is_not_found(bus, store, mallory, case_id):
    _refused(store, bus, m.CreateTask(case_id=UUID(case_id), title="Sneaky"), mallory, NotFound)


def test_process_task_needs_the_process_role(bus, store, alice, case_id):
    command = m.CreateTask(case_id=UUID(case_id), title="Review", process_instance_key="pi-1", element_id="review")
    _refused(store, bus, command, alice, NotPermitted)
    created = bus.dispatch(command, PROCESS)
    event = store.events_of(UUID(created.id))[0]
    assert (event.process_instance_key, event.element_id) == ("pi-1", "review")


def test_process_task_names_both_process_fields(bus, store, case_id):
    command = m.CreateTask(case_id=UUID(case_id), title="Review", process_instance_key="pi-1")
    error = _refused(store, bus, command, PROCESS, ValidationFailed)
    assert [e.path for e in error.errors] == ["element_id"]


def test_given_task_id_is_used_once(bus, store, case_id):
    task_id = uuid.uuid5(uuid.NAMESPACE_URL, "pi-1/review/0")
    command = m.CreateTask(case_id=UUID(case_id), task_id=task_id, title="Review", process_instance_key="pi-1",
                           element_id="review")
    assert bus.dispatch(command, PROCESS).id == str(task_id)
    _refused(store, bus, command, PROCESS, AlreadyExists)


def test_invalid_form_schema_is_refused_naming_its_path(bus, store, alice, case_id):
    command = m.CreateTask(case_id=UUID(case_id), title="x", form_schema={"type": "object", "required": "yes"})
    error = _refused(store, bus, command, alice, ValidationFailed)
    assert [e.path for e in error.errors] == ["form_schema.required"]


def test_candidate_group_with_whitespace_is_refused_naming_it(bus, store, alice, case_id):
    command = m.CreateTask(case_id=UUID(case_id), title="x", candidate_groups=["claims", "team a"])
    error = _refused(store, bus, command, alice, ValidationFailed)
    assert [e.path for e in error.errors] == ["candidate_groups[1]"]


def test_due_date_without_time_zone_is_refused(bus, store, alice, case_id):
    command = m.CreateTask(case_id=UUID(case_id), title="x", due_at=datetime(2026, 12, 1, 9, 0))
    error = _refused(store, bus, command, alice, ValidationFailed)
    assert [e.path for e in error.errors] == ["due_at"]


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_due_date_that_overflows_in_utc_is_refused_naming_it(bus, store, alice, case_id, moment):
    command = m.CreateTask(case_id=UUID(case_id), title="x", due_at=datetime.fromisoformat(moment))
    error = _refused(store, bus, command, alice, ValidationFailed)
    assert [e.path for e in error.errors] == ["due_at"]


def test_priority_outside_0_to_100_is_refused_by_command_and_domain(case_id, store, bus, alice):
    with pytest.raises(ValidationError):
        m.CreateTask(case_id=UUID(case_id), title="x", priority=101)
    task = _task(store, _create(bus, alice, case_id).id)
    with pytest.raises(ValidationFailed) as err:
        task.change_priority(make_ctx("bob", roles=("supervisor",)), -1)
    assert [e.path for e in err.value.errors] == ["priority"]
    assert task.pending == []


# -- claiming -------------------------------------------------------------------------------------------------------


def test_assignee_group_member_and_supervisor_may_claim_others_may_not(bus, store, alice, bob, carol, case_id):
    for claimer in (carol, DAN, bob):
        task = _create(bus, alice, case_id, assignee="carol", candidate_groups=["claims"])
        bus.dispatch(m.ClaimTask(task_id=UUID(task.id)), claimer)
        assert _task(store, task.id).claimed_by == claimer.user
    task = _create(bus, alice, case_id, assignee="carol", candidate_groups=["claims"])
    error = _refused(store, bus, m.ClaimTask(task_id=UUID(task.id)), ERIN, NotPermitted)
    assert "carol or group claims" in error.detail
    _refused(store, bus, m.ClaimTask(task_id=UUID(task.id)), alice, NotPermitted)


def test_a_task_naming_nobody_may_be_claimed_by_anyone_in_the_tenant(bus, store, alice, case_id):
    task = _create(bus, alice, case_id)
    bus.dispatch(m.ClaimTask(task_id=UUID(task.id)), ERIN)
    assert _task(store, task.id).claimed_by == "erin"


def test_claimed_task_cannot_be_claimed_again(bus, store, alice, bob, case_id):
    task = _create(bus, alice, case_id)
    bus.dispatch(m.ClaimTask(task_id=UUID(task.id)), alice)
    _refused(store, bus, m.ClaimTask(task_id=UUID(task.id)), bob, TaskAlreadyClaimed)
    _refused(store, bus, m.ClaimTask(task_id=UUID(task.id)), alice, InvalidStateChange)


def test_only_the_holder_or_a_supervisor_may_unclaim(bus, store, alice, bob, carol, case_id):
    task = _create(bus, alice, case_id)
    _refused(store, bus, m.UnclaimTask(task_id=UUID(task.id)), alice, InvalidStateChange)  # not claimed
    bus.dispatch(m.ClaimTask(task_id=UUID(task.id)), carol)
    _refused(store, bus, m.UnclaimTask(task_id=UUID(task.id)), alice, NotPermitted)
    bus.dispatch(m.UnclaimTask(task_id=UUID(task.id)), carol)
    bus.dispatch(m.ClaimTask(task_id=UUID(task.id)), carol)
    bus.dispatch(m.UnclaimTask(task_id=UUID(task.id)), bob)
    state = _task(store, task.id)
    assert (state.status, state.claimed_by) == ("open", None)


# -- completing -----------------------------------------------------------------------------------------------------


def test_completing_with_valid_form_data_stores_it(bus, store, alice, case_id):
    task = _create(bus, alice, case_id, form_schema=FORM)
    bus.dispatch(m.ClaimTask(task_id=UUID(task.id)), alice)
    data = {"approved": True, "amount": 12.5}
    bus.dispatch(m.CompleteTask(task_id=UUID(task.id), data=data), alice)
    last = store.events_of(UUID(task.id))[-1]
    assert isinstance(last, TaskCompleted)
    assert (last.data, last.case_id) == (data, case_id)


def test_invalid_form_data_names_each_field_and_stores_nothing(bus, store, alice, case_id):
    task = _create(bus, alice, case_id, form_schema=FORM)
    bus.dispatch(m.ClaimTask(task_id=UUID(task.id)), alice)
    command = m.CompleteTask(task_id=UUID(task.id), data={"amount": -1, "note": "x" * 30})
    error = _refused(store, bus, command, alice, ValidationFailed)
    assert sorted(e.path for e in error.errors) == ["data.amount", "data.approved", "data.note"]


def test_only_the_holder_or_a_supervisor_may_complete(bus, store, alice, bob, carol, case_id):
    task = _create(bus, alice, case_id)
    error = _refused(store, bus, m.CompleteTask(task_id=UUID(task.id)), alice, NotPermitted)
    assert "claim the task" in error.detail
    bus.dispatch(m.ClaimTask(task_id=UUID(task.id)), carol)
    _refused(store, bus, m.CompleteTask(task_id=UUID(task.id)), alice, NotPermitted)
    bus.dispatch(m.CompleteTask(task_id=UUID(task.id)), bob)
    assert _task(store, task.id).status == "completed"


def test_the_assignee_may_complete_without_claiming(bus, store, alice, carol, case_id):
    task = _create(bus, alice, case_id, assignee="carol")
    bus.dispatch(m.CompleteTask(task_id=UUID(task.id), data={"done": 1}), carol)
    assert _task(store, task.id).data == {"done": 1}


@pytest.mark.parametrize("finish", ["complete", "cancel"])
def test_finished_tasks_refuse_every_change(bus, store, alice, bob, case_id, finish):
    task = _create(bus, alice, case_id, assignee="alice")
    tid = UUID(task.id)
    bus.dispatch(m.CompleteTask(task_id=tid) if finish == "complete" else m.CancelTask(task_id=tid), alice)
    for command in (
        m.ClaimTask(task_id=tid), m.UnclaimTask(task_id=tid), m.CompleteTask(task_id=tid), m.CancelTask(task_id=tid),
        m.ChangeTaskPriority(task_id=tid, priority=90), m.AssignTask(task_id=tid, assignee="carol"),
    ):
        _refused(store, bus, command, bob, TaskFinished)


# -- cancelling, priority, assignment -----------------------------------------------------------------------------


def test_ad_hoc_task_is_cancelled_by_its_creator_or_a_supervisor(bus, store, alice, bob, carol, case_id):
    task = _create(bus, alice, case_id)
    _refused(store, bus, m.CancelTask(task_id=UUID(task.id), reason="no"), carol, NotPermitted)
    bus.dispatch(m.CancelTask(task_id=UUID(task.id), reason="duplicate"), alice)
    other = _create(bus, alice, case_id)
    bus.dispatch(m.CancelTask(task_id=UUID(other.id)), bob)
    assert _task(store, other.id).status == "cancelled"


def test_process_task_is_cancelled_by_its_process_not_by_the_person_holding_it(bus, store, alice, case_id):
    task = bus.dispatch(m.CreateTask(case_id=UUID(case_id), title="Review", assignee="alice",
                                     process_instance_key="pi-9", element_id="review"), PROCESS)
    _refused(store, bus, m.CancelTask(task_id=UUID(task.id)), alice, NotPermitted)
    bus.dispatch(m.CancelTask(task_id=UUID(task.id), reason="boundary timer"), PROCESS)
    assert _task(store, task.id).status == "cancelled"


def test_priority_changes_keep_the_previous_value(bus, store, alice, carol, case_id):
    task = _create(bus, alice, case_id, priority=40)
    _refused(store, bus, m.ChangeTaskPriority(task_id=UUID(task.id), priority=90), carol, NotPermitted)
    _refused(store, bus, m.ChangeTaskPriority(task_id=UUID(task.id), priority=40), alice, InvalidStateChange)
    bus.dispatch(m.ChangeTaskPriority(task_id=UUID(task.id), priority=90), PROCESS)
    last = store.events_of(UUID(task.id))[-1]
    assert (last.priority, last.previous) == (90, 40)  # type: ignore[attr-defined]


def test_assigning_to_someone_else_releases_the_claim(bus, store, alice, bob, carol, case_id):
    task = _create(bus, alice, case_id)
    bus.dispatch(m.ClaimTask(task_id=UUID(task.id)), carol)
    bus.dispatch(m.AssignTask(task_id=UUID(task.id), assignee="alice"), bob)
    last = store.events_of(UUID(task.id))[-1]
    assert isinstance(last, TaskAssigned)
    assert (last.assignee, last.previous, last.released_claim) == ("alice", None, "carol")
    state = _task(store, task.id)
    assert (state.status, state.claimed_by, state.assignee) == ("open", None, "alice")
    bus.dispatch(m.ClaimTask(task_id=UUID(task.id)), alice)
    bus.dispatch(m.AssignTask(task_id=UUID(task.id), assignee=None), bob)  # removing the assignee keeps alice's claim
    state = _task(store, task.id)
    assert (state.status, state.claimed_by, state.assignee) == ("claimed", "alice", None)


def test_unknown_task_and_a_case_id_used_as_task_id_are_not_found(bus, store, alice, case_id):
    _refused(store, bus, m.ClaimTask(task_id=uuid.uuid4()), alice, NotFound)
    _refused(store, bus, m.ClaimTask(task_id=UUID(case_id)), alice, NotFound)


def test_replaying_a_tasks_events_gives_the_same_state(bus, store, alice, carol, case_id):
    task = _create(bus, alice, case_id, assignee="carol", form_schema=FORM, due_at=datetime.now(UTC))
    bus.dispatch(m.ClaimTask(task_id=UUID(task.id)), carol)
    bus.dispatch(m.CompleteTask(task_id=UUID(task.id), data={"approved": False}), carol)
    events = store.events_of(UUID(task.id))
    once, twice = Task.replay(UUID(task.id), events), Task.replay(UUID(task.id), [*events, *events])
    assert vars(once) == vars(twice)
    assert (once.status, once.version, once.data) == ("completed", 3, {"approved": False})
