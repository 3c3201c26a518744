"""Replies about requests the process engine applies from the log: an operator's operation, a published message."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ProcessOperationState(BaseModel):
    """An operator's request for a change of a process instance and what became of it (202 while pending)."""

    id: str = Field(description="The request id (GET /api/process-operations/{id} answers this again).")
    operation: Literal["retry-incident", "cancel-incident", "cancel-instance", "set-variables", "retry-job"]
    instance_id: str
    state: Literal["pending", "done", "refused"]
    reply: dict[str, Any] | None = Field(description="When done: the reply the change gave (id, version, position).")
    problem: dict[str, Any] | None = Field(description="When refused: the problem+json document the operator got.")


class MessageState(BaseModel):
    """A published message and what became of it when the engine took it (`taken` false: not yet; 202)."""

    message_key: str
    expires_at: str
    taken: bool = Field(description="Whether the engine has correlated or buffered the message yet.")
    correlated: bool
    process_instance_key: str | None
    buffered: bool
