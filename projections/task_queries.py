"""Inbox queries over the `tasks` read model: mine, my groups, unassigned (or all), sorted, cursor-paged.

Only tasks of cases the reader may see (its ReadScope, projections/read_scope.py; None: all) are listed or found.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain import task as t
from domain.errors import FieldError, NotFound, ValidationFailed
from projections.base import Doc
from projections.ports import DocumentStore, Query
from projections.queries import MAX_LIMIT, Page, decode_cursor, encode_cursor
from projections.read_scope import ReadScope
from projections.tasks import group_tokens

VIEWS = ("mine", "groups", "unassigned", "all")
STATUSES = (t.OPEN, t.CLAIMED, t.COMPLETED, t.CANCELLED)
# sort name -> (document field, descending by default)
SORTS: dict[str, tuple[str, bool]] = {
    "due_at": ("due_order", False),
    "priority": ("priority", True),
    "created_at": ("created_at", True),
}
_INTERNAL = ("search", "due_order")
_DETAIL_ONLY = ("form_schema", "data")


def _view_filters(view: str, user: str) -> dict[str, Any]:
    """What each view means, before the caller's status filter (which replaces the default)."""
    if view == "mine":
        return {"owner": user, "active": True}
    if view in ("groups", "unassigned"):
        return {"status": t.OPEN} | ({"owner": None} if view == "unassigned" else {})
    return {}


def _check(view: str, status: str | None, sort: str, limit: int) -> None:
    problems = []
    if view not in VIEWS:
        problems.append(FieldError("view", f"one of {', '.join(VIEWS)}"))
    if status is not None and status not in STATUSES:
        problems.append(FieldError("status", f"one of {', '.join(STATUSES)}"))
    if sort not in SORTS:
        problems.append(FieldError("sort", f"one of {', '.join(SORTS)}"))
    if not 1 <= limit <= MAX_LIMIT:
        problems.append(FieldError("limit", f"between 1 and {MAX_LIMIT}"))
    if problems:
        raise ValidationFailed("the task query is not valid", problems)


def list_tasks(
    documents: DocumentStore, tenant: str, user: str, roles: Sequence[str], *, view: str = "mine",
    case_id: str | None = None, status: str | None = None, sort: str = "due_at", descending: bool | None = None,
    limit: int = 50, cursor: str | None = None, scope: ReadScope | None = None,
) -> Page:
    """The tasks of one inbox view of a tenant, filtered by case and status, sorted, paged by keyset cursor."""
    _check(view, status, sort, limit)
    field, default_descending = SORTS[sort]
    descending = default_descending if descending is None else descending
    filters = _view_filters(view, user)
    if status is not None:
        filters.pop("active", None)
        filters["status"] = status
    if case_id is not None:
        filters["case_id"] = case_id
    if scope is not None:
        filters = scope.narrow(filters)
    after = decode_cursor(cursor) if cursor else None

    def query(text: str | None) -> list[Doc]:
        return documents.find(Query(
            collection="tasks", tenant=tenant, filters=filters, text=text, sort=field, descending=descending,
            limit=limit + 1, after=after,
        ))

    if view == "groups":
        # one query per group, merged: each returns its first limit+1 after the cursor in the same order,
        # so the merged first limit+1 are exactly those of the union
        found: dict[str, Doc] = {}
        for group in sorted({r for r in roles if r and "|" not in r and not r.isspace()}):
            for doc in query(group_tokens([group])):
                found[doc["id"]] = doc
        docs = sorted(found.values(), key=lambda d: (d[field], d["id"]), reverse=descending)
    else:
        docs = query(None)
    more = len(docs) > limit
    docs = docs[:limit]
    next_cursor = encode_cursor(docs[-1][field], docs[-1]["id"]) if more and docs else None
    hidden = (*_INTERNAL, *_DETAIL_ONLY)
    return Page([{k: v for k, v in d.items() if k not in hidden} for d in docs], next_cursor)


def get_task(documents: DocumentStore, tenant: str, task_id: str, scope: ReadScope | None = None) -> Doc:
    """One task with its form schema and completion data, and the position it was written at (404 when it is
    missing, of another tenant or of a case the reader may not see)."""
    found = documents.get("tasks", task_id)
    if (found is None or found[0] is None or found[0]["tenant"] != tenant
            or (scope is not None and not scope.allows(found[0].get("definition_key")))):
        raise NotFound(f"task {task_id} not found")
    doc = {k: v for k, v in found[0].items() if k not in _INTERNAL}
    doc["position"] = found[1]
    return doc
