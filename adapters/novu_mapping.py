"""Case events -> Novu workflow triggers (pure: no I/O). The table is documented in docs/notifications.md.

Recipients come from the case's *audience*, a small fold kept by the publisher from the same event stream:
who follows the case (the opener, every assignee, every commenter, each with the position at which they
joined) and the case's number and title for the payload. An event at position P notifies the followers who
joined before P, never the actor of the event: nobody is notified of what they did themselves. Because the
recipients depend only on the audience as of P, a redelivered event maps to the same trigger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from domain import case as c
from domain import document as d
from domain.events import Event, Positioned

Audience = dict[str, Any]  # {"tenant", "number", "title", "followers": [{"user", "since"}]}

WORKFLOW_ASSIGNED = "case-assigned"
WORKFLOW_COMMENTED = "case-comment-added"
WORKFLOW_STAGE = "case-stage-changed"
WORKFLOW_CLOSED = "case-closed"
WORKFLOW_DOCUMENT = "case-document-added"


@dataclass(frozen=True)
class Trigger:
    """One Novu workflow trigger: `transaction_id` is the event id, so Novu drops a repeat."""

    workflow: str
    recipients: tuple[str, ...]
    payload: dict[str, Any]
    transaction_id: str
    tenant: str
    actor: str

    def body(self) -> dict[str, Any]:
        """The trigger as Novu's `POST /v1/events/trigger` JSON body (what novu-py sends for it)."""
        return {
            "name": self.workflow,
            "to": [{"subscriberId": r} for r in self.recipients],
            "payload": self.payload,
            "transactionId": self.transaction_id,
            "tenant": self.tenant,
            "actor": self.actor,
        }


# --- the audience fold ---------------------------------------------------------------------------------

def _joined(event: Event) -> str | None:
    """The user who starts following the case with this event, if any."""
    if isinstance(event, c.CaseOpened | c.CommentAdded):
        return event.actor
    if isinstance(event, c.CaseAssigned):
        return event.assignee
    return None


def affects_audience(event: Event) -> bool:
    """Whether the event changes a case's audience (who follows it, its number or title)."""
    return isinstance(event, c.CaseOpened | c.CaseRetitled) or _joined(event) is not None


def fold_audience(audience: Audience | None, item: Positioned) -> Audience:
    """The audience after an event (a new dict; followers keep the position they first joined at)."""
    event = item.event
    doc: Audience = {
        "tenant": event.tenant, "number": None, "title": None, "followers": [],
        **(audience or {}),
    }
    doc["followers"] = [dict(f) for f in doc["followers"]]
    if isinstance(event, c.CaseOpened):
        doc["number"], doc["title"] = event.number, event.title
    elif isinstance(event, c.CaseRetitled):
        doc["title"] = event.title
    user = _joined(event)
    if user and all(f["user"] != user for f in doc["followers"]):
        doc["followers"].append({"user": user, "since": item.position})
    return doc


def followers_before(audience: Audience | None, position: int) -> list[str]:
    """Users who followed the case before position, in the order they joined."""
    if not audience:
        return []
    joined = sorted(audience.get("followers", []), key=lambda f: f["since"])
    return [f["user"] for f in joined if f["since"] < position]


# --- the mapping ---------------------------------------------------------------------------------------

def _base(item: Positioned, audience: Audience | None) -> dict[str, Any]:
    event = item.event
    return {
        "tenant": event.tenant,
        "case_id": case_of(event),
        "case_number": (audience or {}).get("number"),
        "case_title": (audience or {}).get("title"),
        "event_type": event.type_name(),
        "event_id": str(event.event_id),
        "position": item.position,
        "actor": event.actor,
        "occurred_at": event.occurred_at.isoformat(),
    }


def _assigned(e: c.CaseAssigned, audience: Audience | None, position: int) -> tuple[str, list[str], dict[str, Any]]:
    return WORKFLOW_ASSIGNED, [e.assignee], {"assignee": e.assignee, "previous_assignee": e.previous}


def _commented(e: c.CommentAdded, audience: Audience | None, position: int) -> tuple[str, list[str], dict[str, Any]]:
    payload = {"comment_id": e.comment_id, "parent_id": e.parent_id, "author": e.actor, "excerpt": e.body[:280]}
    return WORKFLOW_COMMENTED, followers_before(audience, position), payload


def _moved(e: c.CaseMovedToStage, audience: Audience | None, position: int) -> tuple[str, list[str], dict[str, Any]]:
    return WORKFLOW_STAGE, followers_before(audience, position), {"from_stage": e.from_stage, "to_stage": e.to_stage}


def _closed(e: c.CaseClosed, audience: Audience | None, position: int) -> tuple[str, list[str], dict[str, Any]]:
    return WORKFLOW_CLOSED, followers_before(audience, position), {"reason": e.reason, "resolution": e.resolution}


def _requested(
    e: c.CaseNotificationRequested, audience: Audience | None, position: int,
) -> tuple[str, list[str], dict[str, Any]]:
    # a process's `case.notify` task names its workflow, recipients and payload; ours are added beside them
    return e.workflow, list(e.recipients), {"notification_id": e.notification_id, **e.payload}


def _document_added(
    e: d.DocumentAttached | d.DocumentVersionAdded | d.DocumentVersionScanned, audience: Audience | None, position: int,
) -> tuple[str, list[str], dict[str, Any]]:
    # a document is "added" when its bytes become downloadable: at the confirm when scanned clean there, else when a
    # later scan passes (a pending or quarantined version announces nothing)
    if not isinstance(e, d.DocumentVersionScanned) and e.status != d.AVAILABLE:
        return WORKFLOW_DOCUMENT, [], {}
    number = 1 if isinstance(e, d.DocumentAttached) else e.version_number
    payload: dict[str, Any] = {"document_id": str(e.aggregate_id), "filename": e.filename, "version_number": number}
    if not isinstance(e, d.DocumentVersionScanned):
        payload |= {"content_type": e.content_type, "size": e.size}
    return WORKFLOW_DOCUMENT, followers_before(audience, position), payload


Mapper = Callable[[Any, Audience | None, int], tuple[str, list[str], dict[str, Any]]]
MAPPERS: Mapping[type[Event], Mapper] = {
    c.CaseAssigned: _assigned,
    c.CommentAdded: _commented,
    c.CaseMovedToStage: _moved,
    c.CaseClosed: _closed,
    c.CaseNotificationRequested: _requested,
    d.DocumentAttached: _document_added,
    d.DocumentVersionAdded: _document_added,
    d.DocumentVersionScanned: _document_added,
}


def case_of(event: Event) -> str:
    """The case an event is about: its aggregate, or the case a document (task, ...) event names."""
    return str(getattr(event, "case_id", None) or event.aggregate_id)


def is_mapped(event: Event) -> bool:
    """Whether the event can lead to a trigger."""
    return type(event) in MAPPERS


def trigger_for(item: Positioned, audience: Audience | None) -> Trigger | None:
    """The trigger for an event given the case's audience, or None (unmapped event, or nobody to notify)."""
    mapper = MAPPERS.get(type(item.event))
    if mapper is None:
        return None
    event = item.event
    workflow, wanted, extra = mapper(event, audience, item.position)
    recipients: list[str] = []
    for user in wanted:
        if user and user != event.actor and user not in recipients:
            recipients.append(user)
    if not recipients:
        return None
    payload = {**extra, **_base(item, audience)}
    return Trigger(workflow, tuple(recipients), payload, str(event.event_id), event.tenant, event.actor)
