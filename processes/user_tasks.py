"""Reading a Zeebe user task into the `CreateTask` command the engine sends when it becomes ready."""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from SpiffWorkflow.task import Task

from commands.messages import CreateTask
from processes.feel import feel_clock
from processes.form_registry import FORM_KEY_PREFIX
from processes.form_registry import FORMS as DEPLOYED_FORMS
from processes.forms import embedded_forms, form_schema
from processes.instance import Instance
from processes.runtime import FeelScriptEngine, evaluate, local_scope, scoped

log = logging.getLogger("casestream.engine")
FORMS = Path(__file__).resolve().parent / "definitions" / "forms"
DEFAULT_PRIORITY = 50


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _groups(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if v not in (None, "")]
    if isinstance(value, str):
        return [g.strip() for g in value.split(",") if g.strip()]
    return []


def _form(instance: Instance, ext: dict[str, Any], headers: dict[str, Any], element_id: str) -> dict[str, Any] | None:
    schema = headers.get("formSchema")
    if schema:
        try:
            parsed = json.loads(schema)
        except ValueError as exc:
            raise ValueError(f"{element_id}: task header formSchema is not JSON: {exc}") from None
        return parsed if isinstance(parsed, dict) else None
    definition = ext.get("formDefinition", {})
    # Modeler writes an embedded form's id as `externalReference` for a Camunda user task (zeebe:userTask)
    key = definition.get("formKey") or definition.get("formId") or definition.get("externalReference")
    if not key:
        return None
    form_id = str(key).removeprefix(FORM_KEY_PREFIX)
    camunda = _camunda_form(instance, form_id, definition)
    if camunda is not None:
        return form_schema(camunda)  # checked at deploy: a form stored then refused now is a bug, said loudly
    path = FORMS / f"{form_id}.json"
    text = _form_file(path)
    if text is None:
        log.warning("%s: form %r has no file %s; the task is created without a form schema", element_id, key, path)
        return None
    loaded = orjson.loads(text)  # a fresh dict per task: the command may be changed on its way
    return loaded if isinstance(loaded, dict) else None


def _camunda_form(instance: Instance, form_id: str, binding: dict[str, Any]) -> dict[str, Any] | None:
    """The form-js form a user task names: embedded in its BPMN (`camunda-forms:bpmn:` or an external reference to
    an embedded form's id), else deployed (the version its binding picks: processes/form_registry.py)."""
    found = _embedded(instance.model.content_hash, instance.model.xml).get(form_id)  # read once per model
    if found is not None and isinstance(found[1], dict):
        return found[1]
    return DEPLOYED_FORMS.form(instance.tenant, instance.model.content_hash, form_id, binding)


@functools.lru_cache(maxsize=64)
def _embedded(content_hash: str, xml: bytes) -> dict[str, tuple[int | None, dict[str, Any] | str]]:
    """A model's embedded forms, read once per model (keyed by its hash; the bytes come along for the read)."""
    del content_hash
    return embedded_forms(xml)


@functools.lru_cache(maxsize=256)
def _form_file(path: Path) -> bytes | None:
    """A shipped form file's bytes (read once: every user task of a model repeats its form)."""
    return path.read_bytes() if path.is_file() else None


def _due(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        log.warning("user task dueDate %r is not an ISO-8601 date-time; ignored", value)
        return None


@dataclass(frozen=True)
class OpenUserTask:
    """An open user task of an instance: one per multi-instance item."""

    task_id: UUID
    element_id: str  # the BPMN element (a multi-instance's, for each of its items)
    variables: dict[str, Any]  # the task's own scope: a multi-instance item's inputElement and loopCounter


def open_user_task(instance: Instance, task_id: UUID, spiff_id: UUID, spec_name: str) -> OpenUserTask:
    """An announced user task (SpiffWorkflow task `spiff_id` of spec `spec_name`) as listed to callers."""
    task = instance.task(spiff_id)
    return OpenUserTask(task_id, instance.model.element_of(spec_name),
                        dict(local_scope(task)) if task is not None else {})


def user_task_command(instance: Instance, task: Task, task_id: UUID) -> CreateTask | None:
    """The CreateTask for a ready user task (None when the instance runs for no case: tasks belong to cases)."""
    if instance.case_id is None:
        log.info("process %s: user task %s has no case to live on (no caseId)", instance.key, task.task_spec.name)
        return None
    engine = task.workflow.top_workflow.script_engine
    clock = engine.clock if isinstance(engine, FeelScriptEngine) else (lambda: datetime.now(UTC))
    with feel_clock(clock):  # a due date =now() + duration(...) counts from the instance's clock, like its timers
        return _user_task_command(instance, task, task_id)


def _user_task_command(instance: Instance, task: Task, task_id: UUID) -> CreateTask:
    spec = task.task_spec
    element = instance.model.element_of(spec.name)  # a multi-instance's inner task: the element's id
    ext: dict[str, Any] = getattr(spec, "extensions", None) or instance.model.extensions.get(element, {})
    scope = scoped(instance.variables, task)  # a multi-instance's item and loopCounter are local to its task
    headers = {k: evaluate(v, scope) if isinstance(v, str) else v
               for k, v in ext.get("taskHeaders", {}).items()}
    variables = {**scope, **instance.inputs(element, scope)}
    assignment = ext.get("assignmentDefinition", {})
    assignee = _text(evaluate(assignment["assignee"], variables)) if assignment.get("assignee") else None
    groups = _groups(evaluate(assignment["candidateGroups"], variables)) if assignment.get("candidateGroups") else []
    schedule = ext.get("taskSchedule", {})
    due = _due(evaluate(schedule["dueDate"], variables)) if schedule.get("dueDate") else None
    priority_text = ext.get("priorityDefinition", {}).get("priority")
    priority = DEFAULT_PRIORITY
    if priority_text:
        value = evaluate(priority_text, variables)
        priority = min(max(int(value), 0), 100) if isinstance(value, (int, float, str)) and str(value).lstrip(
            "-").replace(".", "", 1).isdigit() else DEFAULT_PRIORITY
    description = getattr(spec, "documentation", None) or headers.get("description") or ""
    return CreateTask(
        case_id=UUID(instance.case_id), task_id=task_id, title=(getattr(spec, "bpmn_name", None) or element)[:200],
        description=str(description)[:20_000], form_schema=_form(instance, ext, headers, element), assignee=assignee,
        candidate_groups=groups[:20], due_at=due, priority=priority, process_instance_key=instance.key,
        element_id=element, command_id=f"create-task:{task_id}",
    )
