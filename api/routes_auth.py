"""The built-in issuer's endpoints (embedded mode): discovery, JWKS and a password grant for dev users."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Form

from api.deps import PlatformDep
from api.problems import ApiProblem

router = APIRouter(tags=["identity"])

# The embedded issuer's users: a small fixed directory for trying the platform; Keycloak replaces it.
DEV_USERS: dict[str, tuple[str, ...]] = {
    "alice": ("caseworker",),
    "bob": ("supervisor",),
    "carol": ("caseworker",),
    "admin": ("admin", "supervisor"),
}


@router.get("/.well-known/openid-configuration")
def discovery(platform: PlatformDep) -> dict[str, Any]:
    return platform.issuer.discovery()


@router.get("/.well-known/jwks.json")
def jwks(platform: PlatformDep) -> dict[str, Any]:
    return platform.issuer.jwks()


@router.post("/auth/token")
def token(
    platform: PlatformDep,
    grant_type: Annotated[str, Form()],
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=200)],
    tenant: Annotated[str | None, Form(max_length=100, pattern=r"^[a-z][a-z0-9-]*$")] = None,
) -> dict[str, Any]:
    """OAuth2 password grant against the embedded user directory."""
    if grant_type != "password":
        raise ApiProblem(400, "unsupported-grant-type", "only grant_type=password is supported here")
    roles = DEV_USERS.get(username)
    expected = platform.settings.dev_password
    if roles is None or not hmac.compare_digest(password.encode(), expected.encode()):
        raise ApiProblem(401, "invalid-credentials", "unknown user or wrong password")
    access = platform.issuer.issue(username, tenant or platform.settings.default_tenant, roles)
    return {"access_token": access, "token_type": "Bearer", "expires_in": platform.settings.token_ttl_seconds}
