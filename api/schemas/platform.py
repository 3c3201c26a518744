"""Replies of the platform routes: who am I, sign-in, tokens, health and readiness."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Me(BaseModel):
    """The token's subject."""

    user: str
    tenant: str
    roles: list[str]


class OidcIssuer(BaseModel):
    """A tenant's sign-in service and the portal's public client there."""

    tenant: str
    issuer: str
    authorization_endpoint: str | None
    token_endpoint: str | None
    end_session_endpoint: str | None
    client_id: str


class SigninConfig(BaseModel):
    """How the portal signs in: password (the built-in issuer) or oidc (external issuers)."""

    mode: Literal["password", "oidc"]
    issuers: list[OidcIssuer] | None = Field(default=None, description="With mode oidc: one per tenant.")


class TokenReply(BaseModel):
    """An access token of the built-in issuer."""

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    tenant: str


class Health(BaseModel):
    """The process is up."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """The event store, read models, runner and processes as this instance sees them (no internal error text)."""

    model_config = ConfigDict(extra="allow")
    status: Literal["ready", "unavailable"]
    error: str | None = Field(default=None, description="Only when the store or read models did not answer.")
    event_store: dict[str, Any] | None = None
    read_models: dict[str, Any] | None = None
    runner: dict[str, Any] | None = None
    lag: dict[str, Any] | None = None
    processes: dict[str, Any] | None = None


class Discovery(BaseModel):
    """The built-in issuer's OpenID discovery document."""

    model_config = ConfigDict(extra="allow")
    issuer: str
    jwks_uri: str
    token_endpoint: str


class Jwks(BaseModel):
    """The built-in issuer's public keys."""

    keys: list[dict[str, Any]]
