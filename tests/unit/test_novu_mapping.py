"""Case events -> Novu triggers: workflow, recipients (from the audience, never the actor), payload, dedupe id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from adapters.novu_mapping import Audience, affects_audience, fold_audience, trigger_for
from domain import case as c
from domain import document as d
from domain.events import Event, Metadata, Positioned

CASE = uuid.UUID("00000000-0000-0000-0000-0000000000c1")
AT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def ev(cls: type[Event], position: int, actor: str, tenant: str = "acme", **fields: Any) -> Positioned:
    meta = Metadata(actor, tenant, f"cmd-{position}", "corr", "cause")
    event = cls(event_id=uuid.UUID(int=position), aggregate_id=CASE, version=position, occurred_at=AT, meta=meta,
                **fields)
    return Positioned(position, event)


def opened(position: int = 1, actor: str = "alice") -> Positioned:
    return ev(c.CaseOpened, position, actor, definition_key="claim", definition_version=1, number="CLM-000007",
              title="Storm damage", data={}, stage="intake")


def assigned(position: int, actor: str, assignee: str) -> Positioned:
    return ev(c.CaseAssigned, position, actor, assignee=assignee, previous=None)


def commented(position: int, actor: str, body: str = "hello") -> Positioned:
    return ev(c.CommentAdded, position, actor, comment_id=f"k{position}", parent_id=None, body=body)


def audience_of(*items: Positioned) -> Audience | None:
    audience: Audience | None = None
    for item in items:
        if affects_audience(item.event):
            audience = fold_audience(audience, item)
    return audience


def test_case_assigned_notifies_the_assignee_with_event_id_as_transaction_id() -> None:
    item = assigned(3, "bob", "carol")
    trigger = trigger_for(item, audience_of(opened(), item))
    assert trigger is not None
    assert trigger.workflow == "case-assigned"
    assert trigger.recipients == ("carol",)
    assert trigger.transaction_id == "00000000-0000-0000-0000-000000000003"
    assert trigger.tenant == "acme"
    assert trigger.actor == "bob"
    assert trigger.payload["assignee"] == "carol"
    assert trigger.payload["case_id"] == str(CASE)
    assert trigger.payload["case_number"] == "CLM-000007"
    assert trigger.payload["case_title"] == "Storm damage"
    assert trigger.payload["tenant"] == "acme"
    assert trigger.payload["position"] == 3


def test_self_assignment_notifies_nobody() -> None:
    item = assigned(3, "carol", "carol")
    assert trigger_for(item, audience_of(opened(), item)) is None


def test_comment_notifies_opener_assignees_and_earlier_commenters_but_not_its_author() -> None:
    history = [opened(1, "alice"), assigned(2, "alice", "bob"), commented(4, "dave"), assigned(5, "bob", "erin")]
    item = commented(7, "bob", "Looks fine")
    trigger = trigger_for(item, audience_of(*history, item))
    assert trigger is not None
    assert trigger.workflow == "case-comment-added"
    assert trigger.recipients == ("alice", "dave", "erin")  # joined in that order; bob wrote it
    assert trigger.payload["author"] == "bob"
    assert trigger.payload["excerpt"] == "Looks fine"
    assert trigger.payload["comment_id"] == "k7"


def test_a_redelivered_event_maps_to_the_same_recipients_after_later_followers_joined() -> None:
    item = commented(4, "bob")
    later = audience_of(opened(1, "alice"), item, assigned(6, "alice", "zoe"))  # zoe joined after position 4
    trigger = trigger_for(item, later)
    assert trigger is not None
    assert trigger.recipients == ("alice",)


def test_stage_change_and_close_notify_followers_except_the_actor() -> None:
    audience = audience_of(opened(1, "alice"), assigned(2, "alice", "bob"))
    moved = trigger_for(ev(c.CaseMovedToStage, 3, "bob", from_stage="intake", to_stage="review"), audience)
    assert moved is not None
    assert (moved.workflow, moved.recipients) == ("case-stage-changed", ("alice",))
    assert (moved.payload["from_stage"], moved.payload["to_stage"]) == ("intake", "review")
    closed = trigger_for(ev(c.CaseClosed, 4, "carol", reason="paid", resolution="approved"), audience)
    assert closed is not None
    assert (closed.workflow, closed.recipients) == ("case-closed", ("alice", "bob"))
    assert (closed.payload["reason"], closed.payload["resolution"]) == ("paid", "approved")


def test_notification_requested_by_a_process_uses_its_workflow_and_recipients() -> None:
    item = ev(c.CaseNotificationRequested, 9, "process:claim", notification_id="n-1", workflow="claim-approved",
              recipients=["alice", "bob", "alice"], payload={"amount": 120, "tenant": "other"})
    trigger = trigger_for(item, audience_of(opened()))
    assert trigger is not None
    assert trigger.workflow == "claim-approved"
    assert trigger.recipients == ("alice", "bob")
    assert trigger.payload["amount"] == 120
    assert trigger.payload["notification_id"] == "n-1"
    assert trigger.payload["tenant"] == "acme"  # the event's tenant, never one from the payload


def test_events_without_a_notification_map_to_none() -> None:
    audience = audience_of(opened(), assigned(2, "alice", "bob"))
    assert trigger_for(opened(), audience) is None
    assert trigger_for(ev(c.CaseRetitled, 3, "bob", title="New", previous="Storm damage"), audience) is None


def test_audience_keeps_each_follower_once_with_the_position_they_joined() -> None:
    audience = audience_of(opened(1, "alice"), commented(2, "alice"), assigned(3, "alice", "bob"),
                           ev(c.CaseRetitled, 4, "bob", title="Hail damage", previous="Storm damage"))
    assert audience is not None
    assert audience["followers"] == [{"user": "alice", "since": 1}, {"user": "bob", "since": 3}]
    assert (audience["number"], audience["title"], audience["tenant"]) == ("CLM-000007", "Hail damage", "acme")


def test_trigger_body_is_novus_wire_shape() -> None:
    item = assigned(3, "bob", "carol")
    trigger = trigger_for(item, audience_of(opened(), item))
    assert trigger is not None
    body = trigger.body()
    assert body["name"] == "case-assigned"
    assert body["to"] == [{"subscriberId": "carol"}]
    assert body["transactionId"] == "00000000-0000-0000-0000-000000000003"
    assert body["tenant"] == "acme"
    assert isinstance(body["payload"], dict)


def _document_event(cls: type[Event], position: int, actor: str, **fields: Any) -> Positioned:
    meta = Metadata(actor, "acme", f"cmd-{position}", "corr", "cause")
    event = cls(event_id=uuid.UUID(int=position), aggregate_id=uuid.UUID(int=999), version=1, occurred_at=AT,
                meta=meta, case_id=str(CASE), **fields)
    return Positioned(position, event)


def attached(position: int, actor: str, status: str) -> Positioned:
    return _document_event(d.DocumentAttached, position, actor, upload_id="u", filename="roof.pdf",
                           content_type="application/pdf", size=12, sha256="ab" * 32, object_key="k", status=status)


def test_a_document_added_clean_notifies_the_case_followers_but_not_its_uploader() -> None:
    audience = audience_of(opened(1, "alice"), assigned(2, "alice", "bob"), commented(3, "carol"))
    trigger = trigger_for(attached(9, "carol", "available"), audience)
    assert trigger is not None
    assert (trigger.workflow, trigger.recipients) == ("case-document-added", ("alice", "bob"))
    assert trigger.payload["case_id"] == str(CASE) and trigger.payload["case_number"] == "CLM-000007"
    assert (trigger.payload["document_id"], trigger.payload["filename"], trigger.payload["version_number"]) == (
        str(uuid.UUID(int=999)), "roof.pdf", 1)


def test_a_pending_document_announces_nothing_until_its_scan_passes() -> None:
    audience = audience_of(opened(1, "alice"))
    assert trigger_for(attached(5, "carol", "pending"), audience) is None
    passed = _document_event(d.DocumentVersionScanned, 6, "system:documents", filename="roof.pdf", version_number=1)
    trigger = trigger_for(passed, audience)
    assert trigger is not None and trigger.recipients == ("alice",) and trigger.payload["filename"] == "roof.pdf"
