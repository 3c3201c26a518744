"""The codec's per-type decoders: the direct fill gives exactly the constructor's event, and anything unusual
(missing or unknown fields, odd id spellings) takes the constructor's path with its defaults and errors."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import orjson
import pytest

from adapters.codec import aggregate_uuid, decode, encode, parse_uuid
from domain.case import CaseAssigned, CommentAdded
from domain.events import Metadata

META = Metadata("alice", "acme", "cmd-1", "corr-1", "cause-1")
WHEN = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def _assigned() -> CaseAssigned:
    return CaseAssigned(event_id=uuid.uuid4(), aggregate_id=uuid.uuid4(), version=4, occurred_at=WHEN, meta=META,
                        assignee="carol", previous="bob")


def test_decoded_event_is_the_constructed_one_and_stays_frozen() -> None:
    event = _assigned()
    stored = encode(event)
    decoded = decode(stored.topic, stored.state, str(stored.originator_id), 4)
    assert decoded == event and hash(decoded) == hash(event) and repr(decoded) == repr(event)
    assert type(decoded.event_id) is uuid.UUID and decoded.event_id.int == event.event_id.int
    assert decoded.meta == META and hash(decoded.meta) == hash(META)
    assert dataclasses.asdict(decoded) == dataclasses.asdict(event)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.assignee = "mallory"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.meta.actor = "mallory"  # type: ignore[misc]
    assert dataclasses.replace(decoded, assignee="dora").assignee == "dora"


def test_missing_payload_field_is_refused_like_the_constructor_refuses_it() -> None:
    state = {"_v": 2, "comment_id": "c1", "body": "hi", "event_id": str(uuid.uuid4()),
             "occurred_at": WHEN.isoformat(), "meta": dataclasses.asdict(META)}
    with pytest.raises(TypeError, match="parent_id"):
        decode("CommentAdded", orjson.dumps(state), uuid.uuid4(), 2)
    state["parent_id"] = None
    decoded = decode("CommentAdded", orjson.dumps(state), uuid.uuid4(), 2)
    assert isinstance(decoded, CommentAdded) and decoded.parent_id is None and decoded.body == "hi"


def test_unknown_payload_field_is_refused_like_the_constructor_refuses_it() -> None:
    body = orjson.loads(encode(_assigned()).state)
    body["smuggled"] = 1
    with pytest.raises(TypeError, match="smuggled"):
        decode("CaseAssigned", orjson.dumps(body), uuid.uuid4(), 1)


@pytest.mark.parametrize("spelling", [str, lambda u: u.hex, lambda u: "{" + str(u) + "}", lambda u: u.urn,
                                      lambda u: str(u).upper()])
def test_uuid_spellings_parse_like_the_constructor(spelling) -> None:  # type: ignore[no-untyped-def]
    value = uuid.uuid4()
    parsed = parse_uuid(spelling(value))
    assert parsed == value and hash(parsed) == hash(value) and str(parsed) == str(value)
    assert aggregate_uuid(spelling(value)) == value and aggregate_uuid(value) is value


@pytest.mark.parametrize("bad", ["", "not-a-uuid", "1234", "g" * 32])
def test_bad_uuid_text_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_uuid(bad)
