"""Operator commands on process instances (docs/processes.md, "Incidents and operations"): retry an incident,
cancel an instance, set its variables. Admins only (policies/commands.rego).

A person asks through the API; the engine holds the instance, works out what the decision changes in the running
workflow, and sends the command with that change as `step` (the events and delta a `RecordProcessStep` would
carry), under the person's name. So the decision and its effect are stored together, authorized as the person's.
The commands are not accepted by POST /api/commands: their `step` is the engine's to fill.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import Field

from commands.handlers import Outcome, handles
from commands.messages import Command, StepEventIn
from commands.unit_of_work import UnitOfWork
from domain.events import Context
from domain.process import ProcessInstance

MAX_VARIABLES = 100


class ProcessInstanceCommand(Command):
    """An operator's command on one process instance, with the engine's step that carries it out."""

    instance_id: UUID
    step: list[StepEventIn] = Field(min_length=1, max_length=20)


class RetryIncident(ProcessInstanceCommand):
    """Resolve an open incident by running again what failed (after fixing data: `step` may set variables)."""

    incident_id: str = Field(min_length=1, max_length=100)
    note: str = Field(default="", max_length=2000)


class CancelProcessInstance(ProcessInstanceCommand):
    """Cancel a running instance (naming an open incident, when cancelling resolves it); its open user tasks are
    cancelled and its open incidents end with it."""

    reason: str = Field(min_length=1, max_length=2000)
    incident_id: str | None = Field(default=None, min_length=1, max_length=100)


class SetProcessVariables(ProcessInstanceCommand):
    """Set variables of a running instance (values in `step`'s delta; the event names them)."""

    names: list[str] = Field(min_length=1, max_length=MAX_VARIABLES)


def _entries(step: list[StepEventIn]) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, e.payload) for e in step]


def _instance(cmd: ProcessInstanceCommand, uow: UnitOfWork) -> ProcessInstance:
    return uow.get(ProcessInstance, cmd.instance_id, f"process instance {cmd.instance_id}", cmd.expected_version)


@handles(RetryIncident)
def retry_incident(cmd: RetryIncident, ctx: Context, uow: UnitOfWork) -> Outcome:
    instance = _instance(cmd, uow)
    instance.resolve_incident(ctx, cmd.incident_id, cmd.note, _entries(cmd.step))
    return Outcome(instance.id)


@handles(CancelProcessInstance)
def cancel_process_instance(cmd: CancelProcessInstance, ctx: Context, uow: UnitOfWork) -> Outcome:
    instance = _instance(cmd, uow)
    instance.cancel_by_operator(ctx, cmd.reason, _entries(cmd.step), cmd.incident_id)
    return Outcome(instance.id)


@handles(SetProcessVariables)
def set_process_variables(cmd: SetProcessVariables, ctx: Context, uow: UnitOfWork) -> Outcome:
    instance = _instance(cmd, uow)
    instance.modify_variables(ctx, list(cmd.names), _entries(cmd.step))
    return Outcome(instance.id)


OPERATOR_COMMANDS: tuple[type[ProcessInstanceCommand], ...] = (RetryIncident, CancelProcessInstance,
                                                                SetProcessVariables)
