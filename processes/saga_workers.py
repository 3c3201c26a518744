"""Task types of the shipped processes beyond the built-in ones: the onboarding saga's steps and their undo.

Each step keeps its effect in reference records (record types `account-number` and `access-grant`, which the
demo defines), so every step and every compensation is a command, visible in history:

- `account.reserve-number`: reserve the case's account number (a record keyed by a number derived from the case
  id, so a retried job reserves the same one); returns `accountNumber`.
- `account.release-number`: compensation: remove that record.
- `access.provision`: open the company's portal access on the account (an `access-grant` record); returns
  `accessGrant`.
- `access.revoke`: compensation: remove the grant.
- `task.escalate`: SLA escalation: raise the priority of an open user task of this process instance.

Registered on import; processes/workers.py imports this module, so `known_task_types()` includes them.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from commands import messages as m
from processes.jobs import BpmnError, CommandSender, Job, task_type
from processes.workers import build, case_id, job_input, text_input

ACCOUNT_TYPE = "account-number"
ACCESS_TYPE = "access-grant"
_ACCOUNTS = uuid.UUID("0b7c6c52-52c4-4b8e-9a55-6a0c5d6f4e21")

# (instance key, tenant) -> {element id: task id} of the open user tasks; each running engine registers one
TaskLookup = Callable[[str, str], Mapping[str, uuid.UUID]]
_lookups: list[TaskLookup] = []
_lookups_guard = threading.Lock()


def register_task_lookup(lookup: TaskLookup) -> Callable[[], None]:
    """Let `task.escalate` find open user tasks through an engine; returns a function that unregisters it."""
    with _lookups_guard:
        _lookups.append(lookup)

    def unregister() -> None:
        with _lookups_guard:
            if lookup in _lookups:
                _lookups.remove(lookup)

    return unregister


def account_number(case: uuid.UUID) -> str:
    """The account number reserved for a case: stable, so a retried reservation reserves the same one."""
    digits = uuid.uuid5(_ACCOUNTS, str(case)).int % 10**10
    return f"acc-{digits:010d}"


@task_type("account.reserve-number")
def reserve_account_number(job: Job, send: CommandSender) -> dict[str, Any]:
    """Reserve the case's account number (record `account-number/<number>`)."""
    case = case_id(job)
    number = account_number(case)
    data = {"case_id": str(case), "status": "reserved"}
    send(build(m.SaveRecord, {}, type_key=ACCOUNT_TYPE, key=number, data=data))
    return {"accountNumber": number}


def _roll_back_record(job: Job, send: CommandSender, type_key: str, variable: str) -> dict[str, Any]:
    """Remove the record of type_key whose key the process variable `variable` holds, and clear the variable."""
    send(build(m.RemoveRecord, {"key": variable}, type_key=type_key, key=text_input(job, variable),
               reason=f"onboarding of case {case_id(job)} was rolled back"))
    return {variable: None}


@task_type("account.release-number")
def release_account_number(job: Job, send: CommandSender) -> dict[str, Any]:
    """Compensation: release the reserved account number (remove its record)."""
    return _roll_back_record(job, send, ACCOUNT_TYPE, "accountNumber")


@task_type("access.provision")
def provision_access(job: Job, send: CommandSender) -> dict[str, Any]:
    """Open the company's portal access on the reserved account (an `access-grant` record, role `role`)."""
    number = text_input(job, "accountNumber")
    company = text_input(job, "company_name")
    role = text_input(job, "role", "owner")
    data = {"account_number": number, "company": company, "role": role, "case_id": str(case_id(job))}
    send(build(m.SaveRecord, {"data": "company_name"}, type_key=ACCESS_TYPE, key=f"{number}-{role}", data=data))
    return {"accessGrant": f"{number}-{role}"}


@task_type("access.revoke")
def revoke_access(job: Job, send: CommandSender) -> dict[str, Any]:
    """Compensation: revoke the access grant (remove its record)."""
    return _roll_back_record(job, send, ACCESS_TYPE, "accessGrant")


@task_type("task.escalate")
def escalate_task(job: Job, send: CommandSender) -> dict[str, Any]:
    """Raise the priority of the open user task `taskElement` of this instance to `priority` (default 90)."""
    raw = job_input(job, "priority", "90")
    try:
        priority = int(raw)
    except (TypeError, ValueError) as exc:
        raise BpmnError("invalid-job-input", f"job input 'priority' must be a whole number, not {raw!r}",
                        {"invalidInput": "priority"}) from exc
    task_id = open_task_id(job, text_input(job, "taskElement"))
    send(build(m.ChangeTaskPriority, {"priority": "priority"}, task_id=task_id, priority=priority))
    return {"escalated": True}


def open_task_id(job: Job, element_id: str) -> uuid.UUID:
    """The task id of the open user task element_id in the job's instance (asked of the running engines)."""
    with _lookups_guard:
        lookups = list(_lookups)
    for lookup in lookups:
        found = lookup(job.process_instance_key, job.tenant).get(element_id)
        if found is not None:
            return uuid.UUID(str(found))
    raise BpmnError("no-open-task", f"no open user task {element_id!r} in this process instance",
                    {"invalidInput": "taskElement"})
