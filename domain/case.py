"""Case: a record that follows its definition, moves through stages and is worked by people."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from domain.aggregate import Aggregate, applies
from domain.definition import NAMESPACE, DefinitionSpec
from domain.diff import apply_changes, diff, merge_patch
from domain.errors import (
    CaseNotOpen,
    CommentNotFound,
    FieldError,
    InvalidStateChange,
    NothingToChange,
    NotPermitted,
    StageTransitionNotAllowed,
    UnknownQueue,
    UnknownStage,
    ValidationFailed,
)
from domain.events import Context, Event, Upcaster
from domain.schema import validate

OPEN, CLOSED, ARCHIVED = "open", "closed", "archived"
MODERATOR_ROLES = frozenset({"supervisor", "admin"})
MAX_TITLE = 200
MAX_TEXT = 20_000
MAX_RECIPIENTS = 50


class CaseOpened(Event):
    """A case was opened with valid data, a number, and the definition version it follows."""

    definition_key: str
    definition_version: int
    number: str
    title: str
    data: dict[str, Any]
    stage: str


class CaseDataChanged(Event):
    """Case data changed; `changes` is the field-level diff (old and new value per path)."""

    changes: list[dict[str, Any]]


class CaseRetitled(Event):
    """The case's title changed."""

    title: str
    previous: str


class CaseMovedToStage(Event):
    """The case moved from one stage to another allowed by its definition."""

    from_stage: str
    to_stage: str


class CaseAssigned(Event):
    """The case was assigned to a user."""

    assignee: str
    previous: str | None


class CaseUnassigned(Event):
    """The case's assignee was removed."""

    previous: str


class CaseQueued(Event):
    """The case was placed in a queue (None: taken out of any queue)."""

    queue: str | None
    previous: str | None


def _comment_v1_to_v2(state: dict[str, Any]) -> dict[str, Any]:
    """Version 1 comments had no threads: every one was top-level."""
    return {**state, "parent_id": None}


class CommentAdded(Event):
    """A comment (or a reply, with parent_id) was added; author is the event's actor.

    Version 2 added threading (`parent_id`); version-1 payloads are upcast with parent_id None.
    """

    class_version: ClassVar[int] = 2
    upcasters: ClassVar[dict[int, Upcaster]] = {1: _comment_v1_to_v2}

    comment_id: str
    parent_id: str | None
    body: str


class CommentEdited(Event):
    """A comment's body changed; the previous body is kept in history."""

    comment_id: str
    body: str
    previous: str


class CommentDeleted(Event):
    """A comment was deleted (its history is kept; it is hidden from the thread)."""

    comment_id: str
    reason: str


class CaseClosed(Event):
    """The case was closed with a reason (and a resolution status from the definition, if any)."""

    reason: str
    resolution: str | None


class CaseReopened(Event):
    """A closed case was reopened with a reason."""

    reason: str


class CaseArchived(Event):
    """A closed case was archived with a reason; it accepts no further change."""

    reason: str


class CaseNotificationRequested(Event):
    """A notification about the case was requested: a workflow (template) for recipients, with a payload.

    The case records the request; a notification publisher (e.g. Novu) delivers it from the event log.
    """

    notification_id: str
    workflow: str
    recipients: list[str]
    payload: dict[str, Any]


@dataclass
class Comment:
    """A comment's current state and its edit history."""

    comment_id: str
    parent_id: str | None
    author: str
    body: str
    created_at: datetime
    history: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False


def case_number(prefix: str, n: int) -> str:
    """Human-readable, per-tenant-and-definition case number, e.g. CLAIM-000042."""
    return f"{prefix}-{n:06d}"


