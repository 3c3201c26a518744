"""orjson transcoding between domain events and the event store's (topic, bytes) records.

The topic is the event type's name; the payload carries `_v`, the class_version it was written with,
so an older payload is upcast on the way in.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent

import domain  # noqa: F401 - registers every event type
from domain import case, command_log, definition, numbering, reference  # noqa: F401
from domain.events import EVENT_TYPES, Event, Metadata

_BASE_FIELDS = {"event_id", "aggregate_id", "version", "occurred_at", "meta"}
_PAYLOAD_FIELDS: dict[type[Event], tuple[str, ...]] = {}


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
    body["meta"] = dataclasses.asdict(event.meta)
    return body


def encode(event: Event) -> StoredEvent:
    """Domain event -> stored event."""
    return StoredEvent(
        originator_id=event.aggregate_id,
        originator_version=event.version,
        topic=event.type_name(),
        state=orjson.dumps(event_to_dict(event)),
    )


def decode(topic: str, state: bytes, aggregate_id: UUID | str, version: int) -> Event:
    """Stored record -> domain event, upcasting an older payload first."""
    event_type = EVENT_TYPES.get(topic)
    if event_type is None:
        raise ValueError(f"unknown event type {topic!r} in the event store")
    body = orjson.loads(state)
    stored_version = body.pop("_v", 1)
    if stored_version != event_type.class_version:
        body = event_type.upcast(body, stored_version)
    meta = body.pop("meta")
    return event_type(
        event_id=UUID(body.pop("event_id")),
        aggregate_id=aggregate_id if isinstance(aggregate_id, UUID) else UUID(aggregate_id),
        version=version,
        occurred_at=datetime.fromisoformat(body.pop("occurred_at")),
        meta=Metadata(**meta),
        **body,
    )


def decode_stored(stored: StoredEvent) -> Event:
    return decode(stored.topic, stored.state, stored.originator_id, stored.originator_version)
