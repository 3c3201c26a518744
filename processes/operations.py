"""Operator actions on running instances of the embedded engine: retry an incident (or the failed job of an
element), cancel an instance, set its variables (docs/processes.md, "Incidents and operations").

Each runs under the engine's lock: the instance is changed in memory, then saved as the operator's command
(commands/process_operations.py) carrying the engine's step, under the operator's name, so the policy decides it
as theirs. A refused or failed command leaves nothing behind: the instance is dropped from memory and the next use
folds it from its events again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from SpiffWorkflow.util.task import TaskState

from commands.bus import Actor
from commands.messages import StepEventIn
from commands.outcomes import Result, stored_entry
from commands.process_operations import (
    CancelProcessInstance,
    ProcessInstanceCommand,
    RetryIncident,
    SetProcessVariables,
)
from domain.command_log import command_entry_id
from domain.errors import InvalidStateChange, NotFound
from domain.process import IncidentNotOpen, ProcessCancelled
from domain.process_operation import (
    CANCEL_INCIDENT,
    CANCEL_INSTANCE,
    RETRY_INCIDENT,
    RETRY_JOB,
    SET_VARIABLES,
    ProcessOperationRequested,
)
from processes.incidents import open_incidents
from processes.instance import Instance

if TYPE_CHECKING:
    from processes.engine import EmbeddedEngine

Step = list[tuple[str, dict[str, Any]]]
Change = Callable[[Instance], tuple[Step, Callable[[list[StepEventIn], int], ProcessInstanceCommand]]]
JOB_KINDS = ("job", "bpmn-error")


def _operate(engine: EmbeddedEngine, tenant: str, instance_id: UUID, actor: Actor, change: Change,
             command_id: str | None = None) -> Result:
    """Change a loaded instance, then save the change as the operator's command (under `command_id` when given);
    collect and run what follows."""
    effects: list[Callable[[], None]] = []
    with engine._lock:
        instance = engine._instance(instance_id, effects)
        if instance is None or instance.tenant != tenant:
            if engine.store.events_of(instance_id) and instance is None:
                raise InvalidStateChange(f"process instance {instance_id} is not running")
            raise NotFound(f"process instance {instance_id} not found")
        try:
            step, make = change(instance)
            prepared, step = engine._step_command(instance, step)
            command = make(prepared.events, instance.version)
            if command_id is not None:
                command = command.model_copy(update={"command_id": command_id})
            result = engine.bus.dispatch(command, actor, correlation_id=instance.key,
                                         causation_id=f"operator:{instance.key}")
        except Exception:
            engine._forget(instance)  # memory may be ahead of the store: the next use folds it again
            raise
        engine._committed(instance, step, result.version, effects)
    engine._run_effects(effects)
    return result


def retry_incident(engine: EmbeddedEngine, tenant: str, instance_id: UUID, incident_id: str, actor: Actor, *,
                   variables: Mapping[str, Any] | None = None, retries: int = 1, note: str = "",
                   command_id: str | None = None) -> Result:
    """Run again what an open incident stopped (a job gets `retries` new tries; a failed element, a message key
    or a stuck instance is evaluated again), with `variables` set first; a new failure raises a new incident."""

    def change(instance: Instance) -> tuple[Step, Callable[[list[StepEventIn], int], ProcessInstanceCommand]]:
        info = open_incidents(instance).pop(incident_id, None)
        if info is None:
            raise IncidentNotOpen(f"incident {incident_id} is not open on process instance {instance.key!r}")
        instance.variables.update(dict(variables or {}))
        kind, ref, element = info["kind"], info["ref"], info["element_id"]
        if kind in JOB_KINDS:
            instance.set_job(ref, {"retries": retries})  # offered to the workers once saved (_collect_effects)
        else:
            task = instance.task(UUID(ref)) if ref else None
            if task is not None and kind == "element" and task.state == TaskState.ERROR:
                task._set_state(TaskState.READY)
            elif task is not None and kind == "message":
                task.internal_data.pop("correlation_key", None)  # evaluated again by _advance
            engine._advance(instance)
        step: Step = [("ProcessAdvanced", {"cause": "incident-retried", "element_id": element or None})]

        def make(events: list[StepEventIn], version: int) -> ProcessInstanceCommand:
            return RetryIncident(instance_id=instance.id, incident_id=incident_id, note=note, step=events,
                                 expected_version=version)

        return step, make

    return _operate(engine, tenant, instance_id, actor, change, command_id)


def retry_job(engine: EmbeddedEngine, tenant: str, instance_id: UUID, element_id: str, actor: Actor, *,
              retries: int = 1, command_id: str | None = None) -> Result:
    """Retry the failed job of an element (the open job or uncaught-error incident there)."""
    with engine._lock:
        effects: list[Callable[[], None]] = []
        instance = engine._instance(instance_id, effects)
        found = None if instance is None or instance.tenant != tenant else next(
            (iid for iid, info in open_incidents(instance).items()
             if info["element_id"] == element_id and info["kind"] in JOB_KINDS), None)
    engine._run_effects(effects)
    if instance is None or instance.tenant != tenant:
        raise NotFound(f"process instance {instance_id} is not running")
    if found is None:
        raise IncidentNotOpen(f"no failed job waits for a retry at element {element_id!r}")
    return retry_incident(engine, tenant, instance_id, found, actor, retries=retries, command_id=command_id)


def cancel_instance(engine: EmbeddedEngine, tenant: str, instance_id: UUID, actor: Actor, reason: str, *,
                    incident_id: str | None = None, command_id: str | None = None) -> Result:
    """Cancel a running instance: its open user tasks are cancelled (with the reason) and its incidents end."""

    def change(instance: Instance) -> tuple[Step, Callable[[list[StepEventIn], int], ProcessInstanceCommand]]:
        if incident_id is not None and incident_id not in open_incidents(instance):
            raise IncidentNotOpen(f"incident {incident_id} is not open on process instance {instance.key!r}")
        instance.workflow.cancel()
        step: Step = [(ProcessCancelled.__name__, {"reason": reason})]

        def make(events: list[StepEventIn], version: int) -> ProcessInstanceCommand:
            return CancelProcessInstance(instance_id=instance.id, reason=reason, incident_id=incident_id,
                                         step=events, expected_version=version)

        return step, make

    return _operate(engine, tenant, instance_id, actor, change, command_id)


def set_variables(engine: EmbeddedEngine, tenant: str, instance_id: UUID, actor: Actor,
                  variables: Mapping[str, Any], *, command_id: str | None = None) -> Result:
    """Set variables of a running instance (what waits on them sees them at its next step)."""

    def change(instance: Instance) -> tuple[Step, Callable[[list[StepEventIn], int], ProcessInstanceCommand]]:
        instance.variables.update(dict(variables))
        step: Step = [("ProcessAdvanced", {"cause": "variables-set"})]

        def make(events: list[StepEventIn], version: int) -> ProcessInstanceCommand:
            return SetProcessVariables(instance_id=instance.id, names=sorted(variables), step=events,
                                       expected_version=version)

        return step, make

    return _operate(engine, tenant, instance_id, actor, change, command_id)


def apply_request(engine: EmbeddedEngine, request: ProcessOperationRequested) -> dict[str, Any]:
    """Apply an operator's stored request (domain/process_operation.py) as the operator, under a command id derived
    from the request, so a request applied before a crash is answered from the instance's events, not applied
    twice; the reply the change's command gives."""
    command_id = f"process-operation:{request.aggregate_id}"
    done = _applied_before(engine, request.tenant, command_id)
    if done is not None:
        return done
    actor = Actor(request.actor, request.tenant, tuple(request.roles), tuple(request.groups))
    iid, tenant, op = UUID(request.instance_id), request.tenant, request.operation
    if op == RETRY_INCIDENT:
        result = retry_incident(engine, tenant, iid, request.incident_id or "", actor, variables=request.variables,
                                retries=request.retries, note=request.note, command_id=command_id)
    elif op in (CANCEL_INCIDENT, CANCEL_INSTANCE):
        result = cancel_instance(engine, tenant, iid, actor, request.reason, incident_id=request.incident_id,
                                 command_id=command_id)
    elif op == SET_VARIABLES:
        result = set_variables(engine, tenant, iid, actor, request.variables, command_id=command_id)
    elif op == RETRY_JOB:
        result = retry_job(engine, tenant, iid, request.element_id or "", actor, retries=request.retries,
                           command_id=command_id)
    else:
        raise ValueError(f"unknown process operation {op!r}")
    return reply_of(result)


def reply_of(result: Result) -> dict[str, Any]:
    """A command's reply body, as the API gives it (api/routes_commands.reply_of)."""
    return {"id": result.id, "version": result.version, "position": result.position, **result.extra}


def _applied_before(engine: EmbeddedEngine, tenant: str, command_id: str) -> dict[str, Any] | None:
    """The reply of the change a command id already stored, from its command-log entry, as a repeat of the command
    would answer it (None when it stored none)."""
    entry_id = command_entry_id(tenant, command_id)
    entry = stored_entry(entry_id, engine.store.events_of(entry_id), tenant)
    if entry is None:
        return None
    result = entry.result
    return {"id": result["id"], "version": result["version"],
            "position": engine.store.position_of(entry_id, entry.version) or 0, **result["extra"]}
