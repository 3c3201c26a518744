"""Task: a unit of work on one case, created by a process (a BPMN user task) or by a person (ad hoc).

Every task event names its case (`case_id`) and carries the task's title, so the case timeline shows it in
words, and, for process tasks, the process instance and BPMN element it came from so the process manager can
resume the process.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from domain.aggregate import Aggregate, applies
from domain.case import OPEN as CASE_OPEN
from domain.case import Case
from domain.errors import (
    CaseNotOpen,
    DomainError,
    FieldError,
    InvalidStateChange,
    NotFound,
    NothingToChange,
    NotPermitted,
    ValidationFailed,
)
from domain.events import Context, Event
from domain.schema import check_schema
from processes.form_conditions import submitted

OPEN, CLAIMED, COMPLETED, CANCELLED = "open", "claimed", "completed", "cancelled"
FINAL = frozenset({COMPLETED, CANCELLED})
MANAGER_ROLES = frozenset({"supervisor", "admin"})
PROCESS_ROLE = "process"
# who may create a task on behalf of a process (the engine's actor, or an administrator repairing one)
PROCESS_CREATOR_ROLES = frozenset({PROCESS_ROLE, "admin"})
MAX_TITLE = 200
MAX_TEXT = 20_000
MAX_GROUPS = 20
DEFAULT_PRIORITY = 50
# group names end up as `|name|` tokens in the inbox read model, so they may not hold `|` or whitespace
_GROUP = re.compile(r"^[^|\s]{1,100}$")


class TaskFinished(DomainError):
    """The task is completed or cancelled and accepts no further change."""

    code = "task-finished"
    status = 409


class TaskAlreadyClaimed(DomainError):
    """Someone else holds the task; they (or a supervisor) must unclaim it first."""

    code = "task-already-claimed"
    status = 409


class TaskCreated(Event):
    """A task was created on a case (case number and title copied so the inbox needs no other lookup)."""

    case_id: str
    case_number: str
    case_title: str
    title: str
    description: str
    form_schema: dict[str, Any] | None
    assignee: str | None
    candidate_groups: list[str]
    due_at: str | None
    priority: int
    process_instance_key: str | None
    element_id: str | None
    # the case's definition, so the inbox can be filtered by what a reader may see (docs/authorization.md);
    # "" in events stored before it was recorded
    definition_key: str = ""


class TaskClaimed(Event):
    """The actor took the task to work on it."""

    case_id: str
    title: str
    process_instance_key: str | None
    element_id: str | None


class TaskUnclaimed(Event):
    """The task was handed back (by its holder or a supervisor); `previous` held it."""

    case_id: str
    title: str
    previous: str
    process_instance_key: str | None
    element_id: str | None


class TaskCompleted(Event):
    """The task was completed with form data valid against its form schema."""

    case_id: str
    title: str
    data: dict[str, Any]
    process_instance_key: str | None
    element_id: str | None


class TaskCancelled(Event):
    """The task was cancelled (by a person, or by its process: a boundary event or a cancelled instance)."""

    case_id: str
    title: str
    reason: str
    process_instance_key: str | None
    element_id: str | None


class TaskPriorityChanged(Event):
    """The task's priority (0-100) changed, e.g. by an SLA escalation."""

    case_id: str
    title: str
    priority: int
    previous: int
    process_instance_key: str | None
    element_id: str | None


class TaskAssigned(Event):
    """The task was assigned to someone (None: its assignee removed); `released_claim` held it until then."""

    case_id: str
    title: str
    assignee: str | None
    previous: str | None
    released_claim: str | None
    process_instance_key: str | None
    element_id: str | None


def _text(value: str, field_name: str, limit: int, *, required: bool = True) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if required and not text:
        raise ValidationFailed(f"{field_name} must not be empty", [FieldError(field_name, "must not be empty")])
    if len(text) > limit:
        raise ValidationFailed(f"{field_name} is too long", [FieldError(field_name, f"at most {limit} characters")])
    return text


def _person(value: str | None, field_name: str) -> str | None:
    return None if value is None else _text(value, field_name, 200)


def _groups(groups: Sequence[str]) -> list[str]:
    if len(groups) > MAX_GROUPS:
        raise ValidationFailed("too many candidate groups", [FieldError("candidate_groups", f"at most {MAX_GROUPS}")])
    out: list[str] = []
    for i, group in enumerate(groups):
        name = group.strip() if isinstance(group, str) else ""
        if not _GROUP.match(name):
            problem = FieldError(f"candidate_groups[{i}]", "1-100 characters, no whitespace or '|'")
            raise ValidationFailed(f"candidate group {group!r} is not a valid name", [problem])
        if name not in out:
            out.append(name)
    return out


