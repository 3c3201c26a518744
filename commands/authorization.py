"""Command authorization: the policy request built from the state a command acts on, and the policy's decision.

The resource is loaded through the command's unit of work, so in a batch a missing read raises ReadNeeded like any
handler read, and the handler then reuses the aggregates loaded here. The request follows the policy contract
(commands/policy.py; docs/authorization.md): no ids in it, so identical requests can share a cached decision.

What does not exist in the tenant is not decided: the handler answers 404 as without a policy. What exists but lies
in a definition the subject may not read is answered 404 too (`Concealed`), so a confidential case does not reveal
that it exists; only a readable resource gets a 403 naming the reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from commands import mail_messages as mm
from commands import messages as m
from commands.handlers import Handler, Outcome
from commands.policy import Decision, Policy
from commands.process_deployment import DeployProcess
from commands.process_messages import CorrelateProcessMessage, PublishProcessMessage
from commands.process_operations import OPERATOR_COMMANDS
from commands.process_requests import RecordMessageUnmatched, RecordProcessOperationOutcome, RequestProcessOperation
from commands.process_signals import BroadcastSignal, RecordSignalDelivered
from commands.unit_of_work import UnitOfWork
from domain.case import Case
from domain.definition import CaseDefinition, definition_id
from domain.errors import Forbidden, NotFound
from domain.events import Context
from domain.task import Task

Resource = dict[str, Any]


class Concealed(NotFound):
    """A denied command on something the subject may not even read: answered as not found, the denial kept (the
    bus hands it to its denial listeners)."""

    def __init__(self, detail: str, denial: Forbidden) -> None:
        super().__init__(detail)
        self.denial = denial


class _Absent(Exception):
    """The command's target does not exist in the tenant: the handler's NotFound answers."""


def subject_of(ctx: Context) -> dict[str, Any]:
    """The policy's `subject`: who sends the command."""
    return {"user": ctx.actor, "tenant": ctx.tenant, "roles": list(ctx.roles), "groups": list(ctx.groups)}


def _find(uow: UnitOfWork, cls: type[Case] | type[Task] | type[CaseDefinition], aggregate_id: UUID) -> Any:
    try:
        return uow.find(cls, aggregate_id)
    except TypeError:  # the id names another kind of aggregate: not one of these
        return None


def _access(definition: CaseDefinition | None) -> dict[str, Any]:
    """The access rules in force: the latest version's (a new version applies to every case at once)."""
    return definition.latest.access.to_dict() if definition is not None and definition.specs else {}


def case_resource(case: Case, uow: UnitOfWork) -> Resource:
    """A case as the policy sees it, with its definition's access rules."""
    definition = _find(uow, CaseDefinition, definition_id(uow.tenant, case.definition_key))
    return {
        "kind": "case", "definition_key": case.definition_key, "stage": case.stage, "status": case.status,
        "queue": case.queue, "assignee": case.assignee, "owner": case.owner, "access": _access(definition),
    }


def _case(uow: UnitOfWork, case_id: UUID) -> Resource:
    case = _find(uow, Case, case_id)
    if case is None or not case.number:
        raise _Absent
    return case_resource(case, uow)


def _case_command(command: m.Command, uow: UnitOfWork) -> Resource:
    assert isinstance(command, m.CaseCommand | m.CreateTask)
    resource = _case(uow, command.case_id)
    if isinstance(command, m.MoveCaseToStage):
        resource["target_stage"] = command.stage
    elif isinstance(command, m.AssignCase):
        resource["new_assignee"] = command.assignee
    return resource


def _task_command(command: m.Command, uow: UnitOfWork) -> Resource:
    assert isinstance(command, m.TaskCommand)
    task = _find(uow, Task, command.task_id)
    if task is None or not task.status:
        raise _Absent
    try:
        case = _case(uow, UUID(task.case_id))
    except _Absent:  # a task outlives no case; should its case be unreadable, the task is not there either
        raise NotFound(_not_found(command)) from None
    return {
        "kind": "task", "status": task.status, "assignee": task.assignee, "claimed_by": task.claimed_by,
        "candidate_groups": list(task.candidate_groups), "case": case,
    }


def _definition_command(command: m.Command, uow: UnitOfWork) -> Resource:
    assert isinstance(command, m.OpenCase | m.PublishCaseDefinition)
    key = command.definition_key if isinstance(command, m.OpenCase) else command.key
    definition = _find(uow, CaseDefinition, definition_id(uow.tenant, key))
    if definition is None and isinstance(command, m.OpenCase):
        raise _Absent
    return {"kind": "definition", "definition_key": key, "exists": definition is not None,
            "access": _access(definition)}


def _mailbox_command(command: m.Command, uow: UnitOfWork) -> Resource:
    """A received e-mail acts on the mailbox's definition (it may open a case of it)."""
    assert isinstance(command, mm.ReceiveEmail)
    definition = _find(uow, CaseDefinition, definition_id(uow.tenant, command.definition_key))
    if definition is None:
        raise _Absent
    return {"kind": "definition", "definition_key": command.definition_key, "exists": True,
            "access": _access(definition)}


def _record_type_command(command: m.Command, _uow: UnitOfWork) -> Resource:
    assert isinstance(command, m.DefineRecordType | m.SaveRecord | m.RemoveRecord)
    return {"kind": "record_type", "type_key": command.key if isinstance(command, m.DefineRecordType)
            else command.type_key}


