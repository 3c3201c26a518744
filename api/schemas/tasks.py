"""Replies of the task queries: the inbox page and one task."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TaskSummary(BaseModel):
    """A task as listed in an inbox (without its form schema and data)."""

    model_config = ConfigDict(extra="allow")
    id: str = Field(description="The task id (a UUID).")
    tenant: str
    case_id: str
    case_number: str
    case_title: str
    title: str
    description: str
    status: str = Field(description="open, claimed, completed or cancelled.")
    active: bool
    assignee: str | None
    claimed_by: str | None
    owner: str | None = Field(description="Who holds it: the claimant, else the assignee.")
    candidate_groups: list[str]
    due_at: str | None
    priority: int
    kind: str = Field(description="ad-hoc (made by a person) or process (made by a BPMN process).")
    process_instance_key: str | None
    element_id: str | None
    created_at: str
    created_by: str
    updated_at: str
    updated_by: str
    completed_at: str | None
    completed_by: str | None
    cancel_reason: str | None
    version: int


class Task(TaskSummary):
    """One task with its form schema, its data once completed, and the log position it was read at."""

    form_schema: dict[str, Any] | None
    data: dict[str, Any] | None
    position: int


class TaskPage(BaseModel):
    """A page of tasks and the cursor of the next page (null on the last)."""

    items: list[TaskSummary]
    next_cursor: str | None
