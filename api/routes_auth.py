"""The built-in issuer's endpoints (embedded convenience): discovery, JWKS and a password grant for the users file.

All three answer 404 when external OIDC issuers are configured: the built-in issuer is off then (docs/identity.md).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.concurrency import run_in_threadpool

from adapters.issuer import BuiltinIssuer
from adapters.password_login import BadCredentials, LoginLocked, NotAMember, PasswordLogin
from api.deps import PlatformDep
from api.problems import ApiProblem
from api.schemas.platform import Discovery, Jwks, TokenReply
from api.schemas.problem import public_responses
from casestream.bootstrap import Platform

router = APIRouter(tags=["identity"])


def _builtin(platform: Platform) -> tuple[BuiltinIssuer, PasswordLogin]:
    if platform.issuer is None or platform.login is None:
        raise ApiProblem(404, "not-found", "the built-in issuer is off: this server accepts tokens of its configured "
                                           "OIDC issuers only")
    return platform.issuer, platform.login


@router.get("/.well-known/openid-configuration", response_model=Discovery, responses=public_responses(404))
def discovery(platform: PlatformDep) -> dict[str, Any]:
    """The built-in issuer's OpenID discovery document (404 when external issuers are configured)."""
    return _builtin(platform)[0].discovery()


@router.get("/.well-known/jwks.json", response_model=Jwks, responses=public_responses(404))
def jwks(platform: PlatformDep) -> dict[str, Any]:
    """The built-in issuer's public keys (404 when external issuers are configured)."""
    return _builtin(platform)[0].jwks()


@router.post("/auth/token", response_model=TokenReply, responses=public_responses(401, 403, 404, 422, 429))
async def token(
    request: Request,
    platform: PlatformDep,
    grant_type: Annotated[str, Form(min_length=1, json_schema_extra={"enum": ["password"]},
                                    description="password (anything else: 400 unsupported-grant-type)")],
    username: Annotated[str, Form(min_length=1, max_length=200)],
    password: Annotated[str, Form(min_length=1, max_length=200)],
    tenant: Annotated[str | None, Form(max_length=100, pattern=r"^[a-z][a-z0-9-]*$")] = None,
) -> dict[str, Any]:
    """OAuth2 password grant against the users file: a token only for a tenant the user belongs to.

    Failed attempts are counted per user name and per client address; a locked one gets 429 with Retry-After.
    """
    issuer, login = _builtin(platform)
    if grant_type != "password":
        raise ApiProblem(400, "unsupported-grant-type", "grant_type: only password is supported here")
    address = request.client.host if request.client else "unknown"
    try:
        # argon2 costs tens of milliseconds of CPU: off the event loop
        granted = await run_in_threadpool(login.login, username, password, tenant, address)
    except LoginLocked as exc:
        wait = max(1, math.ceil(exc.retry_after))
        raise ApiProblem(429, "login-locked", f"too many failed logins for this user or address; "
                                              f"try again in {wait}s", headers={"Retry-After": str(wait)}) from None
    except BadCredentials:
        raise ApiProblem(401, "invalid-credentials", "unknown user or wrong password") from None
    except NotAMember as exc:
        raise ApiProblem(403, "not-a-member", f"tenant: {exc}") from None
    access = issuer.issue(granted.user, granted.tenant, granted.membership.roles,
                          groups=granted.membership.groups)
    return {"access_token": access, "token_type": "Bearer", "expires_in": platform.settings.token_ttl_seconds,
            "tenant": granted.tenant}
