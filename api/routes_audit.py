"""GET /api/audit: the tenant's audit log (refused commands, membership changes, admin actions), for admins."""

# No `from __future__ import annotations`: FastAPI reads the response model and query annotations at runtime.

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import ActorDep, PlatformDep, Waited
from api.json_reply import JsonReply
from api.schemas.problem import query_responses
from commands.bus import Actor
from domain.errors import Forbidden
from projections.audit import list_audit
from projections.queries import MAX_LIMIT

router = APIRouter(prefix="/api", tags=["audit"], dependencies=[Waited])

ADMIN_ROLES = frozenset({"admin"})


class AuditEntry(BaseModel):
    """One audit entry: a refused command (with how often it was repeated), a membership change, an admin action."""

    id: str
    tenant: str
    kind: Literal["denied", "membership", "admin"]
    at: str = Field(description="When it happened (first refusal of a coalesced entry), ISO-8601 UTC.")
    last_at: str = Field(description="The last refusal of a coalesced entry; `at` otherwise.")
    actor: str = Field(description="Who was refused, or who made the change.")
    action: str = Field(description="The command type (CloseCase, PublishCaseDefinition, ChangeMembership, ...).")
    target: str | None = Field(description="What it addressed, as kind:id (case:…, task:…, definition:claim, user:…).")
    targets: list[str] = Field(description="Distinct targets of a coalesced refusal (at most 10).")
    reasons: list[str] = Field(description="Why the policy refused (empty for changes).")
    details: dict[str, Any]
    count: int = Field(description="Identical refusals this entry stands for (1 for changes).")


class AuditPage(BaseModel):
    """A page of audit entries, newest first, and the cursor of the next page (null on the last)."""

    items: list[AuditEntry]
    next_cursor: str | None


def require_audit_reader(platform: PlatformDep, actor: Actor) -> None:
    """The policy's `read_audit` decision; with no policy (policy_engine=none) the admin role."""
    policy = platform.bus.policy
    if policy is None:
        if not ADMIN_ROLES.intersection(actor.roles):
            raise Forbidden("reading the audit log needs the admin role", ("read_audit needs the admin role",))
        return
    decision = policy.decide({
        "subject": {"user": actor.user, "tenant": actor.tenant, "roles": list(actor.roles),
                    "groups": list(actor.groups)},
        "action": "read_audit",
        "resource": {"kind": "tenant"},
    })
    if not decision.allow:
        reasons = decision.reasons or ("no rule allows read_audit",)
        raise Forbidden(f"reading the audit log is not allowed: {'; '.join(reasons)}", tuple(reasons))


@router.get(
    "/audit", response_class=JsonReply, response_model=AuditPage, responses=query_responses(403),
)
def audit(
    actor: ActorDep,
    platform: PlatformDep,
    kind: Literal["denied", "membership", "admin"] | None = None,
    actor_: Annotated[str | None, Query(alias="actor", max_length=200, description="Who was refused or acted.")] = None,
    action: Annotated[str | None, Query(max_length=100, description="Command type, e.g. CloseCase.")] = None,
    since: Annotated[datetime | None, Query(description="Entries at or after this moment (ISO-8601, with a zone).")]
    = None,
    until: Annotated[datetime | None, Query(description="Entries at or before this moment (ISO-8601, with a zone).")]
    = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> JsonReply:
    """The tenant's audit log, newest first: refused commands, membership changes and admin actions."""
    require_audit_reader(platform, actor)
    page = list_audit(platform.documents, actor.tenant, kind=kind, actor=actor_, action=action, since=since,
                      until=until, limit=limit, cursor=cursor)
    return JsonReply({"items": page.items, "next_cursor": page.next_cursor})