def _fixed(kind: str) -> Callable[[m.Command, UnitOfWork], Resource]:
    def resource(_command: m.Command, _uow: UnitOfWork) -> Resource:
        return {"kind": kind}

    return resource


RESOURCES: dict[type[m.Command], Callable[[m.Command, UnitOfWork], Resource]] = {
    **{t: _case_command for t in (
        m.UpdateCaseData, m.RetitleCase, m.MoveCaseToStage, m.AssignCase, m.UnassignCase, m.QueueCase, m.AddComment,
        m.EditComment, m.DeleteComment, m.CloseCase, m.ReopenCase, m.ArchiveCase, m.RequestNotification,
        m.CreateTask, m.RequestDocumentUpload, m.ConfirmDocumentUpload, m.RenameDocument, m.RemoveDocument,
        m.PlaceLegalHold, m.ReleaseLegalHold, mm.ComposeEmail, m.RecordDocumentScan, m.RecordDocumentPreview,
    )},
    **{t: _task_command for t in (
        m.ClaimTask, m.UnclaimTask, m.CompleteTask, m.CancelTask, m.ChangeTaskPriority, m.AssignTask,
    )},
    m.OpenCase: _definition_command,
    m.PublishCaseDefinition: _definition_command,
    m.DefineQueue: _fixed("queue"),
    m.DefineRecordType: _record_type_command,
    m.SaveRecord: _record_type_command,
    m.RemoveRecord: _record_type_command,
    m.RecordProcessStep: _fixed("process"),
    DeployProcess: _fixed("process_definition"),
    PublishProcessMessage: _fixed("process_message"),
    CorrelateProcessMessage: _fixed("process_message"),
    **{t: _fixed("process_instance") for t in OPERATOR_COMMANDS},
    RequestProcessOperation: _fixed("process_instance"),
    RecordProcessOperationOutcome: _fixed("process_operation"),
    RecordMessageUnmatched: _fixed("process_message"),
    BroadcastSignal: _fixed("process_signal"),
    RecordSignalDelivered: _fixed("process_signal"),
    mm.ReceiveEmail: _mailbox_command,
    mm.SetEmailAside: _fixed("mailbox"),
    mm.RecordEmailSent: _fixed("mailbox"),
    mm.RecordEmailFailed: _fixed("mailbox"),
}


def request_of(command: m.Command, ctx: Context, uow: UnitOfWork) -> dict[str, Any] | None:
    """The policy request for command, its resource loaded through uow; None when its target does not exist.

    A command type without a known resource is decided on {"kind": <its name>}: the policy denies it by default.
    """
    build = RESOURCES.get(type(command))
    try:
        resource = build(command, uow) if build is not None else {"kind": type(command).__name__}
    except _Absent:
        return None
    return {"subject": subject_of(ctx), "action": type(command).__name__, "resource": resource}


def _not_found(command: m.Command) -> str:
    """The detail the handler gives when the command's target is missing (a concealed one must read the same)."""
    if isinstance(command, m.TaskCommand):
        return f"task {command.task_id} not found"
    if isinstance(command, m.CaseCommand | m.CreateTask):
        return f"case {command.case_id} not found"
    if isinstance(command, m.OpenCase | mm.ReceiveEmail):
        return f"case definition {command.definition_key!r} not found"
    if isinstance(command, m.PublishCaseDefinition):
        return f"case definition {command.key!r} not found"
    return f"{type(command).__name__} target not found"


def _readable(policy: Policy, request: dict[str, Any]) -> bool:
    """Whether the subject may read the definition the request's resource belongs to (True when none does)."""
    resource = request["resource"]
    governed = resource.get("case") if resource["kind"] == "task" else resource
    if not isinstance(governed, dict) or "definition_key" not in governed:
        return True
    if resource["kind"] == "definition" and not resource.get("exists", True):
        return True
    read = {"subject": request["subject"], "action": "read", "resource": {
        "kind": "definition", "definition_key": governed["definition_key"], "access": governed["access"],
    }}
    return policy.decide(read).allow


class Authorized:
    """A handler that runs only once the policy allows its command (one instance per prepared command: it keeps
    the last decision, so a batch's later rounds do not ask again for an unchanged request)."""

    __slots__ = ("_decided", "handler", "policy")

    def __init__(self, policy: Policy, handler: Handler) -> None:
        self.policy = policy
        self.handler = handler
        self._decided: tuple[dict[str, Any], Decision] | None = None

    def __call__(self, command: m.Command, ctx: Context, uow: UnitOfWork) -> Outcome:
        request = request_of(command, ctx, uow)
        if request is not None:
            self.check(command, request)
        return self.handler(command, ctx, uow)

    def check(self, command: m.Command, request: dict[str, Any]) -> None:
        """Raise Forbidden (or Concealed) unless the policy allows request."""
        if self._decided is not None and self._decided[0] == request:
            decision = self._decided[1]
        else:
            decision = self.policy.decide(request)
            self._decided = (request, decision)
        if decision.allow:
            return
        action = request["action"]
        reasons = tuple(decision.reasons) or (f"no rule allows {action}",)
        denial = Forbidden(f"{action} is not allowed: {'; '.join(reasons)}", reasons)
        if not _readable(self.policy, request):
            raise Concealed(_not_found(command), denial)
        raise denial
