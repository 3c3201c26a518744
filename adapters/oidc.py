"""The OIDC resource server: verifies access tokens of the configured external issuers (Keycloak, a realm per tenant).

See docs/identity.md for what is checked, how tenant, roles and groups are derived, and what is cached.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError

from adapters.jwks import IssuerKeys, algorithms_for
from adapters.tokens import TokenInvalid, VerifiedTokens, without_internal_roles
from casestream.settings import Settings
from commands.bus import Actor

# Roles Keycloak gives every user of a realm; they mean nothing to casestream, so they are dropped rather than
# carried into audit trails and policy inputs.
KEYCLOAK_DEFAULT_ROLES = frozenset({"offline_access", "uma_authorization"})


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """The value at a dotted claim path (`realm_access.roles`), None when any step is missing."""
    value: Any = claims
    for step in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


class OidcVerifier:
    """Verifies a token with the keys of the issuer it names, if that issuer is configured; the tenant is the
    issuer's (settings.oidc_issuers), never a claim."""

    def __init__(
        self, issuers: dict[str, str], *, audience: str, role_claims: list[str], group_claim: str,
        leeway: int, max_lifetime: int, jwks_cache_seconds: float, jwks_refetch_interval: float,
        http: httpx.Client | None = None,
    ) -> None:
        if not issuers:
            raise ValueError("OidcVerifier needs at least one issuer")
        self.tenants = dict(issuers)
        self.audience = audience
        self.role_claims = [path.replace("{audience}", audience) for path in role_claims]
        self.group_claim = group_claim
        self.leeway = leeway
        self.max_lifetime = max_lifetime
        self.jwks_cache_seconds = jwks_cache_seconds
        self.http = http or httpx.Client(timeout=httpx.Timeout(5.0, connect=2.0), follow_redirects=False)
        self.verified = VerifiedTokens()
        self.keys = {
            issuer: IssuerKeys(issuer, self.http, cache_seconds=jwks_cache_seconds,
                               refetch_interval=jwks_refetch_interval, on_keys_removed=self.verified.clear)
            for issuer in issuers
        }

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.Client | None = None) -> OidcVerifier:
        return cls(
            settings.oidc_issuers, audience=settings.audience, role_claims=settings.oidc_role_claims,
            group_claim=settings.oidc_group_claim, leeway=settings.token_leeway_seconds,
            max_lifetime=settings.token_max_lifetime_seconds, jwks_cache_seconds=settings.jwks_cache_seconds,
            jwks_refetch_interval=settings.jwks_refetch_interval_seconds, http=http,
        )

    def known(self, token: str) -> Actor | None:
        """The actor of a token verified before and still trusted."""
        return self.verified.get(token)

    def verify(self, token: str) -> Actor:
        """The actor of a valid token; TokenInvalid saying why otherwise. Verified tokens are kept until they expire."""
        actor = self.verified.get(token)
        if actor is not None:
            return actor
        actor, expires_at = self._verify(token)
        # never trusted longer than the keys that verified it: a key dropped from the JWKS stops working at the latest
        # when the JWKS cache runs out
        self.verified.put(token, actor, min(expires_at, time.time() + self.jwks_cache_seconds))
        return actor

    def close(self) -> None:
        self.http.close()

    def _verify(self, token: str) -> tuple[Actor, float]:
        header, unverified = _peek(token)
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or issuer not in self.keys:
            raise TokenInvalid(f"token issuer {issuer!r} is not accepted here")
        alg = header.get("alg")
        # an alg none or HS* token never reaches a key: only asymmetric algorithms fit any key we hold
        if not isinstance(alg, str) or alg in ("none",) or alg.startswith("HS"):
            raise TokenInvalid(f"token algorithm {alg!r} is not accepted (asymmetric signatures only)")
        kid = header.get("kid")
        key = self.keys[issuer].key_for(kid if isinstance(kid, str) else None)
        if alg not in algorithms_for(key):
            raise TokenInvalid(f"token algorithm {alg} does not fit key {kid!r} of {issuer}")
        try:
            claims = jwt.decode(token, key, algorithms=[alg]).claims
        except JoseError as exc:
            raise TokenInvalid(f"token rejected: {exc.description or exc.error}") from None
        except ValueError as exc:
            raise TokenInvalid(f"token malformed: {exc}") from None
        expires_at = self._check_claims(claims, issuer)
        return self._actor(claims, issuer), expires_at

    def _check_claims(self, claims: dict[str, Any], issuer: str) -> float:
        now = time.time()
        if claims.get("iss") != issuer:
            raise TokenInvalid("token issuer changed under its signature")
        if self.audience not in _strings(claims.get("aud")):
            raise TokenInvalid(f"token audience does not include {self.audience!r}")
        exp, iat = _time_claim(claims, "exp"), _time_claim(claims, "iat")
        if now > exp + self.leeway:
            raise TokenInvalid("token expired")
        if iat > now + self.leeway:
            raise TokenInvalid("token issued in the future (iat)")
        if "nbf" in claims and _time_claim(claims, "nbf") > now + self.leeway:
            raise TokenInvalid("token not valid yet (nbf)")
        if exp - iat > self.max_lifetime:
            raise TokenInvalid(f"token lifetime {exp - iat:.0f}s exceeds the allowed {self.max_lifetime}s")
        # Keycloak marks its token kinds; an ID or refresh token is not an access token
        kind = claims.get("typ")
        if kind is not None and (not isinstance(kind, str) or kind.lower() != "bearer"):
            raise TokenInvalid(f"token of type {kind!r} is not an access token")
        return exp

    def _actor(self, claims: dict[str, Any], issuer: str) -> Actor:
        user = claims.get("preferred_username") or claims.get("sub")
        if not isinstance(user, str) or not user:
            raise TokenInvalid("token names no user (preferred_username or sub)")
        roles: list[str] = []
        for path in self.role_claims:
            roles.extend(_strings(claim_at(claims, path)))
        kept = [r for r in roles if r not in KEYCLOAK_DEFAULT_ROLES and not r.startswith("default-roles-")]
        groups = tuple(dict.fromkeys(g.lstrip("/") for g in _strings(claim_at(claims, self.group_claim))))
        return Actor(user=user, tenant=self.tenants[issuer], roles=without_internal_roles(kept),
                     groups=tuple(g for g in groups if g))


def _time_claim(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TokenInvalid(f"token has no numeric {name} claim")
    return float(value)


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims before any check: only to choose the issuer and key, never to decide anything else."""
    try:
        compact = jws.extract_compact(token.encode("ascii"))
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError) as exc:
        raise TokenInvalid(f"token malformed: {exc}") from None
    if not isinstance(claims, dict):
        raise TokenInvalid("token claims are not a JSON object")
    return dict(compact.headers()), claims
