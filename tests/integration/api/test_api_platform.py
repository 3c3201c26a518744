"""Identity, health and the live SSE feed over HTTP."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from tests.http_server import LiveServer
from tests.integration.api.conftest import open_claim
from tests.sse import collect_sse


def test_health_and_readiness(server: LiveServer) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_password_grant_and_discovery(server: LiveServer) -> None:
    conf = httpx.get(f"{server.url}/.well-known/openid-configuration").json()
    assert conf["issuer"] == server.url
    jwks = httpx.get(conf["jwks_uri"]).json()
    assert jwks["keys"][0]["kty"] == "RSA"
    assert "d" not in jwks["keys"][0]  # never the private part
    bad = httpx.post(f"{server.url}/auth/token", data={"grant_type": "password", "username": "bob", "password": "x"})
    assert bad.status_code == 401
    good = httpx.post(
        f"{server.url}/auth/token", data={"grant_type": "password", "username": "bob", "password": "casestream"}
    )
    assert good.status_code == 200
    me = httpx.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {good.json()['access_token']}"})
    assert me.json() == {"user": "bob", "tenant": "acme", "roles": ["supervisor"]}


def test_openapi_is_served(server: LiveServer) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "/api/cases" in spec["paths"]
    assert "/api/cases/{case_id}/stage" in spec["paths"]


def _read_sse(server: LiveServer, headers: dict[str, str], want: int, out: list[dict[str, Any]],
              params: dict[str, str] | None = None, timeout: float = 20) -> None:
    try:
        _read_sse_stream(server, headers, want, out, params, timeout)
    except httpx.ReadTimeout:
        return  # nothing more arrived within the timeout; the caller checks what did


def _read_sse_stream(server: LiveServer, headers: dict[str, str], want: int, out: list[dict[str, Any]],
                     params: dict[str, str] | None, timeout: float) -> None:
    with httpx.stream("GET", f"{server.url}/api/events", headers=headers, params=params, timeout=timeout) as reply:
        collect_sse(reply.iter_lines(), out, want)


def test_sse_streams_live_events_and_resumes_with_last_event_id(server: LiveServer, alice: httpx.Client) -> None:
    auth = {"Authorization": alice.headers["Authorization"]}
    received: list[dict[str, Any]] = []
    reader = threading.Thread(target=_read_sse, args=(server, auth, 2, received))
    listening = server.app.state.broadcaster.subscribers + 1
    reader.start()
    server.wait_for_subscribers(listening)
    opened = open_claim(alice, 7, "Live one")
    alice.post(f"/api/cases/{opened['id']}/assign", json={"assignee": "bob"}).raise_for_status()
    reader.join(timeout=20)
    assert [m["event"] for m in received] == ["CaseOpened", "CaseAssigned"]
    assert received[0]["data"]["case_id"] == opened["id"]
    # resume after the first: the second comes again from the read model, nothing before it
    resumed: list[dict[str, Any]] = []
    _read_sse(server, {**auth, "Last-Event-ID": str(received[0]["id"])}, 1, resumed, {"case_id": opened["id"]})
    assert resumed[0]["id"] == received[1]["id"]
    assert resumed[0]["event"] == "CaseAssigned"


def test_sse_is_filtered_by_tenant(server: LiveServer, alice: httpx.Client) -> None:
    other: list[dict[str, Any]] = []
    with server.client("eve", ("caseworker",), tenant="globex") as eve:
        headers = {"Authorization": eve.headers["Authorization"]}
        reader = threading.Thread(target=_read_sse, args=(server, headers, 1, other, None, 2.0))
        listening = server.app.state.broadcaster.subscribers + 1
        reader.start()
        server.wait_for_subscribers(listening)
        open_claim(alice, 3, "Not for globex")
        reader.join(timeout=10)
    assert not reader.is_alive()
    assert other == []
