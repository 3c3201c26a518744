"""The `tasks` read model (the inbox): one document per task, with what an inbox lists and filters by.

The case number and title come from `TaskCreated`, which copies them from the case when the task is made,
so the fold needs nothing but the task's own events (a later renaming of the case is not reflected).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from domain import task as t
from domain.events import Event
from projections.base import Doc, Fold, Projection

# sorts after any ISO date, so tasks without a due date come last when sorting by due date ascending
NO_DUE_DATE = "~"


def group_tokens(groups: Iterable[str]) -> str:
    """Candidate groups as `|name|` tokens in the `search` text.

    The document stores offer equality filters and one substring match; a membership test on a list is
    expressed as that substring match, the same on SQLite and MongoDB. Names are lower-cased there (the
    claim itself is decided by the aggregate, which compares exactly).
    """
    return "".join(f"|{g.lower()}|" for g in groups)


def _owner(doc: Doc) -> str | None:
    """Whose inbox a task is in: its holder, else its assignee."""
    held: str | None = doc["claimed_by"] or doc["assignee"]
    return held


def _step(update: Callable[[Doc, Any], None]) -> Fold:
    """Apply an update to a shallow copy (nested values are replaced, never mutated), then refresh derived fields."""

    def fold(doc: Doc | None, event: Event) -> Doc | None:
        if doc is None:
            return None  # every task starts with TaskCreated; anything else without it is ignored
        new = dict(doc)
        update(new, event)
        new["owner"] = _owner(new)
        new["active"] = new["status"] not in t.FINAL
        new["version"] = event.version
        new["updated_at"] = event.occurred_at.isoformat()
        new["updated_by"] = event.actor
        return new

    return fold


def created(_doc: Doc | None, e: t.TaskCreated) -> Doc:
    doc: Doc = {
        "id": str(e.aggregate_id),
        "tenant": e.tenant,
        "case_id": e.case_id,
        "case_number": e.case_number,
        "case_title": e.case_title,
        "definition_key": e.definition_key,  # who may read the task: those who may read its case's definition
        "title": e.title,
        "description": e.description,
        "form_schema": e.form_schema,
        "status": t.OPEN,
        "active": True,
        "assignee": e.assignee,
        "claimed_by": None,
        "owner": e.assignee,
        "candidate_groups": e.candidate_groups,
        "due_at": e.due_at,
        "due_order": e.due_at or NO_DUE_DATE,
        "priority": e.priority,
        "kind": "process" if e.process_instance_key else "ad-hoc",
        "process_instance_key": e.process_instance_key,
        "element_id": e.element_id,
        "created_at": e.occurred_at.isoformat(),
        "created_by": e.actor,
        "updated_at": e.occurred_at.isoformat(),
        "updated_by": e.actor,
        "completed_at": None,
        "completed_by": None,
        "data": None,
        "cancel_reason": None,
        "version": e.version,
        "search": group_tokens(e.candidate_groups),
    }
    return doc


def _claimed(doc: Doc, e: t.TaskClaimed) -> None:
    doc["status"], doc["claimed_by"] = t.CLAIMED, e.actor


def _unclaimed(doc: Doc, _e: t.TaskUnclaimed) -> None:
    doc["status"], doc["claimed_by"] = t.OPEN, None


def _completed(doc: Doc, e: t.TaskCompleted) -> None:
    doc["status"], doc["data"] = t.COMPLETED, e.data
    doc["completed_at"], doc["completed_by"] = e.occurred_at.isoformat(), e.actor


def _cancelled(doc: Doc, e: t.TaskCancelled) -> None:
    doc["status"], doc["cancel_reason"] = t.CANCELLED, e.reason
    doc["completed_at"], doc["completed_by"] = e.occurred_at.isoformat(), e.actor


def _prioritised(doc: Doc, e: t.TaskPriorityChanged) -> None:
    doc["priority"] = e.priority


def _assigned(doc: Doc, e: t.TaskAssigned) -> None:
    doc["assignee"] = e.assignee
    if e.released_claim is not None:
        doc["status"], doc["claimed_by"] = t.OPEN, None


FOLDS: dict[type[Event], Fold] = {
    t.TaskCreated: created,
    t.TaskClaimed: _step(_claimed),
    t.TaskUnclaimed: _step(_unclaimed),
    t.TaskCompleted: _step(_completed),
    t.TaskCancelled: _step(_cancelled),
    t.TaskPriorityChanged: _step(_prioritised),
    t.TaskAssigned: _step(_assigned),
}

TASKS = Projection(
    collection="tasks",
    folds=FOLDS,
    indexes=("case_id", "status", "owner", "active", "due_order", "priority", "definition_key"),
    order="created_at",
    text_search=True,
)
