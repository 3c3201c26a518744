"""The built-in token issuer (embedded mode): RS256 keys on disk, JWKS, discovery, and verification.

External OIDC issuers (Keycloak, adapters/oidc.py) take this role when configured; both hand the API the same `Actor`.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from adapters.tokens import TokenInvalid, VerifiedTokens, without_internal_roles
from commands.bus import Actor

__all__ = ["ROLE_NAMES", "BuiltinIssuer", "TokenInvalid"]

ROLE_NAMES = frozenset({"caseworker", "supervisor", "admin", "viewer", "worker"})


def _load_or_create_key(path: Path) -> RSAKey:
    if path.exists():
        return RSAKey.import_key(json.loads(path.read_text()))
    key = RSAKey.generate_key(2048, parameters={"kid": uuid.uuid4().hex[:16], "use": "sig", "alg": "RS256"})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(key.as_dict(private=True)))
    os.replace(tmp, path)
    return key


class BuiltinIssuer:
    """Signs and verifies RS256 tokens carrying sub, tenant, roles and groups (a TokenVerifier)."""

    def __init__(self, key_path: Path, issuer: str, audience: str, ttl_seconds: int) -> None:
        self.key = _load_or_create_key(key_path)
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl_seconds
        self._keys = KeySet([self.key])
        self._verified = VerifiedTokens()
        self._claims = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            sub={"essential": True},
        )

    def issue(
        self, user: str, tenant: str, roles: list[str] | tuple[str, ...], ttl: int | None = None,
        groups: list[str] | tuple[str, ...] = (),
    ) -> str:
        """A signed token for user in tenant with roles and groups."""
        now = int(time.time())
        claims = {
            "iss": self.issuer, "aud": self.audience, "sub": user, "tenant": tenant, "roles": list(roles),
            "groups": list(groups),
            "iat": now, "nbf": now, "exp": now + (ttl if ttl is not None else self.ttl), "jti": uuid.uuid4().hex,
        }
        return jwt.encode({"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}, claims, self.key)

    def known(self, token: str) -> Actor | None:
        """The actor of a token verified before and not expired since."""
        return self._verified.get(token)

    def verify(self, token: str) -> Actor:
        """The actor a valid token names; TokenInvalid saying why otherwise.

        A verified token is remembered until it expires: the signature check costs more than the rest of a
        typical request, and a token cannot change.
        """
        cached = self._verified.get(token)
        if cached is not None:
            return cached
        actor, expires = self._verify(token)
        self._verified.put(token, actor, expires)
        return actor

    def _verify(self, token: str) -> tuple[Actor, int]:
        try:
            decoded = jwt.decode(token, self._keys, algorithms=["RS256"])
            self._claims.validate(decoded.claims)
        except JoseError as exc:
            raise TokenInvalid(f"token rejected: {exc.description or exc.error}") from None
        except ValueError as exc:
            raise TokenInvalid(f"token malformed: {exc}") from None
        claims = decoded.claims
        tenant, roles, groups = claims.get("tenant"), claims.get("roles", []), claims.get("groups", [])
        if not isinstance(tenant, str) or not tenant:
            raise TokenInvalid("token has no tenant claim")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise TokenInvalid("token roles claim must be a list of strings")
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise TokenInvalid("token groups claim must be a list of strings")
        actor = Actor(user=str(claims["sub"]), tenant=tenant, roles=without_internal_roles(roles), groups=tuple(groups))
        return actor, int(claims["exp"])

    def jwks(self) -> dict[str, Any]:
        return dict(self._keys.as_dict(private=False))

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/.well-known/jwks.json",
            "token_endpoint": f"{self.issuer}/auth/token",
            "id_token_signing_alg_values_supported": ["RS256"],
            "grant_types_supported": ["password"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
        }
