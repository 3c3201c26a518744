"""Operator queries over the `incidents` and `process_instances` read models (never the event store): filtered,
newest first, cursor-paged like every other list."""

from __future__ import annotations

from typing import Any

import orjson

from domain.errors import FieldError, NotFound, ValidationFailed
from projections.base import Doc
from projections.ports import DocumentStore, Query
from projections.queries import MAX_LIMIT, Page, decode_cursor, encode_cursor

INCIDENT_STATES = ("open", "resolved")
INSTANCE_STATES = ("running", "completed", "cancelled")


def _page(documents: DocumentStore, collection: str, tenant: str, filters: dict[str, Any], sort: str, limit: int,
          cursor: str | None) -> tuple[list[Doc], str | None]:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed("the query is not valid", [FieldError("limit", f"between 1 and {MAX_LIMIT}")])
    after = decode_cursor(cursor) if cursor else None
    docs = documents.find(Query(collection=collection, tenant=tenant, filters=filters, sort=sort, descending=True,
                                limit=limit + 1, after=after))
    more = len(docs) > limit
    docs = docs[:limit]
    return docs, encode_cursor(docs[-1][sort], docs[-1]["id"]) if more and docs else None


def _one_of(name: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise ValidationFailed("the query is not valid", [FieldError(name, f"one of {', '.join(allowed)}")])


def list_incidents(documents: DocumentStore, tenant: str, *, state: str | None = None, process_id: str | None = None,
                   case_id: str | None = None, instance_id: str | None = None, limit: int = 50,
                   cursor: str | None = None) -> Page:
    """A tenant's incidents, newest first, filtered by state, process, case and instance."""
    _one_of("state", state, INCIDENT_STATES)
    filters = {k: v for k, v in {"state": state, "process_id": process_id, "case_id": case_id,
                                 "instance_id": instance_id}.items() if v is not None}
    docs, next_cursor = _page(documents, "incidents", tenant, filters, "created_at", limit, cursor)
    return Page(docs, next_cursor)


def get_incident(documents: DocumentStore, tenant: str, incident_id: str) -> Doc:
    """One incident (404 when missing or of another tenant)."""
    found = documents.get("incidents", incident_id)
    if found is None or found[0] is None or found[0]["tenant"] != tenant:
        raise NotFound(f"incident {incident_id} not found")
    return found[0]


def _instance(doc: Doc, *, detail: bool) -> Doc:
    out = {k: v for k, v in doc.items() if k not in ("variables_json", "elements")}
    out["elements"] = sorted(doc["elements"].values(), key=lambda e: (e["element_id"], e["state"]))
    if detail:
        out["variables"] = orjson.loads(doc["variables_json"])
    return out


def list_instances(documents: DocumentStore, tenant: str, *, process_id: str | None = None,
                   case_id: str | None = None, state: str | None = None, has_incident: bool | None = None,
                   limit: int = 50, cursor: str | None = None) -> Page:
    """A tenant's process instances, newest first, filtered by process, case, state and open incidents."""
    _one_of("state", state, INSTANCE_STATES)
    filters = {k: v for k, v in {"process_id": process_id, "case_id": case_id, "state": state,
                                 "has_incident": has_incident}.items() if v is not None}
    docs, next_cursor = _page(documents, "process_instances", tenant, filters, "started_at", limit, cursor)
    return Page([_instance(d, detail=False) for d in docs], next_cursor)


def get_instance(documents: DocumentStore, tenant: str, instance_id: str) -> Doc:
    """One process instance with its variables and current elements (404 when missing or of another tenant)."""
    found = documents.get("process_instances", instance_id)
    if found is None or found[0] is None or found[0]["tenant"] != tenant:
        raise NotFound(f"process instance {instance_id} not found")
    doc = _instance(found[0], detail=True)
    doc["position"] = found[1]
    return doc
