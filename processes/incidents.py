"""Incidents of the embedded engine: what raises one, and what an instance with open incidents may not re-run.

An incident is an `IncidentRaised` event on the process instance (domain/process.py). The engine keeps the open
ones of a loaded instance in `instance.extra["incidents"]` (folded from the events at a restore, never saved as a
delta), so a restart knows them without re-running what failed. See docs/processes.md, "Incidents".
"""

from __future__ import annotations

import uuid
from typing import Any

from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from domain.process import INCIDENTS
from processes.instance import Instance

Entry = tuple[str, dict[str, Any]]
# tasks that can still move an instance on: a ready user task, a started job, a waiting event or join
ALIVE = TaskState.READY | TaskState.STARTED | TaskState.WAITING


def open_incidents(instance: Instance) -> dict[str, dict[str, Any]]:
    """Open incident id -> {kind, ref, element_id} of a loaded instance."""
    found: dict[str, dict[str, Any]] = instance.extra.setdefault(INCIDENTS, {})
    return found


def raise_incident(instance: Instance, kind: str, element_id: str, message: str, *, ref: str = "",
                   job_type: str = "") -> Entry:
    """The `IncidentRaised` entry of a step, noted as open on the loaded instance."""
    incident_id = str(uuid.uuid4())
    open_incidents(instance)[incident_id] = {"kind": kind, "ref": ref, "element_id": element_id}
    return ("IncidentRaised", {"incident_id": incident_id, "kind": kind, "element_id": element_id,
                               "message": message[:2000], "ref": ref, "job_type": job_type,
                               "process_id": instance.model.process_id})


def _culprit(instance: Instance, exc: Exception) -> Task | None:
    """The task an engine exception came from: named by the exception, else the one its spec names."""
    task = getattr(exc, "task", None)
    if isinstance(task, Task):
        return task
    spec = getattr(exc, "task_spec", None)
    if spec is None:
        return None
    candidates = [t for t in instance.all_tasks(TaskState.READY | TaskState.STARTED | TaskState.ERROR)
                  if t.task_spec is spec]
    return candidates[0] if candidates else None


def element_failed(instance: Instance, exc: Exception) -> Entry:
    """An element failed while the engine ran (an exclusive gateway where no flow matches and there is no default,
    a gateway with no outgoing flow, an expression that cannot be evaluated): the element is parked in ERROR, so
    nothing re-runs it until an operator retries, and an incident names it."""
    task = _culprit(instance, exc)
    if task is None:
        return raise_incident(instance, "element", "", f"the process failed: {exc}")
    if task.state != TaskState.ERROR:
        task._set_state(TaskState.ERROR)
    element = str(task.task_spec.name)
    return raise_incident(instance, "element", element, f"{element}: {exc}".strip(), ref=str(task.id))


def unresolved_message(instance: Instance, task: Task, name: str, expression: str) -> Entry:
    """A message catch whose correlation key evaluates to nothing: no message can ever reach it."""
    element = str(task.task_spec.name)
    return raise_incident(instance, "message", element,
                          f"message {name!r} at {element}: its correlation key {expression or '(none)'} has no value",
                          ref=str(task.id))


def stuck(instance: Instance) -> Entry | None:
    """An unfinished instance with nothing left that could move it on (and no open incident saying why)."""
    if instance.completed or open_incidents(instance):
        return None
    joins: list[str] = []
    for task in instance.all_tasks(ALIVE):
        if task.state != TaskState.WAITING or not isinstance(task.task_spec, Join):
            return None
        joins.append(str(task.task_spec.name))  # a join waits for branches, and none of them is left
    if joins:
        return raise_incident(instance, "stuck", joins[0], f"the process instance can never go on: {joins[0]} "
                              "waits for branches that will never arrive")
    return raise_incident(instance, "stuck", "", "the process instance can never go on: no task is ready, "
                          "running or waiting, and it has not reached an end")

