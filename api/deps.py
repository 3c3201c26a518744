"""Annotated dependencies shared by the routes: the platform, the verified actor, read-your-writes waits."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from adapters.tokens import TokenInvalid
from api.problems import ApiProblem
from casestream.bootstrap import Platform
from commands.bus import Actor

_bearer = HTTPBearer(auto_error=False, description="A token from a configured OIDC issuer (Keycloak), or from "
                     "/auth/token or `casestream token` when the built-in issuer is on.")


async def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


async def actor_of(platform: Platform, token: str) -> Actor:
    """The token's actor: from the verified-token cache on the event loop, else verified on a worker thread (a new
    token may need the issuer's JWKS fetched, which must not stall every other request)."""
    actor = platform.verifier.known(token)
    if actor is not None:
        return actor
    return await run_in_threadpool(platform.verifier.verify, token)


async def get_actor(
    platform: PlatformDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    """The actor of the bearer token; never taken from the request body."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise TokenInvalid("a bearer token is required (Authorization: Bearer <token>)")
    return await actor_of(platform, credentials.credentials)


ActorDep = Annotated[Actor, Depends(get_actor)]


class BearerActor(HTTPBearer):
    """get_actor as one security dependency (the same checks and the same OpenAPI scheme): the command routes
    are the hot path, and each dependency FastAPI solves per request costs measurable CPU."""

    async def __call__(self, request: HTTPConnection) -> Actor:  # type: ignore[override]
        authorization = request.headers.get("Authorization")
        scheme, token = get_authorization_scheme_param(authorization)
        if not (authorization and scheme and token) or scheme.lower() != "bearer":
            raise TokenInvalid("a bearer token is required (Authorization: Bearer <token>)")
        platform: Platform = request.app.state.platform
        return await actor_of(platform, token)


BearerActorDep = Annotated[Actor, Depends(BearerActor(auto_error=False, scheme_name="HTTPBearer",
                                                      description=_bearer.model.description))]

async def wait_for_position(
    platform: PlatformDep,
    wait_for: Annotated[int | None, Query(ge=0, description="Wait until read models include this position.")] = None,
    wait_timeout: Annotated[float | None, Query(gt=0, le=60, description="Seconds to wait at most.")] = None,
) -> None:
    """Read-your-writes: hold the query until the read model has caught up, or answer 504."""
    if wait_for is None or platform.runner.position >= wait_for:
        return
    timeout = min(wait_timeout or platform.settings.wait_timeout_seconds, platform.settings.max_wait_seconds)
    if wait_for > platform.store.max_position():
        raise ApiProblem(422, "unknown-position", f"position {wait_for} has not been written")
    if not await run_in_threadpool(platform.runner.wait, wait_for, timeout):
        raise ApiProblem(
            504, "read-model-behind",
            f"the read model did not reach position {wait_for} within {timeout:.1f}s "
            f"(it is at {platform.runner.position}); retry the query",
        )


Waited = Depends(wait_for_position)