def _text(value: str, field_name: str, limit: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValidationFailed(f"{field_name} must not be empty", [FieldError(field_name, "must not be empty")])
    if len(text) > limit:
        raise ValidationFailed(
            f"{field_name} is too long", [FieldError(field_name, f"at most {limit} characters")]
        )
    return text


class Case(Aggregate):
    """The case aggregate: every public method checks its rule, then records one event."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.definition_key = ""
        self.definition_version = 0
        self.number = ""
        self.title = ""
        self.data: dict[str, Any] = {}
        self.stage = ""
        self.status = ""
        self.assignee: str | None = None
        self.queue: str | None = None
        self.owner = ""  # who opened the case (the authorization policy's `owner`)
        self.comments: dict[str, Comment] = {}
        self.opened_at: datetime | None = None
        self.updated_at: datetime | None = None

    # -- commands -------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, ctx: Context, spec: DefinitionSpec, definition_version: int, number: int, title: str,
        data: dict[str, Any], case_id: UUID | None = None,
    ) -> Case:
        title = _text(title, "title", MAX_TITLE)
        validate(spec.schema, data)
        case = cls(case_id or uuid.uuid4())
        case.record(
            ctx, CaseOpened, definition_key=spec.key, definition_version=definition_version,
            number=case_number(spec.prefix, number), title=title, data=data, stage=spec.initial_stage,
        )
        return case

    def update_data(self, ctx: Context, spec: DefinitionSpec, patch: dict[str, Any]) -> None:
        """Merge-patch the data (null removes a field), validate the result, record the diff."""
        self._require_open()
        new = merge_patch(self.data, patch)
        validate(spec.schema, new)
        changes = diff(self.data, new)
        if not changes:
            raise NothingToChange("the patch changes nothing")
        self.record(ctx, CaseDataChanged, changes=changes)

    def retitle(self, ctx: Context, title: str) -> None:
        self._require_open()
        title = _text(title, "title", MAX_TITLE)
        if title == self.title:
            raise NothingToChange("the title is unchanged")
        self.record(ctx, CaseRetitled, title=title, previous=self.title)

    def move_to_stage(self, ctx: Context, spec: DefinitionSpec, stage: str) -> None:
        self._require_open()
        target = spec.stage(stage)
        if target is None:
            known = ", ".join(s.key for s in spec.stages)
            raise UnknownStage(f"stage {stage!r} is not defined by {spec.key!r} (stages: {known})")
        current = spec.stage(self.stage)
        allowed = current.transitions if current else ()
        if stage not in allowed:
            raise StageTransitionNotAllowed(
                f"{spec.key!r} does not allow moving from {self.stage!r} to {stage!r}"
                f" (allowed: {', '.join(allowed) or 'none'})"
            )
        self.record(ctx, CaseMovedToStage, from_stage=self.stage, to_stage=stage)

    def assign(self, ctx: Context, assignee: str) -> None:
        self._require_open()
        assignee = _text(assignee, "assignee", 200)
        if assignee == self.assignee:
            raise NothingToChange(f"the case is already assigned to {assignee!r}")
        self.record(ctx, CaseAssigned, assignee=assignee, previous=self.assignee)

    def unassign(self, ctx: Context) -> None:
        self._require_open()
        if self.assignee is None:
            raise NothingToChange("the case has no assignee")
        self.record(ctx, CaseUnassigned, previous=self.assignee)

    def put_in_queue(self, ctx: Context, spec: DefinitionSpec, queue: str | None) -> None:
        self._require_open()
        if queue is not None and queue not in spec.queues:
            raise UnknownQueue(f"queue {queue!r} is not one of {spec.key!r}'s queues ({', '.join(spec.queues)})")
        if queue == self.queue:
            raise NothingToChange(f"the case is already in queue {queue!r}")
        self.record(ctx, CaseQueued, queue=queue, previous=self.queue)

    def add_comment(self, ctx: Context, body: str, parent_id: str | None = None) -> str:
        self._require_not_archived()
        body = _text(body, "body", MAX_TEXT)
        if parent_id is not None:
            self._live_comment(parent_id)
        comment_id = str(uuid.uuid5(NAMESPACE, f"comment:{self.id}:{self.version + 1}"))
        self.record(ctx, CommentAdded, comment_id=comment_id, parent_id=parent_id, body=body)
        return comment_id

    def edit_comment(self, ctx: Context, comment_id: str, body: str) -> None:
        self._require_not_archived()
        comment = self._live_comment(comment_id)
        if comment.author != ctx.actor:
            raise NotPermitted("only the author may edit a comment")
        body = _text(body, "body", MAX_TEXT)
        if body == comment.body:
            raise NothingToChange("the comment is unchanged")
        self.record(ctx, CommentEdited, comment_id=comment_id, body=body, previous=comment.body)

    def delete_comment(self, ctx: Context, comment_id: str, reason: str = "") -> None:
        self._require_not_archived()
        comment = self._live_comment(comment_id)
        if comment.author != ctx.actor and not MODERATOR_ROLES.intersection(ctx.roles):
            raise NotPermitted("only the author or a supervisor may delete a comment")
        self.record(ctx, CommentDeleted, comment_id=comment_id, reason=reason.strip())

    def close(self, ctx: Context, spec: DefinitionSpec, reason: str, resolution: str | None = None) -> None:
        self._require_open()
        reason = _text(reason, "reason", 2000)
        if resolution is not None and resolution not in spec.statuses:
            raise ValidationFailed(
                f"resolution {resolution!r} is not one of {', '.join(spec.statuses) or 'none'}",
                [FieldError("resolution", "unknown resolution")],
            )
        self.record(ctx, CaseClosed, reason=reason, resolution=resolution)

    def reopen(self, ctx: Context, reason: str) -> None:
        if self.status != CLOSED:
            raise InvalidStateChange(f"only a closed case can be reopened (this one is {self.status})")
        self.record(ctx, CaseReopened, reason=_text(reason, "reason", 2000))

    def archive(self, ctx: Context, reason: str) -> None:
        if self.status != CLOSED:
            raise InvalidStateChange(f"only a closed case can be archived (this one is {self.status})")
        self.record(ctx, CaseArchived, reason=_text(reason, "reason", 2000))

    def request_notification(
        self, ctx: Context, workflow: str, recipients: list[str], payload: dict[str, Any]
    ) -> str:
        self._require_not_archived()
        workflow = _text(workflow, "workflow", 100)
        if not recipients or len(recipients) > MAX_RECIPIENTS:
            raise ValidationFailed(
                "recipients must name 1 to 50 recipients",
                [FieldError("recipients", f"between 1 and {MAX_RECIPIENTS} recipients")],
            )
        names = [_text(r, f"recipients[{i}]", 200) for i, r in enumerate(recipients)]
        notification_id = str(uuid.uuid5(NAMESPACE, f"notification:{self.id}:{self.version + 1}"))
        self.record(
            ctx, CaseNotificationRequested, notification_id=notification_id, workflow=workflow,
            recipients=names, payload=dict(payload),
        )
        return notification_id

    # -- rules ----------------------------------------------------------------------------------

    def _require_open(self) -> None:
        if self.status != OPEN:
            raise CaseNotOpen(f"case {self.number} is {self.status}")

    def _require_not_archived(self) -> None:
        if self.status == ARCHIVED:
            raise CaseNotOpen(f"case {self.number} is archived")

    def _live_comment(self, comment_id: str) -> Comment:
        comment = self.comments.get(comment_id)
        if comment is None or comment.deleted:
            raise CommentNotFound(f"no comment {comment_id!r} on case {self.number}")
        return comment

    # -- appliers -------------------------------------------------------------------------------

    def _touch(self, event: Event) -> None:
        self.updated_at = event.occurred_at

    @applies(CaseOpened)
    def _opened(self, e: CaseOpened) -> None:
        self.definition_key, self.definition_version = e.definition_key, e.definition_version
        self.number, self.title, self.data, self.stage = e.number, e.title, dict(e.data), e.stage
        self.status = OPEN
        self.owner = e.actor
        self.opened_at = e.occurred_at
        self._touch(e)

    @applies(CaseDataChanged)
    def _data_changed(self, e: CaseDataChanged) -> None:
        self.data = apply_changes(self.data, e.changes)
        self._touch(e)

    @applies(CaseRetitled)
    def _retitled(self, e: CaseRetitled) -> None:
        self.title = e.title
        self._touch(e)

    @applies(CaseMovedToStage)
    def _moved(self, e: CaseMovedToStage) -> None:
        self.stage = e.to_stage
        self._touch(e)

    @applies(CaseAssigned)
    def _assigned(self, e: CaseAssigned) -> None:
        self.assignee = e.assignee
        self._touch(e)

    @applies(CaseUnassigned)
    def _unassigned(self, e: CaseUnassigned) -> None:
        self.assignee = None
        self._touch(e)

    @applies(CaseQueued)
    def _queued(self, e: CaseQueued) -> None:
        self.queue = e.queue
        self._touch(e)

    @applies(CommentAdded)
    def _comment_added(self, e: CommentAdded) -> None:
        self.comments[e.comment_id] = Comment(e.comment_id, e.parent_id, e.actor, e.body, e.occurred_at)
        self._touch(e)

    @applies(CommentEdited)
    def _comment_edited(self, e: CommentEdited) -> None:
        comment = self.comments[e.comment_id]
        comment.history.append({"body": e.previous, "replaced_at": e.occurred_at.isoformat()})
        comment.body = e.body
        self._touch(e)

    @applies(CommentDeleted)
    def _comment_deleted(self, e: CommentDeleted) -> None:
        self.comments[e.comment_id].deleted = True
        self._touch(e)

    @applies(CaseClosed)
    def _closed(self, e: CaseClosed) -> None:
        self.status = CLOSED
        self._touch(e)

    @applies(CaseReopened)
    def _reopened(self, e: CaseReopened) -> None:
        self.status = OPEN
        self._touch(e)

    @applies(CaseArchived)
    def _archived(self, e: CaseArchived) -> None:
        self.status = ARCHIVED
        self._touch(e)

    @applies(CaseNotificationRequested)
    def _notification_requested(self, e: CaseNotificationRequested) -> None:
        self._touch(e)
