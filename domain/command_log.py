"""The command log: one stored entry per handled command_id, saved with the command's events.

Because the entry is written in the same transaction as the events, a repeated command_id either finds
the entry (and returns its result) or collides with the one being written concurrently: never both
stored twice.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from domain.aggregate import Aggregate, applies
from domain.definition import NAMESPACE
from domain.events import Context, Event


def command_entry_id(tenant: str, command_id: str) -> UUID:
    return uuid.uuid5(NAMESPACE, f"command:{tenant}:{command_id}")


class CommandHandled(Event):
    """Command `name` with payload fingerprint `fingerprint` produced `result`."""

    name: str
    fingerprint: str
    result: dict[str, Any]


class CommandEntry(Aggregate):
    """What one command_id did, for idempotent retries."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.name = ""
        self.fingerprint = ""
        self.result: dict[str, Any] = {}

    @classmethod
    def handled(cls, ctx: Context, name: str, fingerprint: str, result: dict[str, Any]) -> CommandEntry:
        entry = cls(command_entry_id(ctx.tenant, ctx.command_id))
        entry.record(ctx, CommandHandled, name=name, fingerprint=fingerprint, result=result)
        return entry

    @applies(CommandHandled)
    def _handled(self, e: CommandHandled) -> None:
        self.name, self.fingerprint, self.result = e.name, e.fingerprint, e.result
