"""Keycloak issues tokens per tenant realm that verify against that realm's JWKS, and only that realm's."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from infra.keycloak import AUDIENCE, KeycloakServer, demo_password, realm_definition, realm_names
from infra.server import Server


def _kc(server: Server) -> KeycloakServer:
    assert isinstance(server, KeycloakServer)
    return server


def _worker_secret(realm: str) -> str:
    clients = realm_definition(realm)["clients"]
    return str(next(c["secret"] for c in clients if c["clientId"] == "casestream-worker"))


def _token(kc: KeycloakServer, realm: str, form: dict[str, str]) -> str:
    response = httpx.post(kc.token_endpoint(realm), data=form, timeout=30.0)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _worker_token(kc: KeycloakServer, realm: str) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": "casestream-worker",
        "client_secret": _worker_secret(realm),
    }
    return _token(kc, realm, form)


def _password_token(kc: KeycloakServer, realm: str, user: str) -> str:
    form = {
        "grant_type": "password",
        "client_id": "casestream-test",
        "username": user,
        "password": demo_password(realm, user),
        "scope": "openid",
    }
    return _token(kc, realm, form)


def _verify(kc: KeycloakServer, realm: str, token: str) -> dict[str, Any]:
    """Check signature against the realm's JWKS, then iss, aud and exp; return the claims."""
    jwks = httpx.get(kc.jwks_uri(realm), timeout=10.0).json()
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": kc.issuer(realm)},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
    )
    registry.validate(decoded.claims)
    return dict(decoded.claims)


def _listening_addresses(pgid: int) -> set[str]:
    """Local addresses of TCP sockets in LISTEN state owned by processes of this process group."""
    inodes: set[str] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != pgid:
                continue
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    addresses: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                addresses.add(fields[1].split(":")[0])
    return addresses


def test_listens_only_on_loopback(keycloak_server: Server) -> None:
    pid = keycloak_server.pid()
    assert pid is not None
    addresses = _listening_addresses(os.getpgid(pid))
    assert addresses, "no listening socket found for the Keycloak process group"
    # 127.0.0.1 as /proc writes it, in IPv4 and in IPv4-mapped IPv6 form.
    loopback = {"0100007F", "0000000000000000FFFF00000100007F"}
    assert addresses <= loopback, addresses


def test_health_and_discovery(keycloak_server: Server) -> None:
    kc = _kc(keycloak_server)
    ready = httpx.get(f"{kc.management_url()}/health/ready", timeout=10.0)
    assert ready.status_code == 200 and ready.json()["status"] == "UP"
    assert realm_names() == ["acme", "globex"]
    for realm in realm_names():
        doc = httpx.get(f"{kc.issuer(realm)}/.well-known/openid-configuration", timeout=10.0).json()
        assert doc["issuer"] == kc.info()[f"issuer_{realm}"] == f"http://127.0.0.1:28080/realms/{realm}"
        assert doc["token_endpoint"] == kc.token_endpoint(realm)
        assert "S256" in doc["code_challenge_methods_supported"]
    admin_form = {
        "grant_type": "password",
        "client_id": "admin-cli",
        "username": kc.info()["admin_user"],
        "password": kc.info()["admin_password"],
    }
    admin_token = httpx.post(kc.token_endpoint("master"), data=admin_form, timeout=30.0)
    assert admin_token.status_code == 200, admin_token.text
    realms = httpx.get(
        f"{kc.url()}/admin/realms",
        headers={"Authorization": f"Bearer {admin_token.json()['access_token']}"},
        timeout=30.0,
    )
    assert {r["realm"] for r in realms.json()} == {"master", "acme", "globex"}


@pytest.mark.parametrize("realm", ["acme", "globex"])
def test_worker_client_credentials_token(keycloak_server: Server, realm: str) -> None:
    kc = _kc(keycloak_server)
    claims = _verify(kc, realm, _worker_token(kc, realm))
    assert claims["tenant"] == realm
    assert "worker" in claims["roles"]
    assert claims["azp"] == "casestream-worker"
    assert claims["preferred_username"] == "service-account-casestream-worker"


@pytest.mark.parametrize("realm", ["acme", "globex"])
def test_user_password_grant_token(keycloak_server: Server, realm: str) -> None:
    kc = _kc(keycloak_server)
    alice = _verify(kc, realm, _password_token(kc, realm, "alice"))
    assert alice["tenant"] == realm
    assert alice["preferred_username"] == "alice"
    assert "caseworker" in alice["roles"] and "supervisor" not in alice["roles"]
    assert alice["realm_access"]["roles"] == ["caseworker"]
    assert alice["groups"] == ["claims-team"]
    bob = _verify(kc, realm, _password_token(kc, realm, "bob"))
    assert "supervisor" in bob["roles"] and "caseworker" not in bob["roles"]
    assert sorted(bob["groups"]) == ["claims-team", "fraud-team"]
    admin = _verify(kc, realm, _password_token(kc, realm, "admin"))
    assert sorted(admin["realm_access"]["roles"]) == ["admin", "supervisor"]


def test_portal_client_is_public_with_pkce_and_knows_the_portal_addresses() -> None:
    for realm in realm_names():
        portal = next(c for c in realm_definition(realm)["clients"] if c["clientId"] == "casestream-portal")
        assert portal["publicClient"] and portal["standardFlowEnabled"] and not portal["directAccessGrantsEnabled"]
        assert portal["attributes"]["pkce.code.challenge.method"] == "S256"
        # the front door of `up --distributed`, its first API replica and `./run`
        for origin in ("http://127.0.0.1:28000", "http://127.0.0.1:8101", "http://127.0.0.1:8000"):
            assert origin in portal["webOrigins"] and f"{origin}/*" in portal["redirectUris"]


def test_token_from_one_realm_does_not_verify_in_another(keycloak_server: Server) -> None:
    kc = _kc(keycloak_server)
    acme_token = _worker_token(kc, "acme")
    assert _verify(kc, "acme", acme_token)["tenant"] == "acme"
    globex_keys = httpx.get(kc.jwks_uri("globex"), timeout=10.0).json()
    acme_keys = httpx.get(kc.jwks_uri("acme"), timeout=10.0).json()
    assert {k["kid"] for k in globex_keys["keys"]}.isdisjoint({k["kid"] for k in acme_keys["keys"]})
    with pytest.raises((JoseError, ValueError)):
        _verify(kc, "globex", acme_token)
    # Even with the right keys, globex's issuer check must refuse an acme token.
    decoded = jwt.decode(acme_token, KeySet.import_key_set(acme_keys), algorithms=["RS256"])
    with pytest.raises(JoseError):
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": kc.issuer("globex")}).validate(decoded.claims)


def test_bad_credentials_are_refused(keycloak_server: Server) -> None:
    kc = _kc(keycloak_server)
    wrong_secret = {
        "grant_type": "client_credentials",
        "client_id": "casestream-worker",
        "client_secret": _worker_secret("globex"),
    }
    assert httpx.post(kc.token_endpoint("acme"), data=wrong_secret, timeout=30.0).status_code == 401
    wrong_password = {
        "grant_type": "password",
        "client_id": "casestream-test",
        "username": "alice",
        "password": "not-her-password",
    }
    assert httpx.post(kc.token_endpoint("acme"), data=wrong_password, timeout=30.0).status_code == 401
