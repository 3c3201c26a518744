"""An operator's request to change a process instance, and what became of it (docs/processes.md, "Operations in
the distributed mode").

The API stores the request (`ProcessOperationRequested`, decided by the policy as the operator's own); whichever
process runs the engine follows the log, applies it there as the operator's command, and records the outcome:
`ProcessOperationApplied` with the reply the command gave, or `ProcessOperationRefused` with the problem it was
refused with. The API reads the request back for its answer. One aggregate per request; an outcome is recorded
once.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.aggregate import Aggregate, applies
from domain.errors import InvalidStateChange
from domain.events import Context, Event

RETRY_INCIDENT = "retry-incident"
CANCEL_INCIDENT = "cancel-incident"
CANCEL_INSTANCE = "cancel-instance"
SET_VARIABLES = "set-variables"
RETRY_JOB = "retry-job"
OPERATIONS = (RETRY_INCIDENT, CANCEL_INCIDENT, CANCEL_INSTANCE, SET_VARIABLES, RETRY_JOB)
PENDING, DONE, REFUSED = "pending", "done", "refused"


class ProcessOperationRequested(Event):
    """An operator asked for a change of a process instance; who asked (roles and groups too: the engine's side
    sends the change as theirs) and everything the change needs."""

    operation: str
    instance_id: str
    incident_id: str | None
    element_id: str | None
    variables: dict[str, Any]
    retries: int
    note: str
    reason: str
    roles: list[str]
    groups: list[str]


class ProcessOperationApplied(Event):
    """The engine applied the request: `reply` is what the change's command answered (id, version, position)."""

    reply: dict[str, Any]


class ProcessOperationRefused(Event):
    """The engine refused the request: the problem the operator gets (status, code, detail, field errors)."""

    status: int
    code: str
    detail: str
    errors: list[dict[str, str]]


class ProcessOperation(Aggregate):
    """One operator request: pending until the engine applies or refuses it."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.request: ProcessOperationRequested | None = None
        self.state = PENDING
        self.reply: dict[str, Any] | None = None
        self.problem: dict[str, Any] | None = None

    def ask(self, ctx: Context, *, operation: str, instance_id: UUID, incident_id: str | None = None,
            element_id: str | None = None, variables: dict[str, Any] | None = None, retries: int = 1,
            note: str = "", reason: str = "") -> None:
        """Store the request (once: a request id names one request)."""
        if self.request is not None:
            raise InvalidStateChange(f"process operation {self.id} was already requested")
        if operation not in OPERATIONS:
            raise ValueError(f"unknown process operation {operation!r}")
        self.record(ctx, ProcessOperationRequested, operation=operation, instance_id=str(instance_id),
                    incident_id=incident_id, element_id=element_id, variables=dict(variables or {}),
                    retries=retries, note=note, reason=reason, roles=sorted(ctx.roles), groups=sorted(ctx.groups))

    def applied(self, ctx: Context, reply: dict[str, Any]) -> None:
        """Record that the engine applied the request, with the reply its command gave."""
        self._pending()
        self.record(ctx, ProcessOperationApplied, reply=dict(reply))

    def refused(self, ctx: Context, *, status: int, code: str, detail: str,
                errors: list[dict[str, str]] | None = None) -> None:
        """Record that the engine refused the request, with the problem the operator gets."""
        self._pending()
        self.record(ctx, ProcessOperationRefused, status=status, code=code, detail=detail, errors=list(errors or []))

    def _pending(self) -> None:
        if self.request is None:
            raise InvalidStateChange(f"process operation {self.id} was never requested")
        if self.state != PENDING:
            raise InvalidStateChange(f"process operation {self.id} is already {self.state}")

    @applies(ProcessOperationRequested)
    def _requested(self, e: ProcessOperationRequested) -> None:
        self.request = e

    @applies(ProcessOperationApplied)
    def _applied(self, e: ProcessOperationApplied) -> None:
        self.state, self.reply = DONE, dict(e.reply)

    @applies(ProcessOperationRefused)
    def _refused(self, e: ProcessOperationRefused) -> None:
        self.state = REFUSED
        self.problem = {"status": e.status, "code": e.code, "detail": e.detail, "errors": list(e.errors)}
