"""The `cases` read model: one document per case, for the case list, detail, kanban and counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain import case as c
from domain.diff import apply_changes
from domain.events import Event
from projections.base import Doc, Fold, Projection
from projections.texts import iso_text, uuid_text


def search_text(doc: Doc) -> str:
    """Lower-cased text searched by the case list's `q`: number, title and every data value."""
    parts: list[str] = [doc["number"], doc["title"]]
    _collect(doc["data"], parts)
    return " ".join(parts).lower()


def _collect(value: Any, parts: list[str]) -> None:
    """Append the text of every scalar in value, depth first (booleans and nulls are not searched)."""
    if isinstance(value, dict):
        items: Any = value.values()
    elif isinstance(value, list):
        items = value
    else:
        if value is not None and not isinstance(value, bool):
            parts.append(str(value))
        return
    for item in items:
        if type(item) is str:
            parts.append(item)
        elif isinstance(item, dict | list):
            _collect(item, parts)
        elif item is not None and not isinstance(item, bool):
            parts.append(str(item))


def _step(update: Callable[[Doc, Any], None], *, searchable: bool = False, in_place: bool = False) -> Fold:
    """Wrap an update of a shallow copy (updates replace nested values, never mutate them in place).

    The input document is left untouched, so the fold stays pure without a deep copy per event. in_place: update
    the document passed in instead (the same result, for a host holding the only reference to it).
    """

    def fold(doc: Doc | None, event: Event) -> Doc | None:
        if doc is None:
            return None  # a case's first event is CaseOpened; anything else without it is ignored
        new = doc if in_place else dict(doc)
        update(new, event)
        new["version"] = event.version
        new["updated_at"] = iso_text(event.occurred_at)
        new["updated_by"] = event.actor
        if searchable:
            new["search"] = search_text(new)
        return new

    return fold


def opened(_doc: Doc | None, e: c.CaseOpened) -> Doc:
    at = iso_text(e.occurred_at)
    doc: Doc = {
        "id": uuid_text(e.aggregate_id),
        "tenant": e.tenant,
        "number": e.number,
        "title": e.title,
        "definition_key": e.definition_key,
        "definition_version": e.definition_version,
        "stage": e.stage,
        "status": c.OPEN,
        "assignee": None,
        "queue": None,
        "data": e.data,  # shared, never mutated: later folds replace data, they do not edit it
        "comments": [],
        "comment_count": 0,
        "opened_at": at,
        "opened_by": e.actor,
        "updated_at": at,
        "updated_by": e.actor,
        "closed_reason": None,
        "resolution": None,
        "version": e.version,
    }
    doc["search"] = search_text(doc)
    return doc


def _data(doc: Doc, e: c.CaseDataChanged) -> None:
    doc["data"] = apply_changes(doc["data"], e.changes)


def _title(doc: Doc, e: c.CaseRetitled) -> None:
    doc["title"] = e.title


def _stage(doc: Doc, e: c.CaseMovedToStage) -> None:
    doc["stage"] = e.to_stage


def _assigned(doc: Doc, e: c.CaseAssigned) -> None:
    doc["assignee"] = e.assignee


def _unassigned(doc: Doc, _e: c.CaseUnassigned) -> None:
    doc["assignee"] = None


def _queued(doc: Doc, e: c.CaseQueued) -> None:
    doc["queue"] = e.queue


def _comment_added(doc: Doc, e: c.CommentAdded) -> None:
    comment: dict[str, Any] = {
        "id": e.comment_id, "parent_id": e.parent_id, "author": e.actor, "body": e.body,
        "created_at": iso_text(e.occurred_at), "edited_at": None, "history": [], "deleted": False,
    }
    doc["comments"] = [*doc["comments"], comment]
    doc["comment_count"] += 1


def _replace_comment(doc: Doc, comment_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    doc["comments"] = [change(x) if x["id"] == comment_id else x for x in doc["comments"]]


def _comment_edited(doc: Doc, e: c.CommentEdited) -> None:
    def change(x: dict[str, Any]) -> dict[str, Any]:
        entry = {"body": e.previous, "replaced_at": iso_text(e.occurred_at)}
        return {**x, "body": e.body, "edited_at": iso_text(e.occurred_at), "history": [*x["history"], entry]}

    _replace_comment(doc, e.comment_id, change)


def _comment_deleted(doc: Doc, e: c.CommentDeleted) -> None:
    def change(x: dict[str, Any]) -> dict[str, Any]:
        entry = {"body": x["body"], "replaced_at": iso_text(e.occurred_at)}
        return {**x, "body": "", "deleted": True, "history": [*x["history"], entry]}

    _replace_comment(doc, e.comment_id, change)
    doc["comment_count"] -= 1


def _closed(doc: Doc, e: c.CaseClosed) -> None:
    doc["status"] = c.CLOSED
    doc["closed_reason"] = e.reason
    doc["resolution"] = e.resolution


def _reopened(doc: Doc, _e: c.CaseReopened) -> None:
    doc["status"] = c.OPEN
    doc["closed_reason"] = None
    doc["resolution"] = None


def _archived(doc: Doc, _e: c.CaseArchived) -> None:
    doc["status"] = c.ARCHIVED


# per event type after the opening: the update and whether it can change the search text
_UPDATES: dict[type[Event], tuple[Callable[[Doc, Any], None], bool]] = {
    c.CaseDataChanged: (_data, True),
    c.CaseRetitled: (_title, True),
    c.CaseMovedToStage: (_stage, False),
    c.CaseAssigned: (_assigned, False),
    c.CaseUnassigned: (_unassigned, False),
    c.CaseQueued: (_queued, False),
    c.CommentAdded: (_comment_added, False),
    c.CommentEdited: (_comment_edited, False),
    c.CommentDeleted: (_comment_deleted, False),
    c.CaseClosed: (_closed, False),
    c.CaseReopened: (_reopened, False),
    c.CaseArchived: (_archived, False),
}

FOLDS: dict[type[Event], Fold] = {
    c.CaseOpened: opened, **{t: _step(u, searchable=s) for t, (u, s) in _UPDATES.items()}
}
IN_PLACE_FOLDS: dict[type[Event], Fold] = {
    c.CaseOpened: opened, **{t: _step(u, searchable=s, in_place=True) for t, (u, s) in _UPDATES.items()}
}

CASES = Projection(
    collection="cases",
    folds=FOLDS,
    in_place_folds=IN_PLACE_FOLDS,
    key=lambda e: uuid_text(e.aggregate_id),
    per_aggregate=True,  # keyed by the aggregate, folding only that case's own events
    indexes=("definition_key", "status", "stage", "queue", "assignee", "number"),
    text_search=True,
)
