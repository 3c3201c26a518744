"""GET /api/audit over real HTTP: refusals, admin actions, who may read it, tenant isolation, bad input."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from casestream.settings import Settings
from tests.http_server import LiveServer, live_server
from tests.integration.api.conftest import open_claim

PROBLEM = "application/problem+json"


def _eventually(fetch: Callable[[], list[dict[str, Any]]], what: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Poll until fetch returns entries (the recorder writes off the command's thread, the runner folds after)."""
    give_up = time.monotonic() + timeout
    while not (found := fetch()):
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return found


def _audit(client: httpx.Client, **params: Any) -> dict[str, Any]:
    reply = client.get("/api/audit", params=params)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_a_caseworkers_refused_close_shows_up_for_an_admin(server: LiveServer, alice: httpx.Client) -> None:
    case = open_claim(alice)
    refused = alice.post(f"/api/cases/{case['id']}/close", json={"reason": "done"})
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith(PROBLEM)
    with server.client("root", ("admin",)) as admin:
        [entry] = _eventually(
            lambda: [e for e in _audit(admin, kind="denied", action="CloseCase")["items"]
                     if e["target"] == f"case:{case['id']}"],
            "the refused CloseCase in the audit log",
        )
    assert (entry["actor"], entry["kind"], entry["count"]) == ("alice", "denied", 1)
    assert entry["reasons"] and all(reason in refused.text for reason in entry["reasons"])
    assert entry["details"]["roles"] == ["caseworker"]


def test_publishing_a_definition_is_an_admin_action(server: LiveServer) -> None:
    with server.client("root", ("admin",)) as admin:
        entries = _audit(admin, kind="admin", action="PublishCaseDefinition")["items"]
    assert [(e["actor"], e["target"], e["details"]["version"]) for e in entries] == [("admin", "definition:claim", 1)]


def test_only_admins_read_the_audit_log(server: LiveServer, alice: httpx.Client) -> None:
    for client in (alice, server.client("bob", ("supervisor",)), server.client("eve", ())):
        reply = client.get("/api/audit")
        assert reply.status_code == 403, reply.text
        assert reply.headers["content-type"].startswith(PROBLEM)
        assert reply.json()["status"] == 403 and "audit" in reply.json()["detail"]
    assert httpx.get(f"{server.url}/api/audit").status_code == 401


def test_an_admin_of_another_tenant_sees_none_of_it(server: LiveServer, alice: httpx.Client) -> None:
    case = open_claim(alice)
    assert alice.post(f"/api/cases/{case['id']}/archive", json={"reason": "x"}).status_code == 403
    with server.client("root", ("admin",)) as admin:
        _eventually(lambda: _audit(admin, action="ArchiveCase")["items"], "the refused ArchiveCase")
    with server.client("root", ("admin",), tenant="globex") as other:
        seen = _audit(other, limit=200)["items"]
        assert all(e["tenant"] == "globex" for e in seen)
        assert not [e for e in seen if e["actor"] in ("alice", "admin")]


def test_paging_and_time_filters(server: LiveServer, alice: httpx.Client) -> None:
    case = open_claim(alice)
    assert alice.post(f"/api/cases/{case['id']}/reopen", json={"reason": "x"}).status_code == 403
    with server.client("root", ("admin",)) as admin:
        _eventually(lambda: _audit(admin, action="ReopenCase")["items"], "the refused ReopenCase")
        everything = _audit(admin, limit=200)["items"]
        assert len(everything) >= 2  # the refusal and the definition's publication at least
        first = _audit(admin, limit=1)
        second = _audit(admin, limit=1, cursor=first["next_cursor"])
        assert first["items"] + second["items"] == everything[:2]
        newest = everything[0]["at"]
        assert _audit(admin, since=newest)["items"][0] == everything[0]
        assert everything[0] not in _audit(admin, until=everything[1]["at"])["items"]


def test_bad_filters_are_refused_as_problems(server: LiveServer) -> None:
    with server.client("root", ("admin",)) as admin:
        for params, path in (({"since": "2026-01-01T00:00:00"}, "since"), ({"kind": "everything"}, "kind"),
                             ({"until": "9999-12-31T23:59:59-14:00"}, "until"), ({"since": "yesterday"}, "since"),
                             ({"cursor": "not-a-cursor"}, "cursor"), ({"limit": "0"}, "limit")):
            reply = admin.get("/api/audit", params=params)
            assert reply.status_code == 422, (params, reply.text)
            assert reply.headers["content-type"].startswith(PROBLEM)
            assert path in reply.text


def test_the_openapi_documents_the_reply_and_the_problems(server: LiveServer) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    operation = spec["paths"]["/api/audit"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/AuditPage")
    for status in ("401", "403", "422"):
        assert PROBLEM in operation["responses"][status]["content"], status
    entry = spec["components"]["schemas"]["AuditEntry"]["properties"]
    assert {"kind", "actor", "action", "target", "reasons", "count", "at"} <= set(entry)


def test_without_a_policy_the_admin_role_reads_it(tmp_path: Path) -> None:
    with live_server(Settings(data_dir=tmp_path, policy_engine="none")) as bare:
        assert bare.platform.bus.policy is None
        with bare.client("root", ("admin",)) as admin:
            assert admin.get("/api/audit").status_code == 200
        with bare.client("bob", ("supervisor",)) as bob:
            reply = bob.get("/api/audit")
            assert reply.status_code == 403 and "admin role" in reply.json()["detail"]
