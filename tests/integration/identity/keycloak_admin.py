"""Keycloak's admin REST API for the identity tests: a throwaway realm of their own, its keys rotated."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from infra.keycloak import ADMIN_PASSWORD, ADMIN_USER, AUDIENCE, HTTP_PORT

KEYCLOAK = f"http://127.0.0.1:{HTTP_PORT}"
KEY_PROVIDER = "org.keycloak.keys.KeyProvider"


def issuer(realm: str) -> str:
    return f"{KEYCLOAK}/realms/{realm}"


def password_token(realm: str, user: str, password: str, client_id: str = "casestream-test") -> str:
    """An access token from the realm's token endpoint (password grant)."""
    reply = httpx.post(f"{issuer(realm)}/protocol/openid-connect/token", timeout=30, data={
        "grant_type": "password", "client_id": client_id, "username": user, "password": password, "scope": "openid",
    })
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


class KeycloakAdmin:
    """A few admin calls, authenticated as the master realm's admin."""

    def __init__(self) -> None:
        self.http = httpx.Client(base_url=f"{KEYCLOAK}/admin/realms", timeout=30)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {password_token('master', ADMIN_USER, ADMIN_PASSWORD, 'admin-cli')}"}

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        reply = self.http.request(method, path, json=body, headers=self._auth())
        assert reply.status_code < 300, f"{method} {path}: {reply.status_code} {reply.text}"
        return reply

    def create_scratch_realm(self, user: str, password: str) -> str:
        """A realm with one caseworker and the casestream-test client (password grant, audience casestream)."""
        name = f"cs-scratch-{uuid.uuid4().hex[:8]}"
        self.call("POST", "", {
            "realm": name, "enabled": True, "accessTokenLifespan": 300,
            "roles": {"realm": [{"name": "caseworker"}]},
            "users": [{
                "username": user, "enabled": True, "email": f"{user}@scratch.test", "emailVerified": True,
                "firstName": "Scratch", "lastName": "User", "realmRoles": ["caseworker"],
                "credentials": [{"type": "password", "value": password, "temporary": False}],
            }],
            "clients": [{
                "clientId": "casestream-test", "enabled": True, "publicClient": True,
                "directAccessGrantsEnabled": True, "standardFlowEnabled": False,
                "protocolMappers": [{
                    "name": "audience", "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
                    "config": {"included.custom.audience": AUDIENCE, "access.token.claim": "true"},
                }],
            }],
        })
        return name

    def delete_realm(self, realm: str) -> None:
        self.call("DELETE", f"/{realm}")

    def set_token_lifespan(self, realm: str, seconds: int) -> None:
        self.call("PUT", f"/{realm}", {"realm": realm, "accessTokenLifespan": seconds})

    def signing_providers(self, realm: str) -> list[dict[str, Any]]:
        found = self.call("GET", f"/{realm}/components", None).json()
        return [c for c in found if c.get("providerType") == KEY_PROVIDER and c.get("providerId") == "rsa-generated"]

    def rotate_signing_key(self, realm: str) -> None:
        """Add a new RS256 key with a higher priority, then delete the old signing key providers."""
        old = self.signing_providers(realm)
        realm_id = self.call("GET", f"/{realm}").json()["id"]
        self.call("POST", f"/{realm}/components", {
            "name": "rsa-rotated", "providerId": "rsa-generated", "providerType": KEY_PROVIDER, "parentId": realm_id,
            "config": {"priority": ["500"], "enabled": ["true"], "active": ["true"], "keySize": ["2048"],
                       "algorithm": ["RS256"]},
        })
        for provider in old:
            self.call("DELETE", f"/{realm}/components/{provider['id']}")

    def close(self) -> None:
        self.http.close()