def _priority(priority: int) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 100:
        raise ValidationFailed("priority must be 0-100", [FieldError("priority", "an integer from 0 to 100")])
    return priority


def _due(due_at: datetime | None) -> str | None:
    if due_at is None:
        return None
    if due_at.tzinfo is None:
        raise ValidationFailed("due_at needs a time zone", [FieldError("due_at", "e.g. 2026-01-31T12:00:00Z")])
    # kept as ISO text in UTC, so that due dates sort as text in the read models
    try:
        utc = due_at.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is past the last representable moment once in UTC
        raise ValidationFailed("due_at is out of range", [FieldError("due_at", "must lie between the years 1 and "
                                                                               "9999 in UTC")]) from None
    return utc.isoformat()


class Task(Aggregate):
    """The task aggregate: who may claim and complete it, and that finished tasks stay finished."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.case_id = ""
        self.title = ""
        self.status = ""
        self.assignee: str | None = None
        self.candidate_groups: tuple[str, ...] = ()
        self.claimed_by: str | None = None
        self.form_schema: dict[str, Any] | None = None
        self.due_at: str | None = None
        self.priority = DEFAULT_PRIORITY
        self.created_by = ""
        self.process_instance_key: str | None = None
        self.element_id: str | None = None
        self.data: dict[str, Any] | None = None

    # -- commands -------------------------------------------------------------------------------

    @classmethod
    def create(
        cls, ctx: Context, task_id: UUID, case: Case, *, title: str, description: str = "",
        form_schema: dict[str, Any] | None = None, assignee: str | None = None,
        candidate_groups: Sequence[str] = (), due_at: datetime | None = None, priority: int = DEFAULT_PRIORITY,
        process_instance_key: str | None = None, element_id: str | None = None,
    ) -> Task:
        """A new task on an open case of the actor's tenant; process tasks need both process fields."""
        if case.tenant != ctx.tenant or not case.number:
            raise NotFound(f"case {case.id} not found")
        if case.status != CASE_OPEN:
            raise CaseNotOpen(f"case {case.number} is {case.status}: tasks are created on open cases only")
        if (process_instance_key is None) != (element_id is None):
            missing = "element_id" if element_id is None else "process_instance_key"
            raise ValidationFailed(
                "a process task names both its process instance and its element",
                [FieldError(missing, "required with the other process field")],
            )
        if process_instance_key is not None and not PROCESS_CREATOR_ROLES.intersection(ctx.roles):
            raise NotPermitted("process tasks are created by processes (role 'process') or an admin")
        fields: dict[str, Any] = {
            "title": _text(title, "title", MAX_TITLE),
            "description": _text(description, "description", MAX_TEXT, required=False),
            "assignee": _person(assignee, "assignee"),
            "candidate_groups": _groups(candidate_groups),
            "due_at": _due(due_at),
            "priority": _priority(priority),
        }
        if form_schema is not None:
            check_schema(form_schema, "form_schema")
        task = cls(task_id)
        task.record(
            ctx, TaskCreated, case_id=str(case.id), case_number=case.number, case_title=case.title,
            definition_key=case.definition_key, form_schema=form_schema, process_instance_key=process_instance_key,
            element_id=element_id, **fields,
        )
        return task

    def claim(self, ctx: Context) -> None:
        """Take the task: the assignee, a candidate group's member, or a supervisor may."""
        self._require_active()
        if self.claimed_by is not None:
            if self.claimed_by == ctx.actor:
                raise InvalidStateChange("you already hold this task")
            raise TaskAlreadyClaimed(f"the task is held by {self.claimed_by}")
        if not self.may_claim(ctx.actor, (*ctx.roles, *ctx.groups)):  # candidate groups: the actor's groups or roles
            raise NotPermitted(f"the task is for {self._audience()}; you may not claim it")
        self.record(ctx, TaskClaimed, **self._refs())

    def unclaim(self, ctx: Context) -> None:
        """Hand the task back: its holder or a supervisor may."""
        self._require_active()
        if self.claimed_by is None:
            raise InvalidStateChange("the task is not claimed")
        if self.claimed_by != ctx.actor and not MANAGER_ROLES.intersection(ctx.roles):
            raise NotPermitted(f"only {self.claimed_by} (who holds the task) or a supervisor may unclaim it")
        self.record(ctx, TaskUnclaimed, previous=self.claimed_by, **self._refs())

    def complete(self, ctx: Context, data: dict[str, Any]) -> None:
        """Finish the task with form data valid against its form schema (errors name `data.<path>`)."""
        self._require_active()
        holder = self.claimed_by or self.assignee
        if ctx.actor != holder and not MANAGER_ROLES.intersection(ctx.roles):
            if holder is None:
                raise NotPermitted("claim the task before completing it")
            raise NotPermitted(f"only {holder} (who holds the task) or a supervisor may complete it")
        if not isinstance(data, dict):
            raise ValidationFailed("data must be an object", [FieldError("data", "must be an object")])
        if self.form_schema is not None:  # a Camunda form's hidden fields are dropped and not required, as form-js
            data = submitted(self.form_schema, data, "data")
        self.record(ctx, TaskCompleted, data=data, **self._refs())

    def cancel(self, ctx: Context, reason: str) -> None:
        """Withdraw the task: its process, a supervisor, or (ad-hoc tasks) whoever created it."""
        self._require_active()
        if not self._may_manage(ctx):
            raise NotPermitted(self._manage_rule("cancel"))
        self.record(ctx, TaskCancelled, reason=_text(reason, "reason", 2000, required=False), **self._refs())

    def change_priority(self, ctx: Context, priority: int) -> None:
        self._require_active()
        if not self._may_manage(ctx):
            raise NotPermitted(self._manage_rule("re-prioritise"))
        priority = _priority(priority)
        if priority == self.priority:
            raise NothingToChange(f"the priority is already {priority}")
        self.record(ctx, TaskPriorityChanged, priority=priority, previous=self.priority, **self._refs())

    def assign(self, ctx: Context, assignee: str | None) -> None:
        """Name who the task is for (None removes the assignee); a claim held by someone else is released."""
        self._require_active()
        if not self._may_manage(ctx):
            raise NotPermitted(self._manage_rule("assign"))
        assignee = _person(assignee, "assignee")
        if assignee == self.assignee:
            raise NothingToChange(f"the task is already assigned to {assignee}" if assignee else "no assignee")
        # a new assignee takes over from whoever held the task; removing the assignee leaves the holder be
        released = self.claimed_by if assignee is not None and self.claimed_by not in (None, assignee) else None
        self.record(
            ctx, TaskAssigned, assignee=assignee, previous=self.assignee, released_claim=released, **self._refs()
        )

    # -- rules ----------------------------------------------------------------------------------

    def may_claim(self, actor: str, roles: Sequence[str]) -> bool:
        """The assignee, a member of a candidate group, a supervisor; anyone when the task names nobody."""
        if actor == self.assignee or MANAGER_ROLES.intersection(roles):
            return True
        if set(self.candidate_groups).intersection(roles):
            return True
        return self.assignee is None and not self.candidate_groups

    def _audience(self) -> str:
        parts = [self.assignee] if self.assignee else []
        parts += [f"group {g}" for g in self.candidate_groups]
        return " or ".join(parts) or "anyone"

    def _may_manage(self, ctx: Context) -> bool:
        if MANAGER_ROLES.intersection(ctx.roles) or PROCESS_ROLE in ctx.roles:
            return True
        return self.process_instance_key is None and ctx.actor == self.created_by

    def _manage_rule(self, verb: str) -> str:
        who = "its process or a supervisor" if self.process_instance_key else "its creator or a supervisor"
        return f"only {who} may {verb} this task"

    def _require_active(self) -> None:
        if not self.status:
            raise NotFound(f"task {self.id} not found")
        if self.status in FINAL:
            raise TaskFinished(f"the task is {self.status}")

    def _refs(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id, "title": self.title, "process_instance_key": self.process_instance_key,
            "element_id": self.element_id,
        }

    # -- appliers -------------------------------------------------------------------------------

    @applies(TaskCreated)
    def _created(self, e: TaskCreated) -> None:
        self.case_id, self.title, self.status = e.case_id, e.title, OPEN
        self.assignee, self.candidate_groups = e.assignee, tuple(e.candidate_groups)
        self.form_schema, self.due_at, self.priority = e.form_schema, e.due_at, e.priority
        self.process_instance_key, self.element_id = e.process_instance_key, e.element_id
        self.created_by = e.actor

    @applies(TaskClaimed)
    def _claimed(self, e: TaskClaimed) -> None:
        self.claimed_by, self.status = e.actor, CLAIMED

    @applies(TaskUnclaimed)
    def _unclaimed(self, _e: TaskUnclaimed) -> None:
        self.claimed_by, self.status = None, OPEN

    @applies(TaskCompleted)
    def _completed(self, e: TaskCompleted) -> None:
        self.status, self.data = COMPLETED, e.data

    @applies(TaskCancelled)
    def _cancelled(self, _e: TaskCancelled) -> None:
        self.status = CANCELLED

    @applies(TaskPriorityChanged)
    def _prioritised(self, e: TaskPriorityChanged) -> None:
        self.priority = e.priority

    @applies(TaskAssigned)
    def _assigned(self, e: TaskAssigned) -> None:
        self.assignee = e.assignee
        if e.released_claim is not None:
            self.claimed_by, self.status = None, OPEN
