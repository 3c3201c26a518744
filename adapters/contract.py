"""The published topic contract: which events go to which Kafka topic, and the schema of each, from the code.

- `TOPIC_FAMILIES` / `INTERNAL_MODULES`: event families by defining module. An event type in neither
  fails the contract tests, so a new event is published (or kept internal) by decision, not by accident.
- `event_schema(cls)`: JSON Schema (2020-12) of the CloudEvents envelope with the event's payload as `data`,
  derived from the dataclass fields and their type hints.
- `asyncapi(...)`: an AsyncAPI 3.0 document listing channels (topics), messages and schemas.
- `incompatibilities(committed, generated)`: what breaks consumers when a schema changes under the same
  `class_version` (removed, renamed or retyped field, added required field); adding an optional field
  (one with a default) is compatible.
- `export(folder)` writes docs/contract/; `casestream contract export` calls it.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Union
from uuid import UUID

from adapters.cloudevents import (
    DATA_CONTENT_TYPE,
    RELAY_READ_AT_HEADER,
    SOURCE,
    SPECVERSION,
    STRUCTURED_CONTENT_TYPE,
    TYPE_PREFIX,
)
from adapters.codec import payload_fields
from domain.events import EVENT_TYPES, Event

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# 1.1.0: the casestream-relay-read-at record header; 1.2.0: the relay's partition spans beside its heads, for
# read-your-writes (both additive; docs/topics.md); 1.3.0: process deployments published on <prefix>.deployment.v1
# (a new topic taking records up to MAX_DEPLOYMENT_RECORD)
CONTRACT_VERSION = "1.3.0"
DEFAULT_PREFIX = "casestream"
DEFAULT_PARTITIONS = 6

# family -> (topic stem, defining modules, description). The topic is f"{prefix}.{stem}.v1".
TOPIC_FAMILIES: dict[str, tuple[tuple[str, ...], str]] = {
    "case": (
        ("domain.case",),
        "Case lifecycle, data, stage, assignment, queue and comment events. Key: case id.",
    ),
    "definition": (
        ("domain.definition",),
        "Case definitions published (every version). Key: definition id.",
    ),
    "reference": (
        ("domain.reference",),
        "Reference data: queues, record types and records. Key: the queue, record type or record id.",
    ),
    "task": (
        ("domain.task",),
        "User tasks (ad hoc or from a process): created, claimed, completed, cancelled, reprioritised. Key: task id;"
        " each event names its case in `case_id`.",
    ),
    "document": (
        ("domain.document",),
        "Documents on cases: uploads requested, attached, new versions, renamed, removed, legal hold on and off."
        " Key: document id; each event names its case in `case_id`. Bytes are in object storage, never in events.",
    ),
    "email": (
        ("domain.message",),
        "E-mail of cases, in and out: received, composed, sent, failed to send, set aside (quarantined or ignored)."
        " Key: message id; `case_id` names the case (`EmailSetAside` has none). Raw bytes and attachments"
        " are in object storage, never in events.",
    ),
    "process": (
        ("domain.process",),
        "Process instances: started, advanced, jobs failed, incidents, BPMN errors, timers, messages, compensation,"
        " completed. Key: process instance id; `case_id` names the case. `delta` is the engine's opaque state change.",
    ),
    "deployment": (
        ("domain.process_deployment",),
        "Process deployments: every version of every BPMN process, DMN file and form-js form deployed, with the file"
        " exactly as deployed (`xml`) and the forms deployed with a process. Key: the deployments id of the tenant"
        " (tenant `*`: the processes shipped with casestream, which every tenant sees). A record carries the whole"
        " file: the topic takes records up to 16 MiB (`max.message.bytes`).",
    ),
    "audit": (
        ("domain.audit",),
        "The audit log: refused commands (coalesced per actor, action and reasons in a window, with a count) and"
        " membership changes. Key: audit entry id.",
    ),
}
TOPIC_MAJOR = 1
# Bookkeeping that stays inside the event store: the command log (idempotency entries with fingerprints
# and results) and the case-number sequences (CaseOpened already carries the number). Process deployments are
# published (contract 1.3.0) for the read side's `processes` and `process_versions` read models; the engines still
# learn them from the event store (processes/deployment_follower.py).
INTERNAL_MODULES = ("domain.command_log", "domain.numbering",
                    "domain.process_message", "domain.process_operation", "domain.process_signal")
# Kafka's default record limit is 1 MiB (the broker's message.max.bytes, the producer's max_request_size); a deployment
# carries its whole file (up to 1,000,000 characters: more bytes in UTF-8 and JSON escaping) and its forms, so its
# topic is created with a larger max.message.bytes and the relay's producer sends records up to this size.
MAX_DEPLOYMENT_RECORD = 16 * 1024 * 1024
TOPIC_CONFIGS: dict[str, dict[str, str]] = {"deployment": {"max.message.bytes": str(MAX_DEPLOYMENT_RECORD)}}
# Event types register themselves when their module is imported: import every family's module here, so the
# contract, the relay and every consumer decoding CloudEvents know all of them whatever else was imported.
for _module in (*(m for modules, _ in TOPIC_FAMILIES.values() for m in modules), *INTERNAL_MODULES):
    importlib.import_module(_module)


def topic_name(family: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}.{family}.v{TOPIC_MAJOR}"


def topic_config(topic: str) -> dict[str, str]:
    """The topic-level settings a family's topic is created with (any prefix), e.g. a larger record limit."""
    for family, config in TOPIC_CONFIGS.items():
        if topic.endswith(f".{family}.v{TOPIC_MAJOR}"):
            return dict(config)
    return {}


