"""casestream's own API clients sign in as themselves: a client-credentials token from the tenant's OIDC issuer,
reused until shortly before it expires."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx


class ClientCredentialsRefused(RuntimeError):
    """The issuer refused the client (unknown client, wrong secret) or could not be reached."""


def issuer_for_tenant(issuers: dict[str, str], tenant: str) -> str:
    """The configured issuer (settings.oidc_issuers) whose tokens belong to this tenant."""
    for issuer, owner in issuers.items():
        if owner == tenant:
            return issuer
    known = ", ".join(sorted(set(issuers.values()))) or "none"
    raise ClientCredentialsRefused(f"no OIDC issuer is configured for tenant {tenant!r} (tenants: {known})")


class ClientCredentials:
    """Bearer tokens for one confidential client at one issuer (OAuth 2.0 client credentials grant)."""

    def __init__(
        self, issuer: str, client_id: str, client_secret: str, *, http: httpx.Client | None = None,
        refresh_margin: float = 30.0, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not client_secret:
            raise ClientCredentialsRefused(f"no secret for client {client_id!r} (set CASESTREAM_OIDC_CLIENT_SECRET)")
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.http = http or httpx.Client(timeout=httpx.Timeout(10.0, connect=3.0))
        self.refresh_margin = refresh_margin
        self.clock = clock
        self._token_endpoint: str | None = None
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def token_endpoint(self) -> str:
        """From the issuer's discovery document (fetched once)."""
        if self._token_endpoint is None:
            doc = self._json("GET", f"{self.issuer}/.well-known/openid-configuration")
            endpoint = doc.get("token_endpoint")
            if doc.get("issuer") != self.issuer or not isinstance(endpoint, str):
                raise ClientCredentialsRefused(f"{self.issuer} has no usable discovery document")
            self._token_endpoint = endpoint
        return self._token_endpoint

    def access_token(self) -> str:
        """A token valid for at least refresh_margin more seconds (a new one is fetched when needed)."""
        with self._lock:
            if self._token is None or self.clock() >= self._expires - self.refresh_margin:
                reply = self._json("POST", self.token_endpoint(), data={
                    "grant_type": "client_credentials", "client_id": self.client_id,
                    "client_secret": self.client_secret,
                })
                token = reply.get("access_token")
                if not isinstance(token, str):
                    raise ClientCredentialsRefused(f"{self.issuer} answered without an access token")
                lifetime = reply.get("expires_in")
                self._token = token
                self._expires = self.clock() + (float(lifetime) if isinstance(lifetime, (int, float)) else 60.0)
            return self._token

    def headers(self) -> dict[str, str]:
        """The Authorization header for an API request."""
        return {"Authorization": f"Bearer {self.access_token()}"}

    def _json(self, method: str, url: str, data: dict[str, str] | None = None) -> dict[str, object]:
        try:
            reply = self.http.request(method, url, data=data)
        except httpx.HTTPError as exc:
            raise ClientCredentialsRefused(f"{url} could not be reached: {exc}") from exc
        try:
            body = reply.json()
        except ValueError:
            body = None
        if reply.status_code != 200 or not isinstance(body, dict):
            detail = body.get("error_description") or body.get("error") if isinstance(body, dict) else reply.text[:200]
            raise ClientCredentialsRefused(f"{url} answered {reply.status_code}: {detail}")
        return body
