"""How the portal signs in: `GET /auth/config` says password (the built-in issuer) or OIDC (external issuers),
and for OIDC names each tenant's endpoints and the portal's public client (authorization code + PKCE)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from fastapi import APIRouter, Request

from api.deps import PlatformDep
from api.problems import ApiProblem
from api.schemas.platform import SigninConfig
from api.schemas.problem import public_responses

router = APIRouter(tags=["identity"])

# Discovery documents change rarely; the portal asks once per page load, so a few minutes of reuse is plenty and
# keeps an unreachable issuer from being asked on every load.
DISCOVERY_CACHE_SECONDS = 300.0


class DiscoveryCache:
    """Issuer discovery documents fetched over HTTP, each kept for DISCOVERY_CACHE_SECONDS."""

    def __init__(self) -> None:
        self._documents: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = asyncio.Lock()

    async def get(self, issuer: str) -> dict[str, Any]:
        cached = self._documents.get(issuer)
        if cached is not None and time.monotonic() - cached[0] < DISCOVERY_CACHE_SECONDS:
            return cached[1]
        async with self._lock:
            url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
            try:
                async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0)) as client:
                    reply = await client.get(url)
                document = reply.json() if reply.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                document = None
            if not isinstance(document, dict) or document.get("issuer") != issuer:
                raise ApiProblem(503, "issuer-unavailable", f"the sign-in service {issuer} did not answer its "
                                 "discovery document; try again shortly", headers={"Retry-After": "5"})
            self._documents[issuer] = (time.monotonic(), document)
            return document


def _cache(request: Request) -> DiscoveryCache:
    cache = getattr(request.app.state, "discovery_cache", None)
    if cache is None:
        cache = request.app.state.discovery_cache = DiscoveryCache()
    return cache


@router.get("/auth/config", response_model=SigninConfig, response_model_exclude_unset=True,
            responses=public_responses(503))
async def signin_config(request: Request, platform: PlatformDep) -> dict[str, Any]:
    """`{"mode": "password"}` with the built-in issuer; `{"mode": "oidc", "issuers": [...]}` with external ones
    (the portal then signs in with the authorization code flow and PKCE, and never sees a password)."""
    settings = platform.settings
    if not settings.oidc_issuers:
        return {"mode": "password"}
    cache = _cache(request)
    issuers = []
    for issuer, tenant in sorted(settings.oidc_issuers.items(), key=lambda item: item[1]):
        document = await cache.get(issuer)
        issuers.append({
            "tenant": tenant,
            "issuer": issuer,
            "authorization_endpoint": document.get("authorization_endpoint"),
            "token_endpoint": document.get("token_endpoint"),
            "end_session_endpoint": document.get("end_session_endpoint"),
            "client_id": settings.oidc_portal_client_id,
        })
    return {"mode": "oidc", "issuers": issuers}
