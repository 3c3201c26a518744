"""Incidents a reader may see: those of cases whose definition it may read (`read_groups`, as case queries are
filtered: projections/read_scope.py), and those of instances that belong to no case.

An incident names its case, not the case's definition; the definition is looked up in the `cases` read model (a
case never changes definition, so the lookups are remembered). A list is filtered page by page: a page may hold
fewer items than asked for while `next_cursor` says more may follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections import process_queries
from projections.base import Doc
from projections.ports import DocumentStore
from projections.queries import Page, encode_cursor
from projections.read_scope import CaseDefinitions, ReadScope

CASES = CaseDefinitions()
MAX_ROUNDS = 10  # pages read for one answer at most: a reader who sees few incidents gets short pages, not a scan


def readable(documents: DocumentStore, scope: ReadScope, incidents: Sequence[Doc]) -> list[Doc]:
    """The incidents the scope lets its reader see, in order."""
    if scope.definitions is None:
        return list(incidents)
    keys = CASES.keys_of([i["case_id"] for i in incidents if i.get("case_id")], documents)
    return [i for i in incidents if not i.get("case_id") or scope.allows(keys.get(i["case_id"]))]


def list_readable(documents: DocumentStore, scope: ReadScope, *, limit: int, cursor: str | None,
                  **filters: Any) -> Page:
    """`list_incidents` of the scope's tenant with only the readable incidents."""
    tenant = scope.tenant
    if scope.definitions is None:
        return process_queries.list_incidents(documents, tenant, limit=limit, cursor=cursor, **filters)
    kept: list[Doc] = []
    for _ in range(MAX_ROUNDS):
        page = process_queries.list_incidents(documents, tenant, limit=limit, cursor=cursor, **filters)
        for incident in readable(documents, scope, page.items):
            kept.append(incident)
            if len(kept) == limit:
                more = page.next_cursor is not None or incident is not page.items[-1]
                return Page(kept, encode_cursor(incident["created_at"], incident["id"]) if more else None)
        cursor = page.next_cursor
        if cursor is None:
            return Page(kept, None)
    return Page(kept, cursor)
