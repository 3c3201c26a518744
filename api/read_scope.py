"""The reader's ReadScope as a FastAPI dependency: what the token's subject may see (projections/read_scope.py)."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from api.deps import ActorDep, PlatformDep
from casestream.bootstrap import Platform
from commands.policy import Policy
from projections.read_scope import ReadScope, ReadScopes

_lock = threading.Lock()


def platform_policy(platform: Platform) -> Policy | None:
    """The policy the command bus decides with: the same instance decides reads. None (policy_engine=none, or a
    bus built without one) allows every command, so everything in the tenant is readable too."""
    policy: Policy | None = getattr(platform, "policy", None) or getattr(platform.bus, "policy", None)
    return policy


def read_scopes(app: FastAPI, platform: Platform) -> ReadScopes:
    """The app's one cache of read scopes (made on first use)."""
    scopes: ReadScopes | None = getattr(app.state, "read_scopes", None)
    if scopes is None:
        with _lock:
            scopes = getattr(app.state, "read_scopes", None)
            if scopes is None:
                scopes = ReadScopes(platform.documents, platform_policy(platform),
                                    ttl=platform.settings.policy_cache_seconds)
                app.state.read_scopes = scopes
    return scopes


def get_read_scope(request: Request, actor: ActorDep, platform: PlatformDep) -> ReadScope:
    """The token subject's scope (a sync dependency: it may read the definitions and ask the policy).

    A query with `wait_for` asks for read-your-writes: its scope is checked against the definitions as they are
    now (a definition published just before must not hide its own new case), not against the signature the
    tenant's readers share for 0.2 s."""
    fresh = "wait_for" in request.query_params
    return read_scopes(request.app, platform).of(actor.user, actor.tenant, actor.roles, actor.groups, fresh=fresh)


ReadScopeDep = Annotated[ReadScope, Depends(get_read_scope)]
