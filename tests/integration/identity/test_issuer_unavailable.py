"""An issuer that cannot be reached makes its tokens uncheckable: 503 with Retry-After, never 401, nothing stored."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from adapters.oidc import OidcVerifier
from adapters.tokens import IssuerUnavailable
from casestream.settings import Settings
from tests.http_server import LiveServer, live_server


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


ISSUER = f"http://127.0.0.1:{_closed_port()}/realms/acme"


def _token() -> str:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "casestream", "sub": "alice", "preferred_username": "alice",
              "iat": now, "exp": now + 300, "realm_access": {"roles": ["caseworker"]}}
    return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)


def test_the_verifier_says_the_issuer_is_unavailable_and_does_not_hammer_it() -> None:
    verifier = OidcVerifier({ISSUER: "acme"}, audience="casestream", role_claims=["realm_access.roles"],
                            group_claim="groups", leeway=30, max_lifetime=3600, jwks_cache_seconds=300,
                            jwks_refetch_interval=60)
    token = _token()
    with pytest.raises(IssuerUnavailable, match="could not be fetched") as first:
        verifier.verify(token)
    assert 1 <= first.value.retry_after <= 60
    with pytest.raises(IssuerUnavailable):  # answered from the remembered failure, no new fetch
        verifier.verify(token)
    assert verifier.keys[ISSUER].fetches == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data: Path = tmp_path_factory.mktemp("issuer-down")
    with live_server(Settings(data_dir=data, oidc_issuers={ISSUER: "acme"})) as live:
        # the shipped processes are deployed (stored) as they start: the test counts what is stored from there
        assert live.platform.processes is not None and live.platform.processes.wait_ready(60)
        yield live


def test_a_request_with_a_token_of_an_unreachable_issuer_is_503_with_retry_after(server: LiveServer) -> None:
    before = server.platform.store.max_position()
    auth = {"Authorization": f"Bearer {_token()}"}
    for reply in (httpx.get(f"{server.url}/api/me", headers=auth),
                  httpx.post(f"{server.url}/api/cases", headers=auth,
                             json={"definition_key": "claim", "title": "x", "data": {}})):
        assert reply.status_code == 503, reply.text
        assert reply.headers["content-type"] == "application/problem+json"
        assert reply.json()["type"].endswith("/issuer-unavailable")
        assert int(reply.headers["retry-after"]) >= 1
    assert server.platform.store.max_position() == before
