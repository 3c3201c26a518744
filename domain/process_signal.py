"""Process signals: a broadcast for BPMN processes to catch (docs/processes.md, "Signals").

One aggregate per broadcast (Zeebe's "broadcast signal" gives each its key). `ProcessSignalBroadcast` stores the
signal's name and variables; the process that runs the engine takes it from the log and records with
`ProcessSignalDelivered` which instances it started and which waiting instances caught it (once: the engine
delivers a broadcast only while none is recorded). A signal is never kept for later: what does not wait when the
engine takes it misses it, as in Zeebe.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.aggregate import Aggregate, applies
from domain.errors import InvalidStateChange
from domain.events import Context, Event


class ProcessSignalBroadcast(Event):
    """A signal broadcast to the tenant's processes."""

    name: str
    variables: dict[str, Any]


class ProcessSignalDelivered(Event):
    """What the broadcast did when the engine took it: the instances it started and those that caught it."""

    started: list[str]
    delivered: list[str]


class ProcessSignal(Aggregate):
    """One broadcast signal and, once the engine took it, where it went."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.name = ""
        self.variables: dict[str, Any] = {}
        self.started: list[str] | None = None
        self.delivered: list[str] | None = None

    def broadcast(self, ctx: Context, *, name: str, variables: dict[str, Any]) -> None:
        if self.name:
            raise InvalidStateChange(f"signal {self.id} was already broadcast")
        self.record(ctx, ProcessSignalBroadcast, name=name, variables=variables)

    def record_delivery(self, ctx: Context, *, started: list[str], delivered: list[str]) -> None:
        """Record what the broadcast did (once)."""
        if not self.name:
            raise InvalidStateChange("the signal was never broadcast")
        if self.delivered is not None:
            raise InvalidStateChange(f"signal {self.id} was already delivered")
        self.record(ctx, ProcessSignalDelivered, started=started, delivered=delivered)

    @applies(ProcessSignalBroadcast)
    def _broadcast(self, e: ProcessSignalBroadcast) -> None:
        self.name, self.variables = e.name, dict(e.variables)

    @applies(ProcessSignalDelivered)
    def _delivered(self, e: ProcessSignalDelivered) -> None:
        self.started, self.delivered = list(e.started), list(e.delivered)
