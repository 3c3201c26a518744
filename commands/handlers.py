"""One handler per command, all the same shape: load, call one domain method; the bus saves."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from commands import messages as m
from commands.mail_messages import ReceiveEmail
from commands.unit_of_work import UnitOfWork
from domain.aggregate import Aggregate
from domain.case import Case
from domain.definition import (
    DEPLOYED_PROCESSES,
    AutomationRule,
    CaseDefinition,
    DefinitionAccess,
    DefinitionSpec,
    Stage,
    definition_id,
)
from domain.document import DocumentLimits
from domain.errors import AlreadyExists, NotFound, VersionConflict
from domain.events import Context
from domain.mail_config import MailSettings
from domain.numbering import CaseNumberSequence, sequence_id
from domain.process import ProcessInstance
from domain.reference import Queue, Record, RecordType, queue_id, record_id, record_type_id
from domain.task import Task


@dataclass(frozen=True)
class Outcome:
    """Which aggregate a command changed."""

    aggregate_id: UUID
    extra: dict[str, Any] | None = None


C = TypeVar("C", bound=m.Command)
Handler = Callable[[Any, Context, UnitOfWork], Outcome]
HANDLERS: dict[type[m.Command], Handler] = {}


def handles(command_type: type[C]) -> Callable[[Callable[[C, Context, UnitOfWork], Outcome]], Handler]:
    def register(func: Callable[[C, Context, UnitOfWork], Outcome]) -> Handler:
        HANDLERS[command_type] = func
        return func

    return register


def _case(cmd: m.CaseCommand, uow: UnitOfWork) -> tuple[Case, DefinitionSpec]:
    case = uow.get(Case, cmd.case_id, f"case {cmd.case_id}", cmd.expected_version)
    definition = uow.get(
        CaseDefinition, definition_id(uow.tenant, case.definition_key), f"definition {case.definition_key!r}"
    )
    return case, definition.spec(case.definition_version)


def _spec(cmd: m.PublishCaseDefinition) -> DefinitionSpec:
    return DefinitionSpec(
        key=cmd.key, name=cmd.name, schema=cmd.schema_, ui_schema=cmd.ui_schema,
        stages=tuple(Stage(s.key, s.name or s.key, tuple(s.transitions)) for s in cmd.stages),
        statuses=tuple(cmd.statuses), queues=tuple(cmd.queues), card_fields=tuple(cmd.card_fields),
        number_prefix=cmd.number_prefix, lifecycle_process=cmd.lifecycle_process,
        stage_processes={stage: tuple(ids) for stage, ids in cmd.stage_processes.items()},
        automation=tuple(AutomationRule(r.on, r.action, r.value, r.when) for r in cmd.automation),
        access=DefinitionAccess.from_dict(cmd.access.model_dump() if cmd.access else None),
        documents=DocumentLimits.from_dict(cmd.documents.model_dump() if cmd.documents else None),
        mail=MailSettings.from_dict(cmd.mail.model_dump() if cmd.mail else None),
    )


def _check_version(aggregate: Aggregate, expected: int | None, what: str) -> None:
    if expected is not None and aggregate.version != expected:
        raise VersionConflict(f"{what} is at version {aggregate.version}, not the expected {expected}")


@handles(m.PublishCaseDefinition)
def publish_definition(cmd: m.PublishCaseDefinition, ctx: Context, uow: UnitOfWork) -> Outcome:
    spec = _spec(cmd)
    existing = uow.find(CaseDefinition, definition_id(ctx.tenant, cmd.key))
    if existing is None:
        _check_version(CaseDefinition(definition_id(ctx.tenant, cmd.key)), cmd.expected_version, "definition")
        created = uow.add(CaseDefinition.create(ctx, spec, DEPLOYED_PROCESSES.known() | deployed_process_ids(uow)))
        return Outcome(created.id, {"definition_version": 1})
    _check_version(existing, cmd.expected_version, f"definition {cmd.key!r}")
    existing.publish(ctx, spec, DEPLOYED_PROCESSES.known() | deployed_process_ids(uow))
    return Outcome(existing.id, {"definition_version": existing.latest_version})


@handles(m.OpenCase)
def open_case(cmd: m.OpenCase, ctx: Context, uow: UnitOfWork) -> Outcome:
    definition = uow.get(
        CaseDefinition, definition_id(ctx.tenant, cmd.definition_key), f"case definition {cmd.definition_key!r}"
    )
    seq_id = sequence_id(ctx.tenant, cmd.definition_key)
    # one event per case ever opened: load only the newest, which carries the whole state
    sequence = uow.find_latest(CaseNumberSequence, seq_id) or uow.add(CaseNumberSequence(seq_id))
    case = Case.open(
        ctx, definition.latest, definition.latest_version, sequence.last + 1, cmd.title, cmd.data
    )
    sequence.issue(ctx, case.id)
    uow.add(case)
    return Outcome(case.id, {"number": case.number})


@handles(m.UpdateCaseData)
def update_case_data(cmd: m.UpdateCaseData, ctx: Context, uow: UnitOfWork) -> Outcome:
    case, spec = _case(cmd, uow)
    case.update_data(ctx, spec, cmd.patch)
    return Outcome(case.id)


@handles(m.RetitleCase)
def retitle_case(cmd: m.RetitleCase, ctx: Context, uow: UnitOfWork) -> Outcome:
    case = uow.get(Case, cmd.case_id, f"case {cmd.case_id}", cmd.expected_version)
    case.retitle(ctx, cmd.title)
    return Outcome(case.id)


@handles(m.MoveCaseToStage)
def move_case_to_stage(cmd: m.MoveCaseToStage, ctx: Context, uow: UnitOfWork) -> Outcome:
    case, spec = _case(cmd, uow)
    case.move_to_stage(ctx, spec, cmd.stage)
    return Outcome(case.id)


@handles(m.AssignCase)
def assign_case(cmd: m.AssignCase, ctx: Context, uow: UnitOfWork) -> Outcome:
    case = uow.get(Case, cmd.case_id, f"case {cmd.case_id}", cmd.expected_version)
    case.assign(ctx, cmd.assignee)
    return Outcome(case.id)


@handles(m.UnassignCase)
def unassign_case(cmd: m.UnassignCase, ctx: Context, uow: UnitOfWork) -> Outcome:
    case = uow.get(Case, cmd.case_id, f"case {cmd.case_id}", cmd.expected_version)
    case.unassign(ctx)
    return Outcome(case.id)


@handles(m.QueueCase)
def queue_case(cmd: m.QueueCase, ctx: Context, uow: UnitOfWork) -> Outcome:
    case, spec = _case(cmd, uow)
    case.put_in_queue(ctx, spec, cmd.queue)
    return Outcome(case.id)


@handles(m.AddComment)
def add_comment(cmd: m.AddComment, ctx: Context, uow: UnitOfWork) -> Outcome:
    case = uow.get(Case, cmd.case_id, f"case {cmd.case_id}", cmd.expected_version)
    comment_id = case.add_comment(ctx, cmd.body, cmd.parent_id)
    return Outcome(case.id, {"comment_id": comment_id})


@handles(m.EditComment)
def edit_comment(cmd: m.EditComment, ctx: Context, uow: UnitOfWork) -> Outcome:
    case = uow.get(Case, cmd.case_id, f"case {cmd.case_id}", cmd.expected_version)
    case.edit_comment(ctx, cmd.comment_id, cmd.body)
    return Outcome(case.id)


@handles(m.DeleteComment)
def delete_comment(cmd: m.DeleteComment, ctx: Context, uow: UnitOfWork) -> Outcome:
    case = uow.get(Case, cmd.case_id, f"case {cmd.case_id}", cmd.expected_version)
    case.delete_comment(ctx, cmd.comment_id, cmd.reason)
    return Outcome(case.id)


@handles(m.CloseCase)
def close_case(cmd: m.CloseCase, ctx: Context, uow: UnitOfWork) -> Outcome:
    case, spec = _case(cmd, uow)
    case.close(ctx, spec, cmd.reason, cmd.resolution)
    return Outcome(case.id)


@handles(m.ReopenCase)
def reopen_case(cmd: m.ReopenCase, ctx: Context, uow: UnitOfWork) -> Outcome:
    case = uow.get(Case, cmd.case_id, f"case {cmd.case_id}", cmd.expected_version)
    case.reopen(ctx, cmd.reason)
    return Outcome(case.id)


@handles(m.ArchiveCase)
def archive_case(cmd: m.ArchiveCase, ctx: Context, uow: UnitOfWork) -> Outcome:
    case = uow.get(Case, cmd.case_id, f"case {cmd.case_id}", cmd.expected_version)
    case.archive(ctx, cmd.reason)
    return Outcome(case.id)


@handles(m.DefineQueue)
def define_queue(cmd: m.DefineQueue, ctx: Context, uow: UnitOfWork) -> Outcome:
    existing = uow.find(Queue, queue_id(ctx.tenant, cmd.key))
    if existing is None:
        return Outcome(uow.add(Queue.define(ctx, cmd.key, cmd.name, cmd.description)).id)
    _check_version(existing, cmd.expected_version, f"queue {cmd.key!r}")
    existing.redefine(ctx, cmd.name, cmd.description)
    return Outcome(existing.id)


@handles(m.DefineRecordType)
def define_record_type(cmd: m.DefineRecordType, ctx: Context, uow: UnitOfWork) -> Outcome:
    existing = uow.find(RecordType, record_type_id(ctx.tenant, cmd.key))
    if existing is None:
        return Outcome(uow.add(RecordType.define(ctx, cmd.key, cmd.name, cmd.schema_)).id)
    _check_version(existing, cmd.expected_version, f"record type {cmd.key!r}")
    existing.redefine(ctx, cmd.name, cmd.schema_)
    return Outcome(existing.id)


@handles(m.SaveRecord)
def save_record(cmd: m.SaveRecord, ctx: Context, uow: UnitOfWork) -> Outcome:
    record_type = uow.get(RecordType, record_type_id(ctx.tenant, cmd.type_key), f"record type {cmd.type_key!r}")
    rid = record_id(ctx.tenant, cmd.type_key, cmd.key)
    record = uow.find(Record, rid) or uow.add(Record(rid))
    _check_version(record, cmd.expected_version, f"record {cmd.key!r}")
    record.save(ctx, record_type, cmd.key, cmd.data)
    return Outcome(record.id)


@handles(m.RemoveRecord)
def remove_record(cmd: m.RemoveRecord, ctx: Context, uow: UnitOfWork) -> Outcome:
    record = uow.get(
        Record, record_id(ctx.tenant, cmd.type_key, cmd.key), f"record {cmd.type_key}/{cmd.key}",
        cmd.expected_version,
    )
    record.remove(ctx, cmd.reason)
    return Outcome(record.id)


@handles(m.RequestNotification)
def request_notification(cmd: m.RequestNotification, ctx: Context, uow: UnitOfWork) -> Outcome:
    case = uow.get(Case, cmd.case_id, f"case {cmd.case_id}", cmd.expected_version)
    notification_id = case.request_notification(ctx, cmd.workflow, cmd.recipients, cmd.payload)
    return Outcome(case.id, {"notification_id": notification_id})


def _task(cmd: m.TaskCommand, uow: UnitOfWork) -> Task:
    try:
        return uow.get(Task, cmd.task_id, f"task {cmd.task_id}", cmd.expected_version)
    except TypeError:  # the id names another kind of aggregate
        raise NotFound(f"task {cmd.task_id} not found") from None


@handles(m.CreateTask)
def create_task(cmd: m.CreateTask, ctx: Context, uow: UnitOfWork) -> Outcome:
    case = uow.get(Case, cmd.case_id, f"case {cmd.case_id}")
    task_id = cmd.task_id or uuid.uuid4()
    if uow.store.last_event_of(task_id) is not None:
        raise AlreadyExists(f"task {task_id} already exists")
    task = Task.create(
        ctx, task_id, case, title=cmd.title, description=cmd.description, form_schema=cmd.form_schema,
        assignee=cmd.assignee, candidate_groups=cmd.candidate_groups, due_at=cmd.due_at, priority=cmd.priority,
        process_instance_key=cmd.process_instance_key, element_id=cmd.element_id,
    )
    uow.add(task)
    return Outcome(task.id, {"case_id": str(case.id)})


@handles(m.ClaimTask)
def claim_task(cmd: m.ClaimTask, ctx: Context, uow: UnitOfWork) -> Outcome:
    task = _task(cmd, uow)
    task.claim(ctx)
    return Outcome(task.id)


@handles(m.UnclaimTask)
def unclaim_task(cmd: m.UnclaimTask, ctx: Context, uow: UnitOfWork) -> Outcome:
    task = _task(cmd, uow)
    task.unclaim(ctx)
    return Outcome(task.id)


@handles(m.CompleteTask)
def complete_task(cmd: m.CompleteTask, ctx: Context, uow: UnitOfWork) -> Outcome:
    task = _task(cmd, uow)
    task.complete(ctx, cmd.data)
    return Outcome(task.id)


@handles(m.CancelTask)
def cancel_task(cmd: m.CancelTask, ctx: Context, uow: UnitOfWork) -> Outcome:
    task = _task(cmd, uow)
    task.cancel(ctx, cmd.reason)
    return Outcome(task.id)


@handles(m.ChangeTaskPriority)
def change_task_priority(cmd: m.ChangeTaskPriority, ctx: Context, uow: UnitOfWork) -> Outcome:
    task = _task(cmd, uow)
    task.change_priority(ctx, cmd.priority)
    return Outcome(task.id)


@handles(m.AssignTask)
def assign_task(cmd: m.AssignTask, ctx: Context, uow: UnitOfWork) -> Outcome:
    task = _task(cmd, uow)
    task.assign(ctx, cmd.assignee)
    return Outcome(task.id)


@handles(m.RecordProcessStep)
def record_process_step(cmd: m.RecordProcessStep, ctx: Context, uow: UnitOfWork) -> Outcome:
    # the engine is an instance's only writer: no store read per step (a stale view fails on append and is retried)
    found = uow.find_single_writer(ProcessInstance, cmd.instance_id, new=cmd.expected_version == 0)
    instance = found or uow.add(ProcessInstance(cmd.instance_id))
    if not (instance.status and cmd.events[0].type == "ProcessStarted"):  # a second start: AlreadyExists below
        _check_version(instance, cmd.expected_version, f"process instance {cmd.instance_id}")
    instance.record_step(ctx, [(e.type, e.payload) for e in cmd.events])
    return Outcome(instance.id)


def handler_for(command: m.Command) -> Handler:
    handler = HANDLERS.get(type(command))
    if handler is None:
        raise NotFound(f"no handler for {type(command).__name__}")
    return handler


def contention_key(command: m.Command, tenant: str) -> str | None:
    """A key naming the hot aggregate a command competes for, if any (case openings share a number sequence)."""
    if isinstance(command, m.OpenCase | ReceiveEmail):  # a received e-mail may open a case of its mailbox
        return f"case-numbers:{tenant}:{command.definition_key}"
    return None


# the document commands' handlers register themselves here (they use `handles`, so they load after it)
import commands.document_handlers  # noqa: E402
import commands.mail_handlers  # noqa: E402
import commands.process_messages  # noqa: E402
import commands.process_operations  # noqa: E402
import commands.process_requests  # noqa: E402
import commands.process_signals  # noqa: E402, F401
from commands.process_deployment import deployed_process_ids  # noqa: E402
