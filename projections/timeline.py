"""The `timeline` read model: one human-readable entry per case event, with actor and time."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import orjson

from domain import case as c
from domain import document as d
from domain import message as msg
from domain import process as p
from domain import task as t
from domain.events import Event
from projections.base import Doc, Fold, Projection
from projections.texts import iso_text, uuid_text


def _value(value: Any) -> str:
    """A data value as a person reads it (JSON, shortened)."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= 60 else text[:57] + "…"


def _fmt_changes(changes: list[dict[str, Any]]) -> str:
    parts = []
    for change in changes[:5]:
        path = ".".join(map(str, change["path"]))
        if change["op"] == "remove":
            parts.append(f"removed {path}")
        else:
            old = "(empty)" if change["old"] is None else _value(change["old"])
            parts.append(f"{path}: {old} → {_value(change['new'])}")
    more = f" (+{len(changes) - 5} more)" if len(changes) > 5 else ""
    return "; ".join(parts) + more


def _task_for(assignee: str | None, groups: list[str]) -> str:
    """Whom a new task is for, as a phrase ("" when it names nobody)."""
    parts = ([assignee] if assignee else []) + [f"group {g}" for g in groups]
    return f" for {' or '.join(parts)}" if parts else ""


def _size(size: int) -> str:
    """A byte count as a person reads it."""
    if size < 1024:
        return f"{size} bytes"
    scaled = size / 1024
    for unit in ("KB", "MB"):
        if scaled < 1024:
            return f"{scaled:.1f} {unit}"
        scaled /= 1024
    return f"{scaled:.1f} GB"


SUMMARIES: dict[type[Event], Callable[[Any], str]] = {
    c.CaseOpened: lambda e: f"opened {e.number} “{e.title}” in stage {e.stage}",
    c.CaseDataChanged: lambda e: f"changed data: {_fmt_changes(e.changes)}",
    c.CaseRetitled: lambda e: f"renamed the case to “{e.title}”",
    c.CaseMovedToStage: lambda e: f"moved the case from {e.from_stage} to {e.to_stage}",
    c.CaseAssigned: lambda e: f"assigned the case to {e.assignee}",
    c.CaseUnassigned: lambda e: f"unassigned {e.previous}",
    c.CaseQueued: lambda e: f"put the case in queue {e.queue}" if e.queue else "took the case out of its queue",
    c.CommentAdded: lambda e: ("replied: " if e.parent_id else "commented: ") + e.body[:140],
    c.CommentEdited: lambda e: f"edited a comment: {e.body[:140]}",
    c.CommentDeleted: lambda e: "deleted a comment" + (f" ({e.reason})" if e.reason else ""),
    c.CaseClosed: lambda e: "closed the case" + (f" as {e.resolution}" if e.resolution else "") + f": {e.reason}",
    c.CaseReopened: lambda e: f"reopened the case: {e.reason}",
    c.CaseArchived: lambda e: f"archived the case: {e.reason}",
    c.CaseNotificationRequested: lambda e: f"requested notification {e.workflow} to {', '.join(e.recipients)}",
    t.TaskCreated: lambda e: f"created task “{e.title}”" + _task_for(e.assignee, e.candidate_groups)
    + (f", due {e.due_at[:16].replace('T', ' ')} UTC" if e.due_at else ""),
    t.TaskClaimed: lambda e: f"claimed task “{e.title}”",
    t.TaskUnclaimed: lambda e: f"handed back task “{e.title}” (held by {e.previous})",
    t.TaskCompleted: lambda e: f"completed task “{e.title}”",
    t.TaskCancelled: lambda e: f"cancelled task “{e.title}”" + (f": {e.reason}" if e.reason else ""),
    t.TaskPriorityChanged: lambda e: f"changed the priority of task “{e.title}” from {e.previous} to {e.priority}",
    t.TaskAssigned: lambda e: (f"assigned task “{e.title}” to {e.assignee}" if e.assignee
                               else f"removed the assignee of task “{e.title}”"),
    d.DocumentAttached: lambda e: f"attached document “{e.filename}” ({_size(e.size)})",
    d.DocumentVersionAdded: lambda e: f"added version {e.version_number} of document “{e.filename}” ({_size(e.size)})",
    d.DocumentVersionScanned: lambda e: f"version {e.version_number} of document “{e.filename}” passed the virus scan",
    d.DocumentVersionQuarantined: lambda e: f"quarantined version {e.version_number} of document “{e.filename}”: "
    + e.reason[:200],
    d.DocumentRenamed: lambda e: f"renamed document “{e.previous}” to “{e.filename}”",
    d.DocumentRemoved: lambda e: f"removed document “{e.filename}”" + (f": {e.reason}" if e.reason else ""),
    d.DocumentLegalHoldPlaced: lambda e: f"placed document “{e.filename}” under legal hold"
    + (f": {e.reason}" if e.reason else ""),
    d.DocumentLegalHoldReleased: lambda e: f"released the legal hold on document “{e.filename}”"
    + (f": {e.reason}" if e.reason else ""),
    msg.EmailReceived: lambda e: f"received e-mail “{e.subject[:120]}” from {e.sender}"
    + (f" with {len(e.attachments)} attachment(s)" if e.attachments else ""),
    msg.EmailComposed: lambda e: f"composed e-mail “{e.subject[:120]}” to {', '.join(e.to[:5])}",
    msg.EmailSent: lambda e: f"sent e-mail “{e.subject[:120]}” to {', '.join(e.to[:5])}",
    msg.EmailSendFailed: lambda e: f"sending e-mail {e.message_id} failed (attempt {e.attempt}"
    + (", giving up" if e.final else "") + f"): {e.reason[:140]}",
    p.ProcessStarted: lambda e: f"started process “{e.process_name}”",
    p.ProcessCompleted: lambda e: f"process {e.process_id} completed" if e.process_id else "the process completed",
    p.ProcessCancelled: lambda e: f"cancelled the process: {e.reason}",
    p.BpmnErrorThrown: lambda e: f"BPMN error {e.code} at {e.element_id}"
    + (f", caught by {e.caught_by}" if e.caught_by else ", not caught") + (f": {e.message[:140]}" if e.message else ""),
    p.CompensationStarted: lambda e: f"started compensation at {e.element_id}: "
    + (f"undoing {', '.join(e.activities)}" if e.activities else "nothing to undo"),
    p.IncidentRaised: lambda e: f"process incident at {e.element_id or 'the instance'}: {e.message[:200]}",
    p.IncidentResolved: lambda e: f"{'retried' if e.resolution == p.RETRIED else 'cancelled'} the process incident at "
    f"{e.element_id or 'the instance'}" + (f": {e.note[:200]}" if e.note else ""),
    p.ProcessVariablesModified: lambda e: f"set process variables {', '.join(e.names[:10])}"
    + (f" (+{len(e.names) - 10} more)" if len(e.names) > 10 else ""),
    p.TimerFired: lambda e: f"timer “{e.element_name or e.element_id}” fired",
    p.MessageCorrelated: lambda e: f"process received message {e.name} at {e.element_id}",
}


