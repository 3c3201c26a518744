"""Replies of the command routes: one command's reply and the batch's."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.problem import Problem


class CommandReply(BaseModel):
    """What every command returns: the aggregate id, its new version and the log position to wait for."""

    model_config = ConfigDict(extra="allow")
    id: str = Field(description="The aggregate the command changed (a UUID).")
    version: int
    position: int = Field(description="Pass it as wait_for to a query to read your own write.")


class BatchResult(CommandReply):
    """One stored command of a batch: its reply and the status its own endpoint would have answered."""

    status: int = Field(ge=200, le=299)


class BatchReply(BaseModel):
    """One answer per command, in order, and the log position covering every stored one (for `wait_for`)."""

    position: int
    results: list[BatchResult | Problem] = Field(
        description="Per command: its reply with its status, or the problem document of its refusal."
    )
