"""The built-in task types: worker functions that turn a BPMN service-task job into one command.

Each function reads its inputs from the job (a task header names a fixed value in the model; without the header
the job variable of the same name is used), issues one command through `send`, and returns the variables to merge
into the process. Missing or malformed inputs raise `BpmnError("invalid-job-input")` naming the input; a domain
refusal of the command becomes a BPMN error with the domain error's code (see processes/jobs.py). Both engines
(embedded and Zeebe) run these same functions. docs/processes.md ("Task types") documents each one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar
from uuid import UUID

from pydantic import ValidationError

from commands import mail_messages as mm
from commands import messages as m
from processes.jobs import BpmnError, CommandSender, Job, task_type

INVALID_INPUT = "invalid-job-input"
_MISSING = object()
C = TypeVar("C", bound=m.Command)


def _invalid(name: str, problem: str) -> BpmnError:
    return BpmnError(INVALID_INPUT, f"job input {name!r} {problem}", {"invalidInput": name})


def job_input(job: Job, name: str, default: Any = _MISSING) -> Any:
    """The header `name` if the task sets it, else the job variable `name`; refuses a missing required input."""
    if name in job.headers:
        return job.headers[name]
    if name in job.variables:
        return job.variables[name]
    if default is _MISSING:
        raise _invalid(name, f"is required by task type {job.type!r} (set a task header or a variable)")
    return default


def text_input(job: Job, name: str, default: Any = _MISSING) -> str:
    """A required (or defaulted) non-empty string input."""
    value = job_input(job, name, default)
    if not isinstance(value, str) or not value.strip():
        raise _invalid(name, f"must be a non-empty string, not {value!r}")
    return value.strip()


def object_input(job: Job, name: str, default: Any = _MISSING) -> dict[str, Any]:
    """An object input: a variable holding an object, or a header holding JSON object text."""
    value = job_input(job, name, default)
    if isinstance(value, str) and name in job.headers:
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise _invalid(name, f"header is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise _invalid(name, f"must be an object, not {type(value).__name__}")
    return value


def list_input(job: Job, name: str) -> list[str]:
    """A non-empty list of strings: a list variable, or a header of comma-separated values."""
    value = job_input(job, name)
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise _invalid(name, f"must be a non-empty list of strings, not {value!r}")
    return [v.strip() for v in value]


def case_id(job: Job) -> UUID:
    """The case the job acts on: the `caseId` variable (a uuid) every case process carries."""
    value = job.variables.get("caseId")
    if value is None:
        raise _invalid("caseId", f"is required by task type {job.type!r}: the process does not run for a case")
    try:
        return UUID(str(value))
    except ValueError as exc:
        raise _invalid("caseId", f"must be a uuid, not {value!r}") from exc


def build(command_type: type[C], inputs: Mapping[str, str], **fields: Any) -> C:
    """Build a command; a field the command refuses is reported as the job input it came from."""
    try:
        return command_type(**fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        field_name = str(error["loc"][0]) if error["loc"] else "?"
        raise _invalid(inputs.get(field_name, field_name), str(error["msg"])) from exc


@task_type("case.move-stage")
def move_stage(job: Job, send: CommandSender) -> dict[str, Any]:
    """Move the case to the stage named by `stage`."""
    stage = text_input(job, "stage")
    send(build(m.MoveCaseToStage, {"case_id": "caseId", "stage": "stage"}, case_id=case_id(job), stage=stage))
    return {"stage": stage}


@task_type("case.assign")
def assign(job: Job, send: CommandSender) -> dict[str, Any]:
    """Assign the case to `assignee` (a user id)."""
    assignee = text_input(job, "assignee")
    command = build(m.AssignCase, {"assignee": "assignee"}, case_id=case_id(job), assignee=assignee)
    send(command)
    return {"assignee": assignee}


@task_type("case.set-queue")
def set_queue(job: Job, send: CommandSender) -> dict[str, Any]:
    """Put the case in the queue `queue`; a `queue` variable set to null takes it out of any queue."""
    raw = job_input(job, "queue")
    queue = None if raw is None else text_input(job, "queue")
    send(build(m.QueueCase, {"queue": "queue"}, case_id=case_id(job), queue=queue))
    return {"queue": queue}


@task_type("case.update-data")
def update_data(job: Job, send: CommandSender) -> dict[str, Any]:
    """Merge-patch the case data with the object `data` (RFC 7396: null removes a field)."""
    patch = object_input(job, "data")
    send(build(m.UpdateCaseData, {"patch": "data"}, case_id=case_id(job), patch=patch))
    return {}


@task_type("case.close")
def close(job: Job, send: CommandSender) -> dict[str, Any]:
    """Close the case with `reason` and an optional `resolution` (one of the definition's statuses)."""
    reason = text_input(job, "reason")
    raw = job_input(job, "resolution", None)
    resolution = None if raw is None else text_input(job, "resolution")
    command = build(
        m.CloseCase, {"reason": "reason", "resolution": "resolution"},
        case_id=case_id(job), reason=reason, resolution=resolution,
    )
    send(command)
    return {"resolution": resolution}


@task_type("case.notify")
def notify(job: Job, send: CommandSender) -> dict[str, Any]:
    """Request the notification `workflow` (alias `template`) for `recipients` with the object `payload`."""
    given = [name for name in ("workflow", "template") if name in job.headers or name in job.variables]
    workflow = text_input(job, given[0] if given else "workflow")
    recipients = list_input(job, "recipients")
    payload = object_input(job, "payload", {})
    command = build(
        m.RequestNotification, {"workflow": "workflow", "recipients": "recipients", "payload": "payload"},
        case_id=case_id(job), workflow=workflow, recipients=recipients, payload=payload,
    )
    result = send(command)
    return {"notificationId": result.extra.get("notification_id")}


@task_type("record.save")
def save_record(job: Job, send: CommandSender) -> dict[str, Any]:
    """Create or replace the reference record `recordKey` of type `recordType` with the object `data`."""
    type_key = text_input(job, "recordType")
    key = text_input(job, "recordKey")
    data = object_input(job, "data")
    command = build(
        m.SaveRecord, {"type_key": "recordType", "key": "recordKey", "data": "data"},
        type_key=type_key, key=key, data=data,
    )
    result = send(command)
    return {"recordId": result.id}


@task_type("case.send-email")
def send_email(job: Job, send: CommandSender) -> dict[str, Any]:
    """Send an e-mail from the case's mailbox (docs/email.md): the definition's `template` (or `subject` and `body`)
    filled from the case, to `to` (a list, or comma-separated), or as a reply to the received message `replyTo`."""
    fields: dict[str, Any] = {"case_id": case_id(job), "purpose": "process"}
    for name in ("template", "subject", "body"):
        if job_input(job, name, None) is not None:
            fields[name] = text_input(job, name)
    if job_input(job, "to", None) is not None:
        fields["to"] = list_input(job, "to")
    if job_input(job, "replyTo", None) is not None:
        fields["reply_to"] = text_input(job, "replyTo")
    inputs = {"template": "template", "subject": "subject", "body": "body", "to": "to", "reply_to": "replyTo"}
    result = send(build(mm.ComposeEmail, inputs, **fields))
    return {"emailMessageId": result.extra.get("message_id")}


def task_id(job: Job) -> UUID:
    """The user task a job acts on: `taskId` (a uuid), else the open user task of this instance at `taskElement`."""
    given = [name for name in ("taskId", "taskElement") if name in job.headers or name in job.variables]
    if given[:1] == ["taskElement"]:
        from processes.saga_workers import open_task_id  # that module imports this one: resolve at call time

        return open_task_id(job, text_input(job, "taskElement"))
    raw = text_input(job, "taskId")
    try:
        return UUID(raw)
    except ValueError as exc:
        raise _invalid("taskId", f"must be a uuid, not {raw!r}") from exc


def int_input(job: Job, name: str) -> int:
    """A whole-number input: a number variable, or a header / string variable holding digits."""
    value = job_input(job, name)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _invalid(name, f"must be a whole number, not {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise _invalid(name, f"must be a whole number, not {value!r}") from None
    if not number.is_integer():
        raise _invalid(name, f"must be a whole number, not {value!r}")
    return int(number)


@task_type("task.set-priority")
def set_task_priority(job: Job, send: CommandSender) -> dict[str, Any]:
    """Set the priority (0-100) of a user task named by `taskId` or `taskElement` to `priority`."""
    task = task_id(job)
    priority = int_input(job, "priority")
    send(build(m.ChangeTaskPriority, {"priority": "priority"}, task_id=task, priority=priority))
    return {"taskPriority": priority}


@task_type("task.assign")
def assign_task(job: Job, send: CommandSender) -> dict[str, Any]:
    """Assign a user task named by `taskId` or `taskElement` to `assignee`; a null `assignee` variable unassigns it."""
    task = task_id(job)
    raw = job_input(job, "assignee")
    assignee = None if raw is None else text_input(job, "assignee")
    send(build(m.AssignTask, {"assignee": "assignee"}, task_id=task, assignee=assignee))
    return {"taskAssignee": assignee}


# task types of the shipped processes (onboarding saga, SLA escalation): registered on import
import processes.saga_workers  # noqa: E402, F401
