"""The reply of POST /api/signals: the stored broadcast and, once the engine took it, where it went."""

from __future__ import annotations

from pydantic import Field

from api.schemas.commands import CommandReply


class BroadcastSignalReply(CommandReply):
    """A broadcast signal: the instances it started and those whose waiting catches got it (`taken` false when the
    engine did not take it in time: it still will, the lists are then empty)."""

    signal_key: str = Field(description="The broadcast's key (a UUID).")
    taken: bool = Field(description="True when the engine delivered the signal before the reply.")
    started: list[str] = Field(description="Keys of the instances started by the signal (signal start events).")
    delivered: list[str] = Field(description="Keys of the waiting instances a catch of the signal got it in.")
