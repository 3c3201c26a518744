"""The built-in issuer's password grant over HTTP: member tenants only, lockout per user and per client address.

The server runs under uvicorn, which takes the client address from X-Forwarded-For when the peer is 127.0.0.1 (its
default forwarded_allow_ips): that is how these tests come from several addresses.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from casestream.settings import Settings
from tests.http_server import LiveServer, live_server

LOCKOUT = 3.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("grant")), login_max_failures=3,
                        login_lockout_seconds=LOCKOUT)
    with live_server(settings) as live:
        yield live


def _grant(server: LiveServer, user: str, password: str, address: str, tenant: str | None = None) -> httpx.Response:
    form = {"grant_type": "password", "username": user, "password": password} | ({"tenant": tenant} if tenant else {})
    return httpx.post(f"{server.url}/auth/token", data=form, headers={"X-Forwarded-For": address}, timeout=30)


def _problem(reply: httpx.Response, status: int, code: str) -> str:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["type"].endswith(code)
    return str(reply.json()["detail"])


def test_a_token_only_for_a_tenant_the_user_belongs_to(server: LiveServer) -> None:
    detail = _problem(_grant(server, "alice", "casestream", "10.1.0.1", tenant="globex"), 403, "not-a-member")
    assert "alice is not a member of tenant globex" in detail
    granted = _grant(server, "admin", "casestream", "10.1.0.1", tenant="globex")
    assert granted.status_code == 200, granted.text
    actor = server.platform.verifier.verify(granted.json()["access_token"])
    assert (actor.tenant, actor.roles) == ("globex", ("admin", "supervisor"))
    alice = server.platform.verifier.verify(_grant(server, "alice", "casestream", "10.1.0.1").json()["access_token"])
    assert (alice.tenant, alice.roles, alice.groups) == ("acme", ("caseworker",), ("claims-team",))


def test_a_user_is_locked_out_after_repeated_failures_even_with_the_right_password(server: LiveServer) -> None:
    for n in range(3):
        _problem(_grant(server, "bob", f"guess-{n}", f"10.2.0.{n}"), 401, "invalid-credentials")
    locked = _grant(server, "bob", "casestream", "10.2.0.9")
    assert "too many failed logins" in _problem(locked, 429, "login-locked")
    assert 1 <= int(locked.headers["Retry-After"]) <= LOCKOUT
    assert _grant(server, "carol", "casestream", "10.2.0.9").status_code == 200  # only bob is locked
    time.sleep(LOCKOUT + 0.2)
    assert _grant(server, "bob", "casestream", "10.2.0.9").status_code == 200


def test_an_address_is_locked_out_after_repeated_failures_across_users(server: LiveServer) -> None:
    for user in ("alice", "carol", "nobody"):
        _problem(_grant(server, user, "wrong", "10.3.0.1"), 401, "invalid-credentials")
    _problem(_grant(server, "admin", "casestream", "10.3.0.1"), 429, "login-locked")
    assert _grant(server, "admin", "casestream", "10.3.0.2").status_code == 200
