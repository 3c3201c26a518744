"""The case API over HTTP: commands, read-your-writes queries, history, kanban, counts."""

from __future__ import annotations

import uuid

import httpx

from tests.http_server import LiveServer
from tests.integration.api.conftest import open_claim


def test_open_case_then_query_it_with_wait_for(alice: httpx.Client) -> None:
    opened = open_claim(alice, 250, "Burst pipe")
    assert opened["number"].startswith("CLAIM-")
    detail = alice.get(f"/api/cases/{opened['id']}", params={"wait_for": opened["position"]})
    assert detail.status_code == 200
    body = detail.json()
    assert body["title"] == "Burst pipe"
    assert body["data"] == {"amount": 250}
    assert body["stage"] == "intake"
    assert body["opened_by"] == "alice"
    assert body["tenant"] == "acme"


def test_actor_comes_from_token_not_body(server: LiveServer) -> None:
    with server.client("carol", ("caseworker",)) as carol:
        opened = open_claim(carol)
        reply = carol.post(f"/api/cases/{opened['id']}/comments", json={"body": "hello", "actor": "mallory"})
        assert reply.status_code == 422  # unknown field refused
        reply = carol.post(f"/api/cases/{opened['id']}/comments", json={"body": "hello"})
        assert reply.status_code == 200
        detail = carol.get(f"/api/cases/{opened['id']}", params={"wait_for": reply.json()["position"]}).json()
        assert detail["comments"][0]["author"] == "carol"


def test_stage_moves_follow_transitions(alice: httpx.Client) -> None:
    opened = open_claim(alice)
    bad = alice.post(f"/api/cases/{opened['id']}/stage", json={"stage": "payout"})
    assert bad.status_code == 409
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["type"].endswith("/stage-transition-not-allowed")
    good = alice.post(f"/api/cases/{opened['id']}/stage", json={"stage": "assessment"})
    assert good.status_code == 200
    assert good.json()["version"] == 2


def test_schema_invalid_data_names_the_field_and_stores_nothing(server: LiveServer, alice: httpx.Client) -> None:
    before = server.platform.store.max_position()
    reply = alice.post("/api/cases", json={"definition_key": "claim", "title": "x", "data": {"amount": -5}})
    assert reply.status_code == 422
    paths = [e["path"] for e in reply.json()["errors"]]
    assert paths == ["data.amount"]
    assert server.platform.store.max_position() == before


def test_repeated_command_id_returns_first_result(server: LiveServer, alice: httpx.Client) -> None:
    body = {"definition_key": "claim", "title": "Once", "data": {"amount": 1}, "command_id": f"c-{uuid.uuid4()}"}
    first = alice.post("/api/cases", json=body)
    head = server.platform.store.max_position()
    second = alice.post("/api/cases", json=body)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json() == first.json()
    assert server.platform.store.max_position() == head
    reused = alice.post("/api/cases", json={**body, "title": "Other"})
    assert reused.status_code == 409
    assert reused.json()["type"].endswith("/command-id-reused")


def test_stale_expected_version_is_a_conflict(alice: httpx.Client) -> None:
    opened = open_claim(alice)
    ok = alice.post(f"/api/cases/{opened['id']}/assign", json={"assignee": "bob", "expected_version": 1})
    assert ok.status_code == 200
    stale = alice.post(f"/api/cases/{opened['id']}/assign", json={"assignee": "carol", "expected_version": 1})
    assert stale.status_code == 409
    assert stale.json()["type"].endswith("/version-conflict")


def test_history_and_diff(alice: httpx.Client) -> None:
    opened = open_claim(alice, 10)
    cid = opened["id"]
    alice.post(f"/api/cases/{cid}/data", json={"patch": {"amount": 20, "category": "fire"}}).raise_for_status()
    alice.post(f"/api/cases/{cid}/stage", json={"stage": "assessment"}).raise_for_status()
    v1 = alice.get(f"/api/cases/{cid}/history", params={"version": 1}).json()
    assert v1["data"] == {"amount": 10}
    assert v1["stage"] == "intake"
    diff = alice.get(f"/api/cases/{cid}/diff", params={"from": 1, "to": 3}).json()
    assert diff["fields"]["stage"] == {"old": "intake", "new": "assessment"}
    changes = {tuple(c["path"]): (c["old"], c["new"]) for c in diff["data"]}
    assert changes == {("amount",): (10, 20), ("category",): (None, "fire")}


def test_list_filters_and_kanban(alice: httpx.Client) -> None:
    opened = open_claim(alice, 5, "Kanban card")
    moved = alice.post(f"/api/cases/{opened['id']}/stage", json={"stage": "assessment"}).json()
    listing = alice.get("/api/cases", params={"stage": "assessment", "q": "kanban card", "wait_for": moved["position"]})
    assert [c["id"] for c in listing.json()["items"]] == [opened["id"]]
    board = alice.get("/api/kanban/claim").json()
    assert [c["stage"] for c in board["columns"]] == ["intake", "assessment", "payout"]
    assessment = board["columns"][1]
    assert opened["id"] in [card["id"] for card in assessment["cards"]]
    counts = alice.get("/api/counts", params={"definition_key": "claim"}).json()
    assert counts["stage"]["assessment"] == assessment["count"]


def test_other_tenant_cannot_see_case(server: LiveServer, alice: httpx.Client) -> None:
    opened = open_claim(alice)
    with server.client("eve", ("caseworker",), tenant="globex") as eve:
        assert eve.get(f"/api/cases/{opened['id']}", params={"wait_for": opened["position"]}).status_code == 404
        assert eve.post(f"/api/cases/{opened['id']}/comments", json={"body": "hi"}).status_code == 404
        assert eve.get("/api/cases").json()["items"] == []
