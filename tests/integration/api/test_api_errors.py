"""Bad input of every shape gets a specific 4xx problem+json and stores nothing; never a 500."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.http_server import LiveServer
from tests.integration.api.conftest import open_claim


def _problem(reply: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = reply.json()
    assert str(body["type"]).endswith("/" + code)
    return body


@pytest.mark.parametrize(
    ("headers", "detail_part"),
    [({}, "bearer token is required"), ({"Authorization": "Bearer not.a.jwt"}, "token")],
)
def test_missing_or_garbage_token_is_401(server: LiveServer, headers: dict[str, str], detail_part: str) -> None:
    reply = httpx.get(f"{server.url}/api/cases", headers=headers)
    body = _problem(reply, 401, "unauthenticated")
    assert detail_part in str(body["detail"])


def test_expired_token_is_401(server: LiveServer) -> None:
    token = server.platform.issuer.issue("alice", "acme", ["caseworker"], ttl=-10)
    reply = httpx.get(f"{server.url}/api/cases", headers={"Authorization": f"Bearer {token}"})
    _problem(reply, 401, "unauthenticated")


def test_forged_token_is_401(server: LiveServer, tmp_path: object) -> None:
    from pathlib import Path

    from adapters.issuer import BuiltinIssuer

    forger = BuiltinIssuer(Path(str(tmp_path)) / "k.json", server.platform.issuer.issuer, "casestream", 60)
    token = forger.issue("admin", "acme", ["admin"])
    reply = httpx.get(f"{server.url}/api/cases", headers={"Authorization": f"Bearer {token}"})
    _problem(reply, 401, "unauthenticated")


def test_malformed_json_is_400(server: LiveServer, alice: httpx.Client) -> None:
    before = server.platform.store.max_position()
    reply = alice.post("/api/cases", content=b"{not json", headers={"content-type": "application/json"})
    _problem(reply, 400, "malformed-json")
    assert server.platform.store.max_position() == before


def test_unknown_and_mistyped_fields_are_named(alice: httpx.Client) -> None:
    reply = alice.post("/api/cases", json={"definition_key": "claim", "title": 5, "data": {}, "colour": "red"})
    body = _problem(reply, 422, "validation-failed")
    paths = {e["path"] for e in body["errors"]}  # type: ignore[attr-defined]
    assert paths == {"title", "colour"}


def test_unknown_definition_and_stage(alice: httpx.Client) -> None:
    _problem(alice.post("/api/cases", json={"definition_key": "nope", "title": "x", "data": {}}), 404, "not-found")
    opened = open_claim(alice)
    _problem(alice.post(f"/api/cases/{opened['id']}/stage", json={"stage": "nowhere"}), 422, "unknown-stage")


def test_bad_case_id_in_path(alice: httpx.Client) -> None:
    body = _problem(alice.post("/api/cases/not-a-uuid/assign", json={"assignee": "bob"}), 422, "validation-failed")
    assert body["errors"][0]["path"] == "case_id"  # type: ignore[index]
    _problem(alice.get("/api/cases/not-a-uuid"), 404, "not-found")


def test_oversized_body_is_413(server: LiveServer, alice: httpx.Client) -> None:
    before = server.platform.store.max_position()
    big = {"definition_key": "claim", "title": "x", "data": {"amount": 1, "pad": "x" * 70_000}}
    _problem(alice.post("/api/cases", json=big), 413, "body-too-large")
    assert server.platform.store.max_position() == before


def test_viewer_cannot_issue_commands(server: LiveServer) -> None:
    with server.client("vic", ("viewer",)) as viewer:
        _problem(viewer.post("/api/cases", json={"definition_key": "claim", "title": "x", "data": {"amount": 1}}),
                 403, "forbidden")
    with server.client("alice", ("caseworker",)) as alice:
        _problem(alice.post("/api/queues", json={"key": "q-one", "name": "Q"}), 403, "forbidden")


def test_wait_for_unreached_position(server: LiveServer, alice: httpx.Client) -> None:
    head = server.platform.store.max_position()
    _problem(alice.get("/api/cases", params={"wait_for": head + 1000}), 422, "unknown-position")


def test_wait_for_times_out_with_504_when_runner_is_behind(server: LiveServer, alice: httpx.Client) -> None:
    server.platform.runner.stop()
    try:
        opened = open_claim(alice)
        started = time.monotonic()
        reply = alice.get("/api/cases", params={"wait_for": opened["position"], "wait_timeout": 0.5})
        _problem(reply, 504, "read-model-behind")
        assert time.monotonic() - started < 5
    finally:
        server.platform.runner.start()
    assert alice.get("/api/cases", params={"wait_for": opened["position"]}).status_code == 200


def test_server_keeps_serving_after_bad_requests(alice: httpx.Client) -> None:
    for raw in (b"", b"[]", b"null", b'{"definition_key": null}', b"\xff\xfe"):
        reply = alice.post("/api/cases", content=raw, headers={"content-type": "application/json"})
        assert 400 <= reply.status_code < 500, (raw, reply.status_code, reply.text)
    assert alice.get("/healthz").status_code == 200
