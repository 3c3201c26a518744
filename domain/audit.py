"""The audit log: refused commands and membership changes, one small aggregate per entry.

One aggregate per entry (not one per tenant) so that recording never contends: a tenant's denials would
otherwise all race for one version sequence. A denial entry covers one (tenant, actor, action, reasons) in one
fixed time window: its first event says who was refused what and why, at most one later event updates the count
of identical refusals in that window (commands/audit.py decides when; docs/audit.md states the rule).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from uuid import UUID

from domain.aggregate import Aggregate, applies
from domain.definition import NAMESPACE
from domain.errors import InvalidStateChange
from domain.events import Context, Event

MAX_TARGETS = 10  # distinct targets kept per denial entry: an attacker varying ids must not grow an entry


def denial_entry_id(tenant: str, actor: str, action: str, reasons: Sequence[str], window_start: str) -> UUID:
    """The entry of one kind of denial in one window: the same in every process, so they add up to one entry."""
    return uuid.uuid5(NAMESPACE, f"audit-denial:{tenant}:{actor}:{action}:{'|'.join(reasons)}:{window_start}")


def membership_entry_id() -> UUID:
    return uuid.uuid4()


class CommandDenied(Event):
    """The policy refused a command: who (with the roles and groups presented), what, on which target, why."""

    user: str
    roles: list[str]
    groups: list[str]
    action: str
    targets: list[str]
    reasons: list[str]
    detail: str
    command_id: str
    correlation_id: str
    window_start: str
    first_at: str
    last_at: str
    count: int


class CommandDenialsRepeated(Event):
    """More identical refusals arrived in the entry's window: the total count and the targets seen so far."""

    count: int
    last_at: str
    targets: list[str]


class MembershipChanged(Event):
    """A user's roles or groups in a tenant changed (before and after), by whom and through what."""

    user: str
    before: dict[str, list[str]]
    after: dict[str, list[str]]
    by: str
    source: str


def _sorted_lists(value: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    return {"roles": sorted(set(value.get("roles", ()))), "groups": sorted(set(value.get("groups", ())))}


class AuditEntry(Aggregate):
    """One audit entry: a (coalesced) denial or a membership change."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.kind = ""
        self.count = 0
        self.targets: list[str] = []

    @classmethod
    def denied(
        cls, ctx: Context, *, entry_id: UUID, roles: Sequence[str], groups: Sequence[str], action: str,
        targets: Sequence[str], reasons: Sequence[str], detail: str, window_start: str, first_at: str,
        last_at: str, count: int,
    ) -> AuditEntry:
        """The first record of a kind of denial in a window (ctx.actor is the refused user)."""
        if count < 1:
            raise InvalidStateChange("a denial entry counts at least one refusal")
        entry = cls(entry_id)
        entry.record(
            ctx, CommandDenied, user=ctx.actor, roles=list(roles), groups=list(groups), action=action,
            targets=list(targets)[:MAX_TARGETS], reasons=list(reasons), detail=detail, command_id=ctx.command_id,
            correlation_id=ctx.correlation_id, window_start=window_start, first_at=first_at, last_at=last_at,
            count=count,
        )
        return entry

    def repeated(self, ctx: Context, *, count: int, last_at: str, targets: Sequence[str]) -> None:
        """Raise the entry's count to `count` (a count at or below the stored one changes nothing)."""
        if self.kind != "denied":
            raise InvalidStateChange("only a denial entry counts repeats")
        if count <= self.count:
            return
        merged = list(dict.fromkeys([*self.targets, *targets]))[:MAX_TARGETS]
        self.record(ctx, CommandDenialsRepeated, count=count, last_at=last_at, targets=merged)

    @classmethod
    def membership_changed(
        cls, ctx: Context, *, user: str, before: Mapping[str, Sequence[str]], after: Mapping[str, Sequence[str]],
        by: str, source: str,
    ) -> AuditEntry:
        """A user's roles or groups changed (refused when nothing did)."""
        old, new = _sorted_lists(before), _sorted_lists(after)
        if old == new:
            raise InvalidStateChange(f"the memberships of {user!r} are unchanged")
        entry = cls(membership_entry_id())
        entry.record(ctx, MembershipChanged, user=user, before=old, after=new, by=by, source=source)
        return entry

    @applies(CommandDenied)
    def _denied(self, e: CommandDenied) -> None:
        self.kind, self.count, self.targets = "denied", e.count, list(e.targets)

    @applies(CommandDenialsRepeated)
    def _repeated(self, e: CommandDenialsRepeated) -> None:
        self.count, self.targets = e.count, list(e.targets)

    @applies(MembershipChanged)
    def _membership(self, _e: MembershipChanged) -> None:
        self.kind = "membership"

