"""The codec: every event type round-trips; old payloads are upcast on load."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import orjson
import pytest
from eventsourcing.persistence import StoredEvent

from adapters.codec import decode, decode_stored, encode, event_to_dict
from commands import messages as m
from domain.case import Case, CommentAdded
from domain.events import EVENT_TYPES, Event, Metadata
from projections.queries import case_timeline, get_case
from tests.unit.conftest import TENANT, claim_spec, open_claim

META = Metadata("alice", TENANT, "cmd-1", "corr-1", "cause-1")
WHEN = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)

SAMPLES: dict[str, dict[str, Any]] = {
    "CaseOpened": {
        "definition_key": "claim", "definition_version": 2, "number": "CLAIM-000042", "title": "Ünïcode “title”",
        "data": {"amount": 12.5, "tags": ["a", "b"], "nested": {"deep": None, "flag": True}}, "stage": "new",
    },
    "CaseDataChanged": {"changes": [
        {"op": "set", "path": ["amount"], "old": 1, "new": 2.5},
        {"op": "remove", "path": ["details", "x"], "old": [1, 2], "new": None},
    ]},
    "CaseRetitled": {"title": "New", "previous": "Old"},
    "CaseMovedToStage": {"from_stage": "new", "to_stage": "review"},
    "CaseAssigned": {"assignee": "carol", "previous": None},
    "CaseUnassigned": {"previous": "carol"},
    "CaseQueued": {"queue": None, "previous": "fraud"},
    "CommentAdded": {"comment_id": "c1", "parent_id": "c0", "body": "line 1\nline 2"},
    "CommentEdited": {"comment_id": "c1", "body": "new", "previous": "old"},
    "CommentDeleted": {"comment_id": "c1", "reason": ""},
    "CaseClosed": {"reason": "paid", "resolution": "approved"},
    "CaseReopened": {"reason": "appeal"},
    "CaseArchived": {"reason": "retention"},
    "CaseNotificationRequested": {
        "notification_id": "n1", "workflow": "claim-received", "recipients": ["carol"], "payload": {"n": 1},
    },
    "DefinitionPublished": {"definition_version": 1, "spec": claim_spec().to_dict()},
    "CaseNumberIssued": {"number": 7, "case_id": str(uuid.uuid4())},
    "CommandHandled": {"name": "OpenCase", "fingerprint": "ab" * 32, "result": {"id": "x", "version": 1, "extra": {}}},
    "QueueDefined": {"key": "intake", "name": "Intake", "description": "new work"},
    "RecordTypeDefined": {"key": "country", "name": "Country", "schema": {"type": "object"}},
    "RecordSaved": {"type_key": "country", "key": "fr", "data": {"iso": "FR"}},
    "ProcessMessagePublished": {
        "name": "order-paid", "correlation_key": "ORD-17", "variables": {"paidBy": "card", "amount": 10.5},
        "time_to_live_ms": 600_000, "expires_at": "2026-03-02T09:10:00+00:00", "message_id": "payment-4711",
    },
    "ProcessMessageCorrelated": {"name": "order-paid", "correlation_key": "ORD-17", "process_instance_key": "k-1"},
    "ProcessMessageUnmatched": {"buffered": True},
    "ProcessSignalBroadcast": {"name": "order-cancelled", "variables": {"reason": "fraud"}},
    "ProcessSignalDelivered": {"started": ["k-2"], "delivered": ["k-1", "k-3"]},
    "ProcessOperationRequested": {
        "operation": "retry-incident", "instance_id": "8d5e2c1a-0000-4000-8000-000000000001", "incident_id": "i-1",
        "element_id": None, "variables": {"amount": 5000, "nested": {"ok": [1, "é"]}}, "retries": 2,
        "note": "amount fixed", "reason": "", "roles": ["admin"], "groups": ["ops"],
    },
    "ProcessOperationApplied": {"reply": {"id": "8d5e2c1a-0000-4000-8000-000000000001", "version": 7,
                                          "position": 42}},
    "ProcessOperationRefused": {"status": 409, "code": "incident-not-open", "detail": "incident i-1 is not open",
                                "errors": [{"path": "variables.x", "message": "bad"}]},
    "ProcessDeployed": {
        "process_id": "claim-case", "name": "Claim", "process_version": 2, "filename": "claim.bpmn",
        "xml": "<?xml version=\"1.0\"?>\n<bpmn:definitions>é</bpmn:definitions>\n", "content_hash": "cd" * 32,
        "deployer": "root", "forms": {"review": {"components": [{"type": "textfield", "key": "note"}]}},
        "kind": "bpmn",
    },
    "RecordRemoved": {"reason": "obsolete"},
    "CommandDenied": {
        "user": "alice", "roles": ["caseworker"], "groups": ["claims"], "action": "CloseCase", "targets": ["case:c-1"],
        "reasons": ["only the assignee closes"], "detail": "forbidden", "command_id": "cmd-1",
        "correlation_id": "corr-1", "window_start": "2026-03-01T12:30:00.000000+00:00",
        "first_at": "2026-03-01T12:30:15.123456+00:00", "last_at": "2026-03-01T12:30:15.123456+00:00", "count": 1,
    },
    "DocumentUploadRequested": {"case_id": "c-1", "upload_id": "u-1", "filename": "photo.png",
                                "content_type": "image/png", "size": 2048, "sha256": "ab" * 32,
                                "expires_at": "2026-03-01T12:45:00+00:00"},
    **{name: {"case_id": "c-1", "upload_id": "u-1", "filename": "photo.png", "content_type": "image/png",
              "size": 2048, "sha256": "ab" * 32, "object_key": "acme/c-1/sha256/" + "ab" * 32, "status": "available",
              **extra}
       for name, extra in {"DocumentAttached": {}, "DocumentVersionAdded": {"version_number": 2}}.items()},
    "DocumentVersionScanned": {"case_id": "c-1", "filename": "photo.png", "version_number": 1},
    "DocumentVersionQuarantined": {"case_id": "c-1", "filename": "photo.png", "version_number": 1,
                                   "reason": "ClamAV found Eicar-Test-Signature"},
    "DocumentPreviewRecorded": {"case_id": "c-1", "version_number": 1, "preview_key": "acme/c-1/previews/ab.png",
                                "error": ""},
    "DocumentRenamed": {"case_id": "c-1", "filename": "roof.png", "previous": "photo.png"},
    "DocumentRemoved": {"case_id": "c-1", "filename": "roof.png", "reason": "duplicate"},
    "DocumentLegalHoldPlaced": {"case_id": "c-1", "filename": "roof.png", "reason": "litigation"},
    "DocumentLegalHoldReleased": {"case_id": "c-1", "filename": "roof.png", "reason": "settled"},
    "EmailReceived": {
        "case_id": "c-1", "mailbox": "claims@casestream.test", "message_id": "<m1@example.org>",
        "sender": "dana@example.org", "sender_name": "Dana Ünïcode", "to": ["claims@casestream.test"], "cc": [],
        "subject": "Broken window", "text": "line 1\nline 2", "html": "<p>line 1</p>", "truncated": False,
        "in_reply_to": "", "references": ["<m0@example.org>"], "threaded_by": "new",
        "attachments": [{"filename": "a.pdf", "content_type": "application/pdf", "size": 10, "sha256": "ab" * 32}],
        "raw_key": "acme/mail/sha256/" + "ab" * 32, "size": 2048,
    },
    "EmailComposed": {
        "case_id": "c-1", "mailbox": "claims@casestream.test", "message_id": "<m2@casestream.test>",
        "to": ["dana@example.org"], "cc": [], "subject": "[CLAIM-000001] Received", "text": "We are on it.",
        "in_reply_to": "<m1@example.org>", "references": ["<m1@example.org>"], "template": "ack",
        "purpose": "acknowledgement",
    },
    "EmailSent": {"case_id": "c-1", "message_id": "<m2@casestream.test>", "subject": "Received",
                  "to": ["dana@example.org"]},
    "EmailSendFailed": {"case_id": "c-1", "message_id": "<m2@casestream.test>", "reason": "refused", "attempt": 2,
                        "final": False},
    "EmailSetAside": {"mailbox": "claims@casestream.test", "status": "ignored", "kind": "auto-reply",
                      "reason": "Auto-Submitted: auto-replied (RFC 3834)", "raw_key": "acme/mail/sha256/" + "cd" * 32,
                      "size": 100, "sha256": "cd" * 32, "message_id": "", "sender": "x@example.org", "subject": "OOO"},
    "CommandDenialsRepeated": {"count": 7, "last_at": "2026-03-01T12:30:59.000000+00:00", "targets": ["case:c-1"]},
    "MembershipChanged": {"user": "carol", "before": {"roles": ["viewer"], "groups": []},
                          "after": {"roles": ["caseworker"], "groups": ["claims"]}, "by": "admin", "source": "cli"},
    **{name: {"case_id": "c-1", "title": "Review", "process_instance_key": "pi-1", "element_id": "review", **extra}
       for name, extra in {
           "TaskCreated": {
               "case_number": "CLAIM-000001", "case_title": "Water damage", "description": "check",
               "form_schema": {"type": "object", "required": ["ok"]}, "assignee": None,
               "candidate_groups": ["reviewers"], "due_at": "2026-03-02T12:00:00+00:00", "priority": 60,
           },
           "TaskClaimed": {},
           "TaskUnclaimed": {"previous": "carol"},
           "TaskCompleted": {"data": {"ok": True, "note": "fine"}},
           "TaskCancelled": {"reason": "timer"},
           "TaskPriorityChanged": {"priority": 90, "previous": 50},
           "TaskAssigned": {"assignee": "bob", "previous": "carol", "released_claim": "carol"},
       }.items()},
    **{name: {"case_id": "c-1", "delta": {"tasks": {"t1": {"state": 64}}, "data": {"x": 1}}, **extra}
       for name, extra in {
           "ProcessStarted": {
               "process_id": "claim_lifecycle", "process_name": "Claim", "instance_key": "k1",
               "definition_hash": "ab" * 16, "variables": {"caseId": "c-1"},
           },
           "ProcessAdvanced": {"cause": "job-completed", "element_id": "assess"},
           "JobFailed": {"element_id": "assess", "job_type": "case.assign", "message": "boom", "retries_left": 2,
                         "retry_at": "2026-03-01T12:31:00+00:00"},
           "IncidentRaised": {"element_id": "assess", "message": "no retries left"},
           "IncidentResolved": {"incident_id": "i-1", "element_id": "assess", "resolution": "retried",
                                "note": "amount fixed"},
           "ProcessVariablesModified": {"names": ["amount", "approved"]},
           "BpmnErrorThrown": {"element_id": "move", "code": "stage-transition-not-allowed", "message": "no",
                               "caught_by": "onError"},
           "TimerFired": {"element_id": "sla", "element_name": "SLA"},
           "MessageCorrelated": {"element_id": "wait", "name": "customer-replied", "correlation_key": "c-1"},
           "CompensationStarted": {"element_id": "fail", "activities": ["reserve", "provision"]},
           "ProcessCompleted": {"process_id": "claim_lifecycle"},
           "ProcessCancelled": {"reason": "case closed"},
       }.items()},
}


def _domain_event_types() -> dict[str, type[Event]]:
    return {name: cls for name, cls in EVENT_TYPES.items() if cls.__module__.startswith("domain.")}


def _sample(name: str, version: int = 3, when: datetime = WHEN) -> Event:
    return EVENT_TYPES[name](
        event_id=uuid.uuid4(), aggregate_id=uuid.uuid4(), version=version, occurred_at=when, meta=META,
        **SAMPLES[name],
    )


def test_every_domain_event_type_has_a_round_trip_sample():
    assert set(_domain_event_types()) == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_event_round_trips_through_the_codec(name):
    event = _sample(name)
    stored = encode(event)
    assert (stored.topic, stored.originator_id, stored.originator_version) == (name, event.aggregate_id, 3)
    assert orjson.loads(stored.state)["_v"] == EVENT_TYPES[name].class_version
    assert decode_stored(stored) == event


def test_round_trip_keeps_a_non_utc_offset():
    event = _sample("CaseRetitled", when=datetime(2026, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=-5))))
    decoded = decode_stored(encode(event))
    assert decoded.occurred_at.utcoffset() == timedelta(hours=-5)
    assert decoded.occurred_at == datetime(2026, 3, 1, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_events_round_trip_through_the_sqlite_store(store, name):
    event = _sample(name, version=1)
    (position,) = store.append([event])
    assert store.events_of(event.aggregate_id) == [event]
    assert [(p.position, p.event) for p in store.read(0, 10)] == [(position, event)]


def test_event_dict_is_json_ready_with_version_marker():
    body = event_to_dict(_sample("CaseAssigned"))
    assert body["_v"] == 1
    assert body["occurred_at"] == "2026-03-01T12:30:15.123456+00:00"
    assert body["meta"] == {"actor": "alice", "tenant": "acme", "command_id": "cmd-1",
                            "correlation_id": "corr-1", "causation_id": "cause-1"}
    assert "aggregate_id" not in body and "version" not in body


def _v1_comment(case_id: UUID, version: int, body: str, *, marker: bool = True) -> StoredEvent:
    state: dict[str, Any] = {
        "comment_id": f"legacy-{version}", "body": body, "event_id": str(uuid.uuid4()),
        "occurred_at": "2024-05-01T10:00:00+00:00",
        "meta": {"actor": "dora", "tenant": TENANT, "command_id": "old", "correlation_id": "old",
                 "causation_id": "old"},
    }
    if marker:
        state["_v"] = 1
    return StoredEvent(originator_id=case_id, originator_version=version, topic="CommentAdded",
                       state=orjson.dumps(state))


@pytest.mark.usefixtures("claim")
def test_version_one_comment_loads_upcast_as_top_level(bus, alice, store, documents, runner):
    opened = open_claim(bus, alice)
    case_id = UUID(opened.id)
    store.recorder.insert_events([_v1_comment(case_id, 2, "from 2024"), _v1_comment(case_id, 3, "no marker",
                                                                                    marker=False)])
    events = store.events_of(case_id)
    assert [type(e) for e in events] == [type(events[0]), CommentAdded, CommentAdded]
    legacy = events[1]
    assert (legacy.comment_id, legacy.parent_id, legacy.body, legacy.actor) == ("legacy-2", None, "from 2024", "dora")
    assert legacy.occurred_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert events[2].parent_id is None

    case = Case.replay(case_id, events)
    assert {c: (x.parent_id, x.author) for c, x in case.comments.items()} == {
        "legacy-2": (None, "dora"), "legacy-3": (None, "dora"),
    }
    # the upcast comment is a live parent for a new reply
    reply = bus.dispatch(m.AddComment(case_id=opened.id, body="re", parent_id="legacy-2"), alice)
    assert reply.version == 4

    runner.catch_up()
    doc = get_case(documents, TENANT, opened.id)
    assert [(c["id"], c["parent_id"]) for c in doc["comments"]] == [
        ("legacy-2", None), ("legacy-3", None), (reply.extra["comment_id"], "legacy-2"),
    ]
    assert [e["summary"] for e in case_timeline(documents, TENANT, opened.id)][1:] == [
        "commented: from 2024", "commented: no marker", "replied: re",
    ]


def test_payload_from_a_version_without_upcaster_is_refused():
    state = orjson.dumps({"_v": 0, "comment_id": "c", "body": "b", "event_id": str(uuid.uuid4()),
                          "occurred_at": WHEN.isoformat(), "meta": META.__dict__})
    with pytest.raises(ValueError, match="no upcaster from version 0"):
        decode("CommentAdded", state, uuid.uuid4(), 1)


def test_unknown_event_type_is_refused():
    with pytest.raises(ValueError, match="unknown event type"):
        decode("CaseTeleported", b"{}", uuid.uuid4(), 1)


def test_comment_upcaster_adds_parent_id_none_and_keeps_the_rest():
    assert CommentAdded.upcast({"comment_id": "c", "body": "b"}, 1) == {"comment_id": "c", "body": "b",
                                                                        "parent_id": None}
    assert CommentAdded.upcast({"comment_id": "c", "parent_id": "p"}, 2) == {"comment_id": "c", "parent_id": "p"}
