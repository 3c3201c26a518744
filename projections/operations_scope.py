"""Incidents and process instances a reader may see: those of cases whose definition it may read (`read_groups`,
as case queries are filtered: projections/read_scope.py), and those of instances that belong to no case.

Both name their case, not the case's definition; the definition is looked up in the `cases` read model (a case
never changes definition, so the lookups are remembered). A list is filtered page by page: a page may hold fewer
items than asked for while `next_cursor` says more may follow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from projections.base import Doc
from projections.ports import DocumentStore
from projections.queries import Page, encode_cursor
from projections.read_scope import CaseDefinitions, ReadScope

CASES = CaseDefinitions()
MAX_ROUNDS = 10  # pages read for one answer at most: a reader who sees few rows gets short pages, not a scan
Lister = Callable[[int, str | None], Page]  # (limit, cursor) -> a page of the unfiltered list


def readable(documents: DocumentStore, scope: ReadScope, docs: Sequence[Doc]) -> list[Doc]:
    """The incidents or instances the scope lets its reader see, in order."""
    if scope.definitions is None:
        return list(docs)
    keys = CASES.keys_of([d["case_id"] for d in docs if d.get("case_id")], documents)
    return [d for d in docs if not d.get("case_id") or scope.allows(keys.get(d["case_id"]))]


def readable_page(documents: DocumentStore, scope: ReadScope, pages: Lister, sort: str, *, limit: int,
                  cursor: str | None) -> Page:
    """A page of `pages`' list with only the readable rows (sorted by `sort`, newest first)."""
    if scope.definitions is None:
        return pages(limit, cursor)
    kept: list[Doc] = []
    for _ in range(MAX_ROUNDS):
        page = pages(limit, cursor)
        for doc in readable(documents, scope, page.items):
            kept.append(doc)
            if len(kept) == limit:
                more = page.next_cursor is not None or doc is not page.items[-1]
                return Page(kept, encode_cursor(doc[sort], doc["id"]) if more else None)
        cursor = page.next_cursor
        if cursor is None:
            return Page(kept, None)
    return Page(kept, cursor)
