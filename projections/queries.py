"""Queries over the read models (never the event store): case list, detail, timeline, kanban, counts.

Each takes the reader's ReadScope (projections/read_scope.py; None: everything, for tools and tests) and filters
rows by it inside the query; a case outside it is "not found", exactly like a case that does not exist.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from domain.errors import FieldError, NotFound, ValidationFailed
from projections.base import Doc
from projections.ports import DocumentStore, In, Query
from projections.read_scope import ReadScope

CASE_FILTERS = ("definition_key", "status", "stage", "queue", "assignee")
CASE_SORTS = ("updated_at", "opened_at", "number", "title")
MAX_LIMIT = 200


@dataclass(frozen=True)
class Page:
    """One page of a list and the cursor of the next (None on the last page)."""

    items: list[Doc]
    next_cursor: str | None


def encode_cursor(value: Any, key: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([value, key])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, key = orjson.loads(raw)
        if not isinstance(key, str):
            raise ValueError(key)
        return value, key
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise ValidationFailed("cursor is not valid", [FieldError("cursor", "not a cursor from this API")]) from None


def _summary(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k not in ("comments", "search")}


def list_cases(
    documents: DocumentStore, tenant: str, *, filters: dict[str, Any] | None = None, text: str | None = None,
    sort: str = "updated_at", descending: bool = True, limit: int = 50, cursor: str | None = None,
    scope: ReadScope | None = None,
) -> Page:
    """Cases of a tenant the reader may see, filtered, searched, sorted and paginated by keyset cursor."""
    filters = {k: v for k, v in (filters or {}).items() if v is not None}
    unknown = [k for k in filters if k not in CASE_FILTERS]
    if unknown:
        allowed = f"filters: {', '.join(CASE_FILTERS)}"
        raise ValidationFailed("unknown filter", [FieldError(k, allowed) for k in unknown])
    if sort not in CASE_SORTS:
        raise ValidationFailed(f"cannot sort by {sort!r}", [FieldError("sort", f"one of {', '.join(CASE_SORTS)}")])
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed("limit out of range", [FieldError("limit", f"between 1 and {MAX_LIMIT}")])
    if scope is not None:
        filters = scope.narrow(filters)
    query = Query(
        collection="cases", tenant=tenant, filters=filters, text=text or None, sort=sort,
        descending=descending, limit=limit + 1, after=decode_cursor(cursor) if cursor else None,
    )
    docs = documents.find(query)
    more = len(docs) > limit
    docs = docs[:limit]
    next_cursor = encode_cursor(docs[-1][sort], docs[-1]["id"]) if more and docs else None
    return Page([_summary(d) for d in docs], next_cursor)


def get_case(documents: DocumentStore, tenant: str, case_id: str, scope: ReadScope | None = None) -> Doc:
    """One case (404 when missing, of another tenant, or not readable: all three look the same)."""
    found = documents.get("cases", case_id)
    if (found is None or found[0] is None or found[0]["tenant"] != tenant
            or (scope is not None and not scope.allows(found[0]["definition_key"]))):
        raise NotFound(f"case {case_id} not found")
    doc = dict(found[0])
    doc.pop("search", None)
    doc["position"] = found[1]
    return doc


def case_timeline(documents: DocumentStore, tenant: str, case_id: str, scope: ReadScope | None = None) -> list[Doc]:
    """Every entry of one readable case (its tasks' and processes' too), in log order."""
    get_case(documents, tenant, case_id, scope)
    entries = documents.find_positioned(
        Query("timeline", tenant, {"case_id": case_id}, sort="at", descending=False, limit=10_000)
    )
    # log order: the case's own events and those of its tasks and processes (whose versions count their own
    # aggregate, not the case) interleave as they happened
    return [entry for _position, entry in sorted(entries, key=lambda pe: pe[0])]


def get_definition(documents: DocumentStore, tenant: str, key: str, scope: ReadScope | None = None) -> Doc:
    """One definition whose cases the reader may see (404 otherwise)."""
    found = documents.find(Query("definitions", tenant, {"key": key}, sort="updated_at", limit=1))
    if not found or (scope is not None and not scope.allows(key)):
        raise NotFound(f"case definition {key!r} not found")
    return found[0]


def list_collection(
    documents: DocumentStore, collection: str, tenant: str, scope: ReadScope | None = None, **filters: Any,
) -> list[Doc]:
    """Every document of a small reference collection (definitions, queues, record types, records); with a scope,
    only if it may read reference data (else Forbidden), and only the definitions whose cases it may see."""
    if scope is not None:
        scope.require_reference()
        if collection == "definitions" and scope.definitions is not None:
            filters = {**filters, "key": In(tuple(sorted(scope.definitions)))}
    return documents.find(Query(collection, tenant, filters, sort="key", descending=False, limit=10_000))


def kanban(
    documents: DocumentStore, tenant: str, definition_key: str, per_column: int = 50, scope: ReadScope | None = None,
) -> Doc:
    """Columns in stage order, each with its open cases as cards (the definition's card fields); 404 for a
    definition whose cases the reader may not see."""
    definition = get_definition(documents, tenant, definition_key, scope)
    spec = definition["latest"]
    counts = documents.count_by("cases", tenant, "stage", {"definition_key": definition_key, "status": "open"})
    columns = []
    for stage in spec["stages"]:
        docs = documents.find(Query(
            "cases", tenant, {"definition_key": definition_key, "status": "open", "stage": stage["key"]},
            limit=per_column,
        ))
        cards = [{
            "id": d["id"], "number": d["number"], "title": d["title"], "assignee": d["assignee"],
            "version": d["version"], "updated_at": d["updated_at"],
            "fields": {f: d["data"].get(f) for f in spec.get("card_fields", [])},
        } for d in docs]
        columns.append({
            "stage": stage["key"], "name": stage["name"], "transitions": stage["transitions"],
            "count": counts.get(stage["key"], 0), "cards": cards,
        })
    return {"definition_key": definition_key, "name": spec["name"], "columns": columns}


def case_counts(
    documents: DocumentStore, tenant: str, definition_key: str | None = None, scope: ReadScope | None = None,
) -> Doc:
    """Counts of the readable cases per status, stage, queue, definition and assignee."""
    filters: dict[str, Any] = {"definition_key": definition_key} if definition_key else {}
    if scope is not None:
        filters = scope.narrow(filters)
    return {
        field: documents.count_by("cases", tenant, field, filters)
        for field in ("status", "stage", "queue", "definition_key", "assignee")
    }
