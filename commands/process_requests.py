"""Requests to the process engine through the log (docs/processes.md, "Operations in the distributed mode").

`RequestProcessOperation` stores an operator's request (admins only, decided as theirs like the change itself);
the engine's side records what became of it with `RecordProcessOperationOutcome`, and what became of a published
message nothing waited for with `RecordMessageUnmatched` (both sent by the engine's own actor only).
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from commands.handlers import Outcome, handles
from commands.messages import Command
from commands.process_operations import MAX_VARIABLES
from commands.unit_of_work import UnitOfWork
from domain.errors import NotFound
from domain.events import Context
from domain.process_message import ProcessMessage
from domain.process_operation import ProcessOperation

Operation = Literal["retry-incident", "cancel-incident", "cancel-instance", "set-variables", "retry-job"]


class RequestProcessOperation(Command):
    """An operator's request for a change of a process instance, applied by the engine that holds it."""

    request_id: UUID
    operation: Operation
    instance_id: UUID
    incident_id: str | None = Field(default=None, min_length=1, max_length=100)
    element_id: str | None = Field(default=None, min_length=1, max_length=200)
    variables: dict[str, Any] = Field(default_factory=dict, max_length=MAX_VARIABLES)
    retries: int = Field(default=1, ge=1, le=100)
    note: str = Field(default="", max_length=2000)
    reason: str = Field(default="", max_length=2000)


class RecordProcessOperationOutcome(Command):
    """What became of a request (sent by the engine only): applied with `reply`, or refused with a problem."""

    request_id: UUID
    reply: dict[str, Any] | None = None
    status: int = Field(default=200, ge=200, le=599)
    code: str = Field(default="", max_length=100)
    detail: str = Field(default="", max_length=20_000)
    errors: list[dict[str, str]] = Field(default_factory=list, max_length=200)


class RecordMessageUnmatched(Command):
    """Nothing waited for a published message when the engine took it (sent by the engine only)."""

    message_key: UUID
    buffered: bool


@handles(RequestProcessOperation)
def request_process_operation(cmd: RequestProcessOperation, ctx: Context, uow: UnitOfWork) -> Outcome:
    request = uow.find(ProcessOperation, cmd.request_id) or uow.add(ProcessOperation(cmd.request_id))
    request.ask(ctx, operation=cmd.operation, instance_id=cmd.instance_id, incident_id=cmd.incident_id,
                element_id=cmd.element_id, variables=dict(cmd.variables), retries=cmd.retries, note=cmd.note,
                reason=cmd.reason)
    return Outcome(request.id)


@handles(RecordProcessOperationOutcome)
def record_process_operation_outcome(cmd: RecordProcessOperationOutcome, ctx: Context, uow: UnitOfWork) -> Outcome:
    request = uow.get(ProcessOperation, cmd.request_id, f"process operation {cmd.request_id}")
    if cmd.reply is not None:
        request.applied(ctx, cmd.reply)
    else:
        request.refused(ctx, status=cmd.status, code=cmd.code, detail=cmd.detail, errors=cmd.errors)
    return Outcome(request.id)


@handles(RecordMessageUnmatched)
def record_message_unmatched(cmd: RecordMessageUnmatched, ctx: Context, uow: UnitOfWork) -> Outcome:
    message = uow.find(ProcessMessage, cmd.message_key)
    if message is None:
        raise NotFound(f"process message {cmd.message_key} not found")
    message.unmatched(ctx, buffered=cmd.buffered)
    return Outcome(message.id)
