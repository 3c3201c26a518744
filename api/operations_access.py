"""Who may use the operations routes (incidents, process instances), and the engine they act through."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from api.problems import ApiProblem
from casestream.bootstrap import Platform
from commands.bus import Actor
from domain.errors import Forbidden, NotFound

if TYPE_CHECKING:
    from processes.engine import EmbeddedEngine

ADMIN_ROLES = frozenset({"admin"})
ACTION = "read_process_operations"


def require_operator(platform: Platform, actor: Actor) -> None:
    """The policy's `read_process_operations` decision; with no policy (policy_engine=none) the admin role."""
    policy = platform.bus.policy
    if policy is None:
        if not ADMIN_ROLES.intersection(actor.roles):
            raise Forbidden("process operations need the admin role", (f"{ACTION} needs the admin role",))
        return
    decision = policy.decide({
        "subject": {"user": actor.user, "tenant": actor.tenant, "roles": list(actor.roles),
                    "groups": list(actor.groups)},
        "action": ACTION,
        "resource": {"kind": "tenant"},
    })
    if not decision.allow:
        reasons = decision.reasons or (f"no rule allows {ACTION}",)
        raise Forbidden(f"process operations are not allowed: {'; '.join(reasons)}", tuple(reasons))


def engine_of(platform: Platform) -> EmbeddedEngine:
    """The embedded engine that holds the instances (503 while it starts, or when processes do not run here)."""
    from processes.platform import NotReady

    if platform.processes is None:
        raise ApiProblem(503, "processes-off", "no process engine runs in this server (CASESTREAM_PROCESSES=off)")
    try:
        return platform.processes.engine
    except NotReady as exc:
        raise ApiProblem(503, "processes-starting", str(exc)) from None


def instance_uuid(instance_id: str) -> UUID:
    """A path's instance id (not a UUID: it names nothing)."""
    try:
        return UUID(instance_id)
    except ValueError:
        raise NotFound(f"process instance {instance_id} not found") from None
