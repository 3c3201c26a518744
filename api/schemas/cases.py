"""Replies of the case queries: lists, one case, its timeline, history and diff, the kanban board, counts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    # read-model documents may gain fields: clients must ignore what they do not know
    model_config = ConfigDict(extra="allow")


class CaseSummary(_Open):
    """A case without its comments (list pages)."""

    id: str = Field(description="The case id (a UUID).")
    tenant: str
    number: str = Field(description="Human-readable number, e.g. CLAIM-000042.")
    title: str
    definition_key: str
    definition_version: int
    stage: str
    status: str = Field(description="open, closed, archived, or a definition's own closing status.")
    assignee: str | None
    queue: str | None
    data: dict[str, Any] = Field(description="The case data, valid against its definition's schema.")
    comment_count: int
    opened_at: str
    opened_by: str
    updated_at: str
    updated_by: str
    closed_reason: str | None
    resolution: str | None
    version: int


class CommentRevision(_Open):
    """An earlier body of an edited or deleted comment."""

    body: str
    replaced_at: str


class Comment(_Open):
    """A comment (threaded by parent_id); a deleted one keeps its place with an empty body."""

    id: str
    parent_id: str | None
    author: str
    body: str
    created_at: str
    edited_at: str | None
    history: list[CommentRevision]
    deleted: bool


class CaseAsOf(CaseSummary):
    """A case with its comments, as it was at a version or moment (history)."""

    comments: list[Comment]


class Case(CaseAsOf):
    """A case with its comments and the log position it was read at."""

    position: int = Field(description="The log position of the case's last event (for wait_for).")


class CasePage(BaseModel):
    """A page of cases and the cursor of the next page (null on the last)."""

    items: list[CaseSummary]
    next_cursor: str | None


class TimelineEntry(_Open):
    """One event of a case (or of its tasks and processes), in words."""

    id: str
    tenant: str
    case_id: str
    version: int = Field(description="The version of the aggregate the event belongs to (case, task, process).")
    type: str
    actor: str
    at: str
    summary: str
    correlation_id: str | None


class Change(BaseModel):
    """A top-level field's value before and after."""

    old: Any
    new: Any


class DiffEvent(BaseModel):
    """An event between the two versions."""

    version: int
    type: str
    actor: str
    at: str


class CaseDiff(BaseModel):
    """What changed between two versions of a case."""

    model_config = ConfigDict(populate_by_name=True)
    from_: int = Field(alias="from")
    to: int
    fields: dict[str, Change]
    data: list[dict[str, Any]] = Field(description="Field-level changes of the data (domain/diff.py).")
    events: list[DiffEvent]


class KanbanCard(BaseModel):
    """An open case on the board, with the definition's card fields."""

    id: str
    number: str
    title: str
    assignee: str | None
    version: int
    updated_at: str
    fields: dict[str, Any]


class KanbanColumn(BaseModel):
    """A stage with its open cases."""

    stage: str
    name: str
    transitions: list[str]
    count: int = Field(description="Open cases in the stage (cards holds at most per_column of them).")
    cards: list[KanbanCard]


class Kanban(BaseModel):
    """The board of a definition: a column per stage, in stage order."""

    definition_key: str
    name: str
    columns: list[KanbanColumn]


class CaseCounts(BaseModel):
    """Readable cases counted per value of each field ("" counts cases where it is unset)."""

    status: dict[str, int]
    stage: dict[str, int]
    queue: dict[str, int]
    definition_key: dict[str, int]
    assignee: dict[str, int]
