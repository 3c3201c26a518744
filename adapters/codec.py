"""orjson transcoding between domain events and the event store's (topic, bytes) records.

The topic is the event type's name; the payload carries `_v`, the class_version it was written with,
so an older payload is upcast on the way in.

Decoding is the hot loop of every rebuild and runner batch, so each event type gets a decoder built once:
it fills the frozen dataclass's `__dict__` directly (what its generated `__init__` does field by field)
when the payload has exactly the type's fields, and falls back to the constructor otherwise (defaults,
unknown keys and their errors stay the constructor's). UUIDs are parsed without `UUID.__init__`'s
string juggling, and aggregate ids, repeated across a case's events, are cached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID, SafeUUID

import orjson
from eventsourcing.persistence import StoredEvent

import domain  # noqa: F401 - registers every event type
from domain import case, command_log, definition, numbering, reference  # noqa: F401
from domain.events import EVENT_TYPES, Event, Metadata
from projections.texts import remember_uuid_text

_BASE_FIELDS = {"event_id", "aggregate_id", "version", "occurred_at", "meta"}
_PAYLOAD_FIELDS: dict[type[Event], tuple[str, ...]] = {}
_META_FIELDS = tuple(f.name for f in dataclasses.fields(Metadata))
_META_KEYS = frozenset(_META_FIELDS)

Decoder = Callable[[bytes | str, UUID | str, int], Event]
_DECODERS: dict[str, Decoder] = {}
_AGGREGATE_IDS: dict[str, UUID] = {}
_AGGREGATE_ID_CACHE = 100_000

_new = object.__new__
_set = object.__setattr__
_SAFE_UNKNOWN = SafeUUID.unknown
_fromisoformat = datetime.fromisoformat


def payload_fields(event_type: type[Event]) -> tuple[str, ...]:
    """Names of an event type's own (payload) fields."""
    names = _PAYLOAD_FIELDS.get(event_type)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(event_type) if f.name not in _BASE_FIELDS)
        _PAYLOAD_FIELDS[event_type] = names
    return names


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event as a JSON-ready dict (ids and times as strings)."""
    body: dict[str, Any] = {name: getattr(event, name) for name in payload_fields(type(event))}
    body["_v"] = event.class_version
    body["event_id"] = str(event.event_id)
    body["occurred_at"] = event.occurred_at.isoformat()
    meta = event.meta
    body["meta"] = {name: getattr(meta, name) for name in _META_FIELDS}
    return body


def encode(event: Event) -> StoredEvent:
    """Domain event -> stored event."""
    return StoredEvent(
        originator_id=event.aggregate_id,
        originator_version=event.version,
        topic=event.type_name(),
        state=orjson.dumps(event_to_dict(event)),
    )


def parse_uuid(text: str) -> UUID:
    """UUID(text), without the constructor's prefix and brace handling for the plain 36/32-character forms."""
    digits = text.replace("-", "")
    if len(digits) != 32 or text[0] in "{uU":
        return UUID(text)
    value = _new(UUID)
    _set(value, "int", int(digits, 16))
    _set(value, "is_safe", _SAFE_UNKNOWN)
    return value


def event_uuid(text: str) -> UUID:
    """parse_uuid(text); a canonical text (what str() gives back: 36 ASCII characters, lower-case hex, dashes in
    place) is remembered for the folds' `uuid_text`, which would otherwise format the id again for each read
    model. The canonical form is checked and parsed in one pass (the decoder calls this for every event)."""
    if len(text) == 36 and text[8] == text[13] == text[18] == text[23] == "-":
        digits = text.replace("-", "")
        # int() takes signs, underscores, spaces and non-ASCII digits too: only plain ASCII hex is canonical
        if len(digits) == 32 and digits.isascii() and digits.isalnum() and (digits.islower() or digits.isdigit()):
            value = _new(UUID)
            _set(value, "int", int(digits, 16))
            _set(value, "is_safe", _SAFE_UNKNOWN)
            remember_uuid_text(value, text)
            return value
    return parse_uuid(text)


def aggregate_uuid(value: UUID | str) -> UUID:
    """An aggregate id as a UUID (a bounded cache: one case's many events share it)."""
    if isinstance(value, UUID):
        return value
    found = _AGGREGATE_IDS.get(value)
    if found is None:
        found = parse_uuid(value)
        if len(_AGGREGATE_IDS) >= _AGGREGATE_ID_CACHE:
            _AGGREGATE_IDS.clear()
        _AGGREGATE_IDS[value] = found
    return found


def _metadata(meta: dict[str, Any]) -> Metadata:
    if meta.keys() == _META_KEYS:
        built = _new(Metadata)
        _set(built, "__dict__", meta)
        return built
    return Metadata(**meta)


def _fast_path_ok(event_type: type[Event]) -> bool:
    """Whether filling `__dict__` is exactly what the generated __init__ would do for this type."""
    params = event_type.__dataclass_params__  # type: ignore[attr-defined]
    return (
        not hasattr(event_type, "__post_init__")
        and "__slots__" not in event_type.__dict__
        and params.init
        and all(f.init for f in dataclasses.fields(event_type))
    )


def decoder_for(topic: str) -> Decoder:
    """The decoder of one event type name (built once): (state, aggregate_id, version) -> event."""
    found = _DECODERS.get(topic)
    if found is not None:
        return found
    event_type = EVENT_TYPES.get(topic)
    if event_type is None:
        raise ValueError(f"unknown event type {topic!r} in the event store")
    current = event_type.class_version
    keys = frozenset(payload_fields(event_type)) | {"event_id", "occurred_at", "meta"}
    fast = _fast_path_ok(event_type)
    loads = orjson.loads

    def decode_one(state: bytes | str, aggregate_id: UUID | str, version: int) -> Event:
        body = loads(state)
        stored_version = body.pop("_v", 1)
        if stored_version != current:
            body = event_type.upcast(body, stored_version)
        if fast and body.keys() == keys:
            body["event_id"] = event_uuid(body["event_id"])
            body["aggregate_id"] = aggregate_uuid(aggregate_id)
            body["version"] = version
            body["occurred_at"] = _fromisoformat(body["occurred_at"])
            body["meta"] = _metadata(body["meta"])
            event = _new(event_type)
            _set(event, "__dict__", body)
            return event
        meta = body.pop("meta")
        return event_type(
            event_id=UUID(body.pop("event_id")),
            aggregate_id=aggregate_uuid(aggregate_id),
            version=version,
            occurred_at=_fromisoformat(body.pop("occurred_at")),
            meta=Metadata(**meta),
            **body,
        )

    _DECODERS[topic] = decode_one
    return decode_one


def decode(topic: str, state: bytes, aggregate_id: UUID | str, version: int) -> Event:
    """Stored record -> domain event, upcasting an older payload first."""
    decoder = _DECODERS.get(topic) or decoder_for(topic)
    return decoder(state, aggregate_id, version)


def decode_stored(stored: StoredEvent) -> Event:
    return decode(stored.topic, stored.state, stored.originator_id, stored.originator_version)
