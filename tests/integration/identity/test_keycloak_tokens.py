"""Tokens from the real Keycloak (infra/) through the HTTP API of an app that trusts only its realms.

Every refused token gets 401 problem+json and stores nothing (the event store's max position does not move).
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import KeySet, RSAKey

from casestream.settings import Settings
from infra.server import Server
from tests.http_server import LiveServer, live_server
from tests.integration.api.conftest import CLAIM
from tests.integration.identity.keycloak_admin import KeycloakAdmin, issuer, password_token

PASSWORD = "casestream"  # the demo users' password in infra/keycloak_realms/*.json
SCRATCH_USER, SCRATCH_PASSWORD = "sam", "scratch-password"
CASE = {"definition_key": "claim", "title": "Hail on the roof", "data": {"amount": 250}}


@pytest.fixture(scope="module")
def admin(keycloak_server: Server) -> Iterator[KeycloakAdmin]:
    client = KeycloakAdmin()
    yield client
    client.close()


@pytest.fixture(scope="module")
def scratch(admin: KeycloakAdmin) -> Iterator[str]:
    """A realm of this module only (its keys are rotated and its token lifespan shortened), deleted afterwards."""
    realm = admin.create_scratch_realm(SCRATCH_USER, SCRATCH_PASSWORD)
    yield realm
    admin.delete_realm(realm)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, scratch: str) -> Iterator[LiveServer]:
    issuers = {issuer("acme"): "acme", issuer("globex"): "globex", issuer(scratch): "scratch"}
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("oidc")), oidc_issuers=issuers, token_leeway_seconds=1,
                        jwks_refetch_interval_seconds=0.5)
    with live_server(settings) as live:
        reply = httpx.post(f"{live.url}/api/definitions", json=CLAIM, headers=_bearer("acme", "bob"))
        assert reply.status_code == 200, reply.text
        yield live


def _bearer(realm: str, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {password_token(realm, user, PASSWORD)}"}


def _refused(server: LiveServer, token: str | None, reason: str) -> None:
    before = server.platform.store.max_position()
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    reply = httpx.post(f"{server.url}/api/cases", json=CASE, headers=headers, timeout=30)
    assert reply.status_code == 401, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reason in reply.json()["detail"], reply.json()
    assert server.platform.store.max_position() == before


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    return decode(header), decode(payload), signature


def test_a_keycloak_token_works_end_to_end(server: LiveServer) -> None:
    alice = _bearer("acme", "alice")
    me = httpx.get(f"{server.url}/api/me", headers=alice).json()
    assert (me["user"], me["tenant"], me["roles"]) == ("alice", "acme", ["caseworker"])
    opened = httpx.post(f"{server.url}/api/cases", json=CASE, headers=alice)
    assert opened.status_code == 201, opened.text
    case = httpx.get(f"{server.url}/api/cases/{opened.json()['id']}", headers=alice,
                     params={"wait_for": opened.json()["position"]})
    assert case.status_code == 200 and case.json()["title"] == "Hail on the roof"
    assert server.platform.verifier.verify(alice["Authorization"][7:]).groups == ("claims-team",)


def test_no_token_is_refused(server: LiveServer) -> None:
    _refused(server, None, "bearer token is required")


def test_alg_none_is_refused(server: LiveServer) -> None:
    _, payload, _ = password_token("acme", "alice", PASSWORD).split(".")
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    _refused(server, f"{header}.{payload}.", "algorithm 'none'")


def test_hs256_signed_with_the_realms_public_key_is_refused(server: LiveServer) -> None:
    genuine = password_token("acme", "alice", PASSWORD)
    header, _, _ = _parts(genuine)
    keys = KeySet.import_key_set(httpx.get(f"{issuer('acme')}/protocol/openid-connect/certs").json())
    public = keys.get_by_kid(header["kid"])
    assert isinstance(public, RSAKey)
    pem = public.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'kid': header['kid']}).encode())}.{genuine.split('.')[1]}"
    _refused(server, f"{signing_input}.{_b64(hmac.digest(pem, signing_input.encode(), 'sha256'))}", "'HS256'")


def test_a_token_of_an_issuer_not_configured_is_refused(server: LiveServer, admin: KeycloakAdmin) -> None:
    from infra.keycloak import ADMIN_PASSWORD, ADMIN_USER

    master = password_token("master", ADMIN_USER, ADMIN_PASSWORD, "admin-cli")
    _refused(server, master, "issuer 'http://127.0.0.1:28080/realms/master' is not accepted")


def test_a_token_for_another_audience_is_refused(server: LiveServer) -> None:
    # admin-cli exists in every realm and adds no casestream audience
    _refused(server, password_token("acme", "alice", PASSWORD, "admin-cli"), "audience")


def test_a_tampered_token_is_refused(server: LiveServer) -> None:
    header, claims, signature = password_token("acme", "alice", PASSWORD).split(".")
    _, decoded, _ = _parts(f"{header}.{claims}.{signature}")
    decoded["realm_access"] = {"roles": ["admin"]}
    _refused(server, f"{header}.{_b64(json.dumps(decoded).encode())}.{signature}", "rejected")


def test_another_realms_signature_under_this_realms_issuer_is_refused(server: LiveServer) -> None:
    header, claims, signature = password_token("globex", "alice", PASSWORD).split(".")
    _, decoded, _ = _parts(f"{header}.{claims}.{signature}")
    decoded["iss"] = issuer("acme")  # globex signed it; acme's keys do not include globex's kid
    _refused(server, f"{header}.{_b64(json.dumps(decoded).encode())}.{signature}", "is not among the signing keys")


def test_another_realms_token_finds_nothing_of_this_tenant_and_changes_nothing(server: LiveServer) -> None:
    opened = httpx.post(f"{server.url}/api/cases", json=CASE, headers=_bearer("acme", "alice")).json()
    globex = _bearer("globex", "admin")
    assert httpx.get(f"{server.url}/api/me", headers=globex).json()["tenant"] == "globex"
    before = server.platform.store.max_position()
    read = httpx.get(f"{server.url}/api/cases/{opened['id']}", headers=globex)
    assert read.status_code == 404, read.text
    comment = httpx.post(f"{server.url}/api/cases/{opened['id']}/comments", json={"body": "hello"}, headers=globex)
    assert comment.status_code in (403, 404), comment.text
    assert comment.headers["content-type"].startswith("application/problem+json")
    assert server.platform.store.max_position() == before


def test_an_expired_keycloak_token_is_refused(server: LiveServer, admin: KeycloakAdmin, scratch: str) -> None:
    admin.set_token_lifespan(scratch, 2)
    try:
        token = password_token(scratch, SCRATCH_USER, SCRATCH_PASSWORD)
    finally:
        admin.set_token_lifespan(scratch, 300)
    assert httpx.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    time.sleep(2 + 1 + 1.5)  # lifespan + leeway + a margin
    _refused(server, token, "expired")


def test_a_token_signed_with_a_rotated_out_key_is_refused(
        server: LiveServer, admin: KeycloakAdmin, scratch: str) -> None:
    old = password_token(scratch, SCRATCH_USER, SCRATCH_PASSWORD)
    assert httpx.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {old}"}).json()["tenant"] == "scratch"
    admin.rotate_signing_key(scratch)
    new = password_token(scratch, SCRATCH_USER, SCRATCH_PASSWORD)
    assert _parts(new)[0]["kid"] != _parts(old)[0]["kid"]
    time.sleep(0.6)  # past jwks_refetch_interval_seconds since the first fetch
    # the new kid is unknown: the JWKS is fetched again, and the old key is no longer in it
    assert httpx.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {new}"}).status_code == 200
    _refused(server, old, "is not among the signing keys")


@pytest.mark.parametrize("method, path", [
    ("POST", "/auth/token"), ("GET", "/.well-known/jwks.json"), ("GET", "/.well-known/openid-configuration"),
])
def test_the_built_in_issuer_is_off_when_oidc_issuers_are_set(server: LiveServer, method: str, path: str) -> None:
    form = {"grant_type": "password", "username": "alice", "password": "casestream"} if method == "POST" else None
    reply = httpx.request(method, f"{server.url}{path}", data=form)
    assert reply.status_code == 404, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert "built-in issuer is off" in reply.json()["detail"]