def family_of(event_type: type[Event]) -> str | None:
    """The family an event type is published in; None for internal events. Raises for unmapped types."""
    module = event_type.__module__
    for family, (modules, _description) in TOPIC_FAMILIES.items():
        if module in modules:
            return family
    if module in INTERNAL_MODULES:
        return None
    raise LookupError(
        f"event type {event_type.__name__} ({module}) has no topic family: add its module to "
        "adapters.contract.TOPIC_FAMILIES or INTERNAL_MODULES"
    )


def published_types() -> dict[str, str]:
    """Event type name -> family, for every published event type."""
    out: dict[str, str] = {}
    for name, event_type in sorted(EVENT_TYPES.items()):
        family = family_of(event_type)
        if family is not None:
            out[name] = family
    return out


def topics(prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """Event type name -> topic, for every published event type."""
    return {name: topic_name(family, prefix) for name, family in published_types().items()}


# --- JSON Schema from type hints ---------------------------------------------------------------------

def type_schema(hint: Any) -> dict[str, Any]:
    """JSON Schema of one type hint (the subset event payloads use)."""
    if hint is Any:
        return {}
    if hint is str:
        return {"type": "string"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is type(None):
        return {"type": "null"}
    if hint is UUID:
        return {"type": "string", "format": "uuid"}
    if hint is datetime:
        return {"type": "string", "format": "date-time"}
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, Union):
        return {"anyOf": [type_schema(arg) for arg in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple):
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            args = args[:1]
        items = type_schema(args[0]) if len(args) == 1 else {}
        return {"type": "array", "items": items}
    if origin is dict or hint is dict:
        values = type_schema(args[1]) if len(args) == 2 else {}
        return {"type": "object", "additionalProperties": values} if values else {"type": "object"}
    raise TypeError(f"no JSON Schema mapping for type hint {hint!r}")


def data_schema(event_type: type) -> dict[str, Any]:
    """JSON Schema of an event's payload (its own dataclass fields)."""
    hints = typing.get_type_hints(event_type)
    fields = {f.name: f for f in dataclasses.fields(event_type)}
    names = payload_fields(event_type) if issubclass(event_type, Event) else tuple(fields)
    properties = {name: type_schema(hints[name]) for name in names}
    required = [
        name for name in names
        if fields[name].default is dataclasses.MISSING and fields[name].default_factory is dataclasses.MISSING
    ]
    # open to new fields: consumers ignore what they do not know, so adding an optional field is compatible
    return {"type": "object", "properties": properties, "required": required}


def schema_key(name: str, version: int) -> str:
    return f"{name}.v{version}"


def event_schema(event_type: type) -> dict[str, Any]:
    """JSON Schema of the whole CloudEvent carrying this event type (envelope + `data`)."""
    name = event_type.__name__
    version = int(event_type.class_version)  # type: ignore[attr-defined]
    doc = (event_type.__doc__ or "").strip().splitlines()
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:casestream:event:{schema_key(name, version)}",
        "title": f"{name} v{version}",
        "description": doc[0] if doc else name,
        "type": "object",
        "properties": {
            "specversion": {"const": SPECVERSION},
            "id": {"type": "string", "format": "uuid", "description": "The event id (unique; stable across resends)."},
            "source": {"const": SOURCE},
            "type": {"const": f"{TYPE_PREFIX}{name}.v{version}"},
            "subject": {"type": "string", "format": "uuid", "description": "The aggregate id (also the record key)."},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": DATA_CONTENT_TYPE},
            "data": data_schema(event_type),
            "tenant": {"type": "string"},
            "correlationid": {"type": "string"},
            "causationid": {"type": "string"},
            "actor": {"type": "string"},
            "commandid": {"type": "string"},
            "position": {
                "type": "integer", "minimum": 1,
                "description": "Position in the global, gap-free event log: consumers dedupe by it.",
            },
            "aggregateversion": {"type": "integer", "minimum": 1},
        },
        "required": [
            "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data",
            "tenant", "correlationid", "causationid", "actor", "commandid", "position", "aggregateversion",
        ],
    }


def event_schemas() -> dict[str, dict[str, Any]]:
    """'Name.vN' -> schema, for every published event type at its current class_version."""
    return {
        schema_key(name, EVENT_TYPES[name].class_version): event_schema(EVENT_TYPES[name])
        for name in published_types()
    }


# --- compatibility -----------------------------------------------------------------------------------

def _split(key: str) -> tuple[str, int]:
    name, _, version = key.rpartition(".v")
    return name, int(version)


def _object_changes(path: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    old_props: Mapping[str, Any] = old.get("properties", {})
    new_props: Mapping[str, Any] = new.get("properties", {})
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    for name, old_schema in old_props.items():
        where = f"{path}.{name}" if path else name
        if name not in new_props:
            problems.append(f"{where} was removed (or renamed)")
            continue
        new_schema = new_props[name]
        if "properties" in old_schema and "properties" in new_schema:
            problems.extend(_object_changes(where, old_schema, new_schema))
            if old_schema.get("type") != new_schema.get("type"):
                problems.append(f"{where} changed type")
        elif _shape(old_schema) != _shape(new_schema):
            problems.append(f"{where} changed type: {_shape(old_schema)} -> {_shape(new_schema)}")
        if name in old_required and name not in new_required:
            problems.append(f"{where} is no longer required (consumers rely on it)")
    for name in sorted(new_required - old_required):
        if name in new_props:
            where = f"{path}.{name}" if path else name
            problems.append(f"{where} is a new required field")
    if old.get("additionalProperties") is not False and new.get("additionalProperties") is False:
        problems.append(f"{path or 'event'} no longer allows additional properties")
    return problems


def _shape(schema: Mapping[str, Any]) -> str:
    """The parts of a property schema a consumer depends on (descriptions do not count)."""
    kept = {k: v for k, v in schema.items() if k not in ("description", "title", "examples")}
    return json.dumps(kept, sort_keys=True)


def incompatibilities(committed: Mapping[str, dict[str, Any]], generated: Mapping[str, dict[str, Any]]) -> list[str]:
    """Breaking differences between committed schemas and the ones generated from the code.

    Keys are 'Name.vN'. A schema is compared with the committed one of the same name and version; a new
    version (class_version bumped) starts a new contract and is not compared. An event type that
    disappears, or whose version goes down, is also reported.
    """
    problems: list[str] = []
    committed_versions: dict[str, int] = {}
    for key in committed:
        name, version = _split(key)
        committed_versions[name] = max(version, committed_versions.get(name, 0))
    generated_names = {_split(key)[0]: _split(key)[1] for key in generated}
    for name, top in sorted(committed_versions.items()):
        if name not in generated_names:
            problems.append(f"{name}: published event type removed from the contract")
        elif generated_names[name] < top:
            problems.append(f"{name}: class_version {generated_names[name]} is below the published v{top}")
    for key, new in sorted(generated.items()):
        old = committed.get(key)
        if old is None:
            continue
        problems.extend(
            f"{key}: {change} without a class_version bump (bump it and add an upcaster)"
            for change in _object_changes("", old, new)
        )
    return problems


# --- AsyncAPI ----------------------------------------------------------------------------------------

def _channel_id(family: str) -> str:
    return f"{family}Events"


# the Kafka record headers of every published message (1.1.0 added the relay's read time; consumers ignore
# headers they do not know, so adding one is compatible)
RECORD_HEADERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "content-type": {"type": "string", "const": STRUCTURED_CONTENT_TYPE},
        RELAY_READ_AT_HEADER: {
            "type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$",
            "description": "When the relay read the event from the event store: Unix seconds, decimal ASCII (since "
                           "contract 1.1.0; for measuring the trip's stages, never for ordering).",
        },
    },
    "required": ["content-type"],
}


