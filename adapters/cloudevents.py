"""CloudEvents 1.0 (JSON, structured mode) for domain events published to Kafka.

An event at log position P becomes::

    {"specversion": "1.0", "id": <event id>, "source": "casestream",
     "type": "casestream.<EventName>.v<class_version>", "subject": <aggregate id>, "time": <occurred_at>,
     "datacontenttype": "application/json", "data": <payload fields>,
     "tenant": ..., "correlationid": ..., "causationid": ..., "actor": ..., "commandid": ...,
     "position": P, "aggregateversion": <event.version>}

Extension attribute names are lower-case letters and digits only, as the spec requires. The payload is
always the event's current class_version (older stored payloads are upcast before publishing), and
`from_cloudevent` upcasts an older one again on the way in.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from adapters.codec import payload_fields
from domain.events import EVENT_TYPES, Event, Metadata, Positioned

SPECVERSION = "1.0"
SOURCE = "casestream"
TYPE_PREFIX = "casestream."
DATA_CONTENT_TYPE = "application/json"
# Kafka protocol binding, structured mode: the whole event is the record value, with this content-type header.
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
# Kafka record header: when the relay read the record's event from the store (Unix seconds, decimal ASCII).
# With the record's own timestamp (when it was sent) consumers can tell how long each stage of the trip took.
RELAY_READ_AT_HEADER = "casestream-relay-read-at"

# extension attribute -> where it comes from (Metadata field, or the event itself)
META_EXTENSIONS = {
    "tenant": "tenant",
    "correlationid": "correlation_id",
    "causationid": "causation_id",
    "actor": "actor",
    "commandid": "command_id",
}
EXTENSIONS = (*META_EXTENSIONS, "position", "aggregateversion")
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data")
_ATTRIBUTES = frozenset((*REQUIRED_ATTRIBUTES, *EXTENSIONS))


def ce_type(event_type: type[Event]) -> str:
    """The CloudEvents `type` of an event class: casestream.<Name>.v<class_version>."""
    return f"{TYPE_PREFIX}{event_type.type_name()}.v{event_type.class_version}"


@functools.lru_cache(maxsize=1024)
def parse_type(value: str) -> tuple[type[Event], int]:
    """casestream.<Name>.v<N> -> (event class, N) (remembered: a consumer parses the same few types all day)."""
    if not value.startswith(TYPE_PREFIX):
        raise ValueError(f"not a casestream event type: {value!r}")
    name, _, version = value[len(TYPE_PREFIX):].rpartition(".v")
    event_type = EVENT_TYPES.get(name)
    if event_type is None or not version.isdigit():
        raise ValueError(f"unknown event type {value!r}")
    number = int(version)
    if number > event_type.class_version:
        raise ValueError(f"{value!r} is newer than this code's {ce_type(event_type)}")
    return event_type, number


def payload(event: Event) -> dict[str, Any]:
    """The event's own fields (JSON-ready: orjson serialises what the event store stores)."""
    return {name: getattr(event, name) for name in payload_fields(type(event))}


def to_cloudevent(position: int, event: Event) -> dict[str, Any]:
    """A domain event at a log position, as a CloudEvents 1.0 structured-mode dict."""
    meta = event.meta
    return {
        "specversion": SPECVERSION,
        "id": str(event.event_id),
        "source": SOURCE,
        "type": ce_type(type(event)),
        "subject": str(event.aggregate_id),
        "time": event.occurred_at.isoformat(),
        "datacontenttype": DATA_CONTENT_TYPE,
        "data": payload(event),
        **{ext: getattr(meta, field) for ext, field in META_EXTENSIONS.items()},
        "position": position,
        "aggregateversion": event.version,
    }


def from_cloudevent(ce: dict[str, Any]) -> Positioned:
    """A CloudEvents dict (as made by to_cloudevent) -> the domain event with its position."""
    if ce.get("specversion") != SPECVERSION:
        raise ValueError(f"unsupported specversion {ce.get('specversion')!r}")
    if not ce.keys() >= _ATTRIBUTES:
        missing = [name for name in (*REQUIRED_ATTRIBUTES, *EXTENSIONS) if name not in ce]
        raise ValueError(f"cloudevent lacks {', '.join(missing)}")
    event_type, version = parse_type(ce["type"])
    data = ce["data"]
    if not isinstance(data, dict):
        raise ValueError("a cloudevent's data is a JSON object")
    if version != event_type.class_version:
        data = event_type.upcast(dict(data), version)
    meta = Metadata(**{field: ce[ext] for ext, field in META_EXTENSIONS.items()})
    event = event_type(
        event_id=UUID(ce["id"]),
        aggregate_id=UUID(ce["subject"]),
        version=int(ce["aggregateversion"]),
        occurred_at=datetime.fromisoformat(ce["time"]),
        meta=meta,
        **data,
    )
    return Positioned(int(ce["position"]), event)


def dumps(ce: dict[str, Any]) -> bytes:
    return orjson.dumps(ce)


def loads(raw: bytes) -> dict[str, Any]:
    value = orjson.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("a cloudevent is a JSON object")
    return value
