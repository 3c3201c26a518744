"""Read models of definitions, queues, record types and records."""

from __future__ import annotations

from domain import definition as d
from domain import reference as r
from projections.base import Doc, Projection


def _definition(doc: Doc | None, e: d.DefinitionPublished) -> Doc:
    versions = [*(doc or {}).get("versions", []), {"version": e.definition_version, "spec": e.spec}]
    return {
        "id": str(e.aggregate_id), "tenant": e.tenant, "key": e.spec["key"], "name": e.spec["name"],
        "latest_version": e.definition_version, "latest": e.spec, "versions": versions,
        # the latest version's access rules (who may read and change its cases); {} when it has none
        "access": e.spec.get("access") or {},
        "updated_at": e.occurred_at.isoformat(),
    }


def _queue(_doc: Doc | None, e: r.QueueDefined) -> Doc:
    return {"id": str(e.aggregate_id), "tenant": e.tenant, "key": e.key, "name": e.name,
            "description": e.description}


def _record_type(_doc: Doc | None, e: r.RecordTypeDefined) -> Doc:
    return {"id": str(e.aggregate_id), "tenant": e.tenant, "key": e.key, "name": e.name, "schema": e.schema}


def _record_saved(_doc: Doc | None, e: r.RecordSaved) -> Doc:
    return {"id": str(e.aggregate_id), "tenant": e.tenant, "type_key": e.type_key, "key": e.key,
            "data": e.data, "version": e.version, "updated_at": e.occurred_at.isoformat()}


def _record_removed(_doc: Doc | None, _e: r.RecordRemoved) -> Doc | None:
    return None


DEFINITIONS = Projection("definitions", {d.DefinitionPublished: _definition}, indexes=("key",))
QUEUES = Projection("queues", {r.QueueDefined: _queue}, indexes=("key",))
RECORD_TYPES = Projection("record_types", {r.RecordTypeDefined: _record_type}, indexes=("key",))
RECORDS = Projection(
    "records",
    {r.RecordSaved: _record_saved, r.RecordRemoved: _record_removed},
    indexes=("type_key",),
)