def _topic_configuration(family: str) -> dict[str, Any]:
    """The Kafka binding's topicConfiguration of a family whose topic has its own settings (none: nothing)."""
    config = TOPIC_CONFIGS.get(family)
    return {"topicConfiguration": {k: int(v) for k, v in config.items()}} if config else {}


def asyncapi(prefix: str = DEFAULT_PREFIX, partitions: int = DEFAULT_PARTITIONS) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the published topics (generated from the code)."""
    published = published_types()
    schemas = event_schemas()
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for family, (_modules, description) in TOPIC_FAMILIES.items():
        names = [name for name, fam in published.items() if fam == family]
        channel = _channel_id(family)
        channels[channel] = {
            "address": topic_name(family, prefix),
            "description": description,
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
            "bindings": {"kafka": {"topic": topic_name(family, prefix), "partitions": partitions,
                                   **_topic_configuration(family), "bindingVersion": "0.5.0"}},
        }
        operations[f"publish{family.capitalize()}Events"] = {
            "action": "send",
            "title": f"The relay publishes {family} events",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in names],
        }
    for name in published:
        event_type = EVENT_TYPES[name]
        key = schema_key(name, event_type.class_version)
        doc = (event_type.__doc__ or name).strip()
        messages[name] = {
            "name": name,
            "title": f"{name} v{event_type.class_version}",
            "summary": doc.splitlines()[0],
            "contentType": STRUCTURED_CONTENT_TYPE.split(";")[0],
            "headers": {"$ref": "#/components/schemas/RecordHeaders"},
            "payload": {"$ref": f"#/components/schemas/{key}"},
            "bindings": {"kafka": {"key": {"type": "string", "format": "uuid",
                                           "description": "The aggregate id (CloudEvents subject)."},
                                   "bindingVersion": "0.5.0"}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "casestream events",
            "version": CONTRACT_VERSION,
            "description": (
                "Domain events relayed from the event store's notification log, as CloudEvents 1.0 in structured "
                "mode (JSON). Record key = aggregate id, so one aggregate's events stay in order in one partition. "
                "Delivery is at-least-once: deduplicate by the `position` extension."
            ),
        },
        "defaultContentType": STRUCTURED_CONTENT_TYPE.split(";")[0],
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": {
                "RecordHeaders": RECORD_HEADERS,
                **{key: {k: v for k, v in s.items() if k != "$schema"} for key, s in schemas.items()},
            },
        },
    }


# --- files -------------------------------------------------------------------------------------------

def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def load_committed(folder: Path) -> dict[str, dict[str, Any]]:
    """The schemas committed under folder/schemas ('Name.vN' -> schema)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((folder / "schemas").glob("*.json")):
        out[path.name.removesuffix(".json")] = json.loads(path.read_text())
    return out


def rendered(prefix: str = DEFAULT_PREFIX, partitions: int = DEFAULT_PARTITIONS) -> dict[str, str]:
    """Relative path -> file content, for everything `export` writes."""
    files = {f"schemas/{key}.json": _dump(schema) for key, schema in event_schemas().items()}
    files["asyncapi.json"] = _dump(asyncapi(prefix, partitions))
    return files


def export(folder: Path, *, allow_breaking: bool = False) -> list[Path]:
    """Write the contract to folder (schemas of older versions already there are kept); return written paths.

    Refuses (ValueError) when the code's schemas break the committed ones, unless allow_breaking.
    """
    problems = incompatibilities(load_committed(folder), event_schemas())
    if problems and not allow_breaking:
        raise ValueError("incompatible event schema changes:\n  " + "\n  ".join(problems))
    written = []
    for relative, content in rendered().items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != content:
            path.write_text(content)
        written.append(path)
    return written
