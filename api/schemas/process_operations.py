"""Request bodies and replies of the incident and process-instance (operations) routes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

VariableName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class RetryIncidentBody(BaseModel):
    """Retry what an incident stopped, after setting `variables` (the fixed data); a job gets `retries` tries."""

    model_config = ConfigDict(extra="forbid")
    variables: dict[VariableName, Any] = Field(default_factory=dict, max_length=100)
    retries: StrictInt = Field(default=1, ge=1, le=100, description="New tries for a failed job.")
    note: str = Field(default="", max_length=2000, description="Why, for the timeline.")


class CancelBody(BaseModel):
    """Cancel the process instance; its open user tasks are cancelled and its incidents end."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="cancelled by an operator", min_length=1, max_length=2000)


class SetVariablesBody(BaseModel):
    """Set process variables (names are FEEL names; values any JSON)."""

    model_config = ConfigDict(extra="forbid")
    variables: dict[VariableName, Any] = Field(min_length=1, max_length=100)


class RetryJobBody(BaseModel):
    """Retry the failed job of an element with this many tries."""

    model_config = ConfigDict(extra="forbid")
    retries: StrictInt = Field(default=1, ge=1, le=100)


class Incident(BaseModel):
    """An incident: where a process instance stopped and why; open until retried or cancelled."""

    id: str
    tenant: str
    instance_id: str
    process_id: str
    case_id: str | None
    element_id: str = Field(description="The BPMN element; empty when the whole instance is stuck.")
    kind: Literal["job", "bpmn-error", "element", "message", "stuck"]
    job_type: str
    message: str
    state: Literal["open", "resolved"]
    created_at: str
    updated_at: str
    resolution: Literal["retried", "cancelled"] | None
    resolved_at: str | None
    resolved_by: str | None
    note: str


class IncidentPage(BaseModel):
    """A page of incidents, newest first, and the cursor of the next page (null on the last)."""

    items: list[Incident]
    next_cursor: str | None


class ActiveElement(BaseModel):
    """An element the instance is at: waiting (events, joins), ready (user tasks), active (jobs), failed."""

    element_id: str
    state: Literal["waiting", "ready", "active", "failed"]


class ProcessInstanceSummary(BaseModel):
    """A process instance as listed."""

    id: str
    tenant: str
    instance_key: str
    process_id: str
    process_name: str
    definition_hash: str
    case_id: str | None
    state: Literal["running", "completed", "cancelled"]
    open_incidents: int
    has_incident: bool
    started_at: str
    updated_at: str
    ended_at: str | None
    elements: list[ActiveElement]
    version: int


class ProcessInstancePage(BaseModel):
    """A page of process instances, newest first, and the cursor of the next page (null on the last)."""

    items: list[ProcessInstanceSummary]
    next_cursor: str | None


class ProcessInstanceDetail(ProcessInstanceSummary):
    """One process instance with its variables and the read-model position it was read at."""

    variables: dict[str, Any]
    position: int
