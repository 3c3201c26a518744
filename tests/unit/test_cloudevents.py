"""CloudEvents 1.0 structured mode: attributes, extensions, round trip, upcasting of older payloads."""

from __future__ import annotations

import re
import uuid

import pytest

from adapters import cloudevents
from adapters.event_store import RecorderEventStore
from commands import messages as m
from commands.bus import Actor, CommandBus
from domain.case import CommentAdded
from domain.events import EVENT_TYPES, Positioned
from tests.unit.conftest import open_claim, publish_claim


@pytest.fixture
def history(bus: CommandBus, alice: Actor, store: RecorderEventStore) -> list[Positioned]:
    """A little of everything, stored through the bus (internal events included)."""
    publish_claim(bus, alice)
    opened = open_claim(bus, alice, customer="Ada")
    case_id = uuid.UUID(opened.id)
    bus.dispatch(m.AddComment(case_id=case_id, body="first"), alice, correlation_id="corr-1", causation_id="cause-1")
    bus.dispatch(m.MoveCaseToStage(case_id=case_id, stage="review"), alice)
    bus.dispatch(m.UpdateCaseData(case_id=case_id, patch={"amount": 7, "details": {"a": [1, 2]}}), alice)
    bus.dispatch(m.AssignCase(command_id="assign-1", case_id=case_id, assignee="carol"), alice)  # a log entry
    bus.dispatch(m.CloseCase(case_id=case_id, reason="done", resolution="approved"), alice)
    return store.read(0, 1000)


def test_attributes_and_extensions(history: list[Positioned]) -> None:
    item = next(p for p in history if isinstance(p.event, CommentAdded))
    ce = cloudevents.to_cloudevent(item.position, item.event)
    event = item.event
    assert ce == {
        "specversion": "1.0",
        "id": str(event.event_id),
        "source": "casestream",
        "type": "casestream.CommentAdded.v2",
        "subject": str(event.aggregate_id),
        "time": event.occurred_at.isoformat(),
        "datacontenttype": "application/json",
        "data": {"comment_id": event.comment_id, "parent_id": None, "body": "first"},
        "tenant": "acme",
        "correlationid": "corr-1",
        "causationid": "cause-1",
        "actor": "alice",
        "commandid": event.meta.command_id,
        "position": item.position,
        "aggregateversion": event.version,
    }
    assert ce["time"].endswith("+00:00")  # RFC 3339 with an offset


def test_extension_names_follow_the_spec() -> None:
    for name in cloudevents.EXTENSIONS:
        assert re.fullmatch(r"[a-z0-9]{1,20}", name), name


def test_every_stored_event_round_trips_through_json(history: list[Positioned]) -> None:
    kinds = set()
    for item in history:
        ce = cloudevents.loads(cloudevents.dumps(cloudevents.to_cloudevent(item.position, item.event)))
        assert cloudevents.from_cloudevent(ce) == item
        kinds.add(type(item.event).__name__)
    assert {"CaseOpened", "CaseDataChanged", "CaseClosed", "DefinitionPublished", "CommandHandled"} <= kinds


def test_an_older_payload_version_is_upcast(history: list[Positioned]) -> None:
    item = next(p for p in history if isinstance(p.event, CommentAdded))
    ce = cloudevents.to_cloudevent(item.position, item.event)
    ce["type"] = "casestream.CommentAdded.v1"
    del ce["data"]["parent_id"]
    assert cloudevents.from_cloudevent(ce) == item


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"specversion": "0.3"}, "specversion"),
        ({"type": "casestream.NoSuchEvent.v1"}, "unknown event type"),
        ({"type": "other.CommentAdded.v2"}, "not a casestream event type"),
        ({"type": "casestream.CommentAdded.v3"}, "newer"),
        ({"type": "casestream.CommentAdded"}, "unknown event type"),
    ],
)
def test_unreadable_cloudevents_are_refused(history: list[Positioned], change: dict[str, str], message: str) -> None:
    item = next(p for p in history if isinstance(p.event, CommentAdded))
    ce = {**cloudevents.to_cloudevent(item.position, item.event), **change}
    with pytest.raises(ValueError, match=message):
        cloudevents.from_cloudevent(ce)


def test_a_missing_extension_is_refused(history: list[Positioned]) -> None:
    ce = cloudevents.to_cloudevent(history[0].position, history[0].event)
    del ce["tenant"]
    with pytest.raises(ValueError, match="lacks tenant"):
        cloudevents.from_cloudevent(ce)


def test_type_names_cover_every_event_class() -> None:
    for name, event_type in EVENT_TYPES.items():
        parsed, version = cloudevents.parse_type(cloudevents.ce_type(event_type))
        assert (parsed, version) == (event_type, event_type.class_version), name