def summary(event: Event) -> str:
    """One line saying what happened, in words a case worker reads."""
    return SUMMARIES[type(event)](event)


def entry(_doc: Doc | None, event: Event) -> Doc:
    meta = event.meta
    return {
        "id": uuid_text(event.event_id),
        "tenant": meta.tenant,
        # events of other aggregates about a case (tasks, process instances) name it in a `case_id` field
        "case_id": str(getattr(event, "case_id", None) or uuid_text(event.aggregate_id)),
        "version": event.version,
        "type": event.type_name(),
        "actor": meta.actor,
        "at": iso_text(event.occurred_at),
        "summary": summary(event),
        "correlation_id": meta.correlation_id,
    }


def _entry_of(event_type: type[Event]) -> Fold:
    """`entry` for one event type, with its type name and summary found once: the timeline folds every case
    event, so these lookups were a fair share of a rebuild. Types that may name their case in a `case_id` keep
    the general `entry`."""
    if "case_id" in {f.name for f in dataclasses.fields(event_type)} or hasattr(event_type, "case_id"):
        return entry
    name = event_type.type_name()
    summarize = SUMMARIES[event_type]

    def entry_of_type(_doc: Doc | None, event: Any) -> Doc:
        meta = event.meta
        return {
            "id": uuid_text(event.event_id),
            "tenant": meta.tenant,
            "case_id": uuid_text(event.aggregate_id),
            "version": event.version,
            "type": name,
            "actor": meta.actor,
            "at": iso_text(event.occurred_at),
            "summary": summarize(event),
            "correlation_id": meta.correlation_id,
        }

    return entry_of_type


FOLDS: dict[type[Event], Fold] = {event_type: _entry_of(event_type) for event_type in SUMMARIES}

TIMELINE = Projection(
    collection="timeline",
    folds=FOLDS,
    key=lambda e: uuid_text(e.event_id),
    per_aggregate=True,
    per_event=True,
    indexes=("case_id",),
    order="at",
)
