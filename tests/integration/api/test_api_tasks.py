"""The task API over HTTP: ad-hoc tasks, claim and complete with form validation, inbox views, tenants."""

from __future__ import annotations

from typing import Any

import httpx

from tests.http_server import LiveServer
from tests.integration.api.conftest import open_claim

FORM: dict[str, Any] = {
    "type": "object",
    "required": ["decision"],
    "properties": {
        "decision": {"type": "string", "enum": ["approve", "reject"]},
        "payout": {"type": "object", "properties": {"amount": {"type": "number", "minimum": 0}}},
    },
}


def _create_task(client: httpx.Client, case_id: str, **body: Any) -> dict[str, Any]:
    reply = client.post(f"/api/cases/{case_id}/tasks", json={"title": "Check the invoice", **body})
    assert reply.status_code == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


def _titles(client: httpx.Client, position: int, **params: Any) -> list[str]:
    reply = client.get("/api/tasks", params={"wait_for": position, **params})
    assert reply.status_code == 200, reply.text
    return [item["title"] for item in reply.json()["items"]]


def test_ad_hoc_task_claim_and_complete_with_a_valid_form(server: LiveServer, alice: httpx.Client) -> None:
    case = open_claim(alice, title="Roof")
    task = _create_task(alice, case["id"], form_schema=FORM, candidate_groups=["caseworker"], priority=80,
                        due_at="2026-12-24T12:00:00+01:00")
    assert task["case_id"] == case["id"] and task["version"] == 1
    detail = alice.get(f"/api/tasks/{task['id']}", params={"wait_for": task["position"]}).json()
    assert (detail["case_number"], detail["case_title"], detail["status"]) == (case["number"], "Roof", "open")
    assert (detail["due_at"], detail["priority"], detail["form_schema"]) == ("2026-12-24T11:00:00+00:00", 80, FORM)
    claimed = alice.post(f"/api/tasks/{task['id']}/claim", json={})
    assert claimed.status_code == 200 and claimed.json()["version"] == 2
    done = alice.post(f"/api/tasks/{task['id']}/complete", json={"data": {"decision": "approve"}})
    assert done.status_code == 200, done.text
    detail = alice.get(f"/api/tasks/{task['id']}", params={"wait_for": done.json()["position"]}).json()
    assert (detail["status"], detail["data"], detail["completed_by"]) == ("completed", {"decision": "approve"}, "alice")
    timeline = alice.get(f"/api/cases/{case['id']}/timeline").json()
    assert [e["type"] for e in timeline] == ["CaseOpened", "TaskCreated", "TaskClaimed", "TaskCompleted"]
    again = alice.post(f"/api/tasks/{task['id']}/claim", json={})
    assert again.status_code == 409 and again.json()["type"].endswith("/task-finished")


def test_invalid_form_data_is_a_422_naming_the_fields(server: LiveServer, alice: httpx.Client) -> None:
    case = open_claim(alice)
    task = _create_task(alice, case["id"], form_schema=FORM, assignee="alice")
    before = server.platform.store.max_position()
    reply = alice.post(f"/api/tasks/{task['id']}/complete",
                       json={"data": {"decision": "maybe", "payout": {"amount": -3}}})
    assert reply.status_code == 422
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert sorted(e["path"] for e in reply.json()["errors"]) == ["data.decision", "data.payout.amount"]
    missing = alice.post(f"/api/tasks/{task['id']}/complete", json={"data": {}})
    assert [e["path"] for e in missing.json()["errors"]] == ["data.decision"]
    assert server.platform.store.max_position() == before


def test_inbox_views_differ_per_user(server: LiveServer) -> None:
    # ivan: a caseworker whose role list also names the candidate group (roles alone read nothing, per the policy)
    with server.client("hana", ("caseworker",)) as hana, \
            server.client("ivan", ("caseworker", "underwriting")) as ivan, \
            server.client("boss", ("supervisor",)) as boss:
        case = open_claim(hana)
        _create_task(boss, case["id"], title="hana-1", assignee="hana", priority=20)
        _create_task(boss, case["id"], title="uw-1", candidate_groups=["underwriting"], priority=90)
        last = _create_task(boss, case["id"], title="free-1", priority=40)
        assert _titles(hana, last["position"], view="mine") == ["hana-1"]
        assert _titles(ivan, last["position"], view="groups") == ["uw-1"]
        assert _titles(hana, last["position"], view="groups") == []
        unassigned = _titles(ivan, last["position"], view="unassigned", case_id=case["id"], sort="priority")
        assert unassigned == ["uw-1", "free-1"]
        refused = hana.post(f"/api/tasks/{_id_of(hana, case['id'], 'uw-1')}/claim", json={})
        assert refused.status_code == 403 and refused.json()["type"].endswith("/not-permitted")
        claim = ivan.post(f"/api/tasks/{_id_of(ivan, case['id'], 'uw-1')}/claim", json={})
        assert claim.status_code == 200
        assert _titles(ivan, claim.json()["position"], view="mine") == ["uw-1"]
        assert _titles(ivan, claim.json()["position"], view="groups") == []


def _id_of(client: httpx.Client, case_id: str, title: str) -> str:
    items = client.get("/api/tasks", params={"view": "all", "case_id": case_id, "limit": 200}).json()["items"]
    return str(next(item["id"] for item in items if item["title"] == title))


def test_paging_with_cursor(server: LiveServer) -> None:
    with server.client("pat", ("supervisor",)) as pat:
        case = open_claim(pat)
        last = {}
        for n in range(5):
            last = _create_task(pat, case["id"], title=f"p{n}", assignee="pat", priority=10 * n)
        titles: list[str] = []
        params: dict[str, Any] = {"view": "mine", "sort": "priority", "limit": 2, "wait_for": last["position"]}
        while True:
            page = pat.get("/api/tasks", params=params).json()
            titles += [item["title"] for item in page["items"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert titles == ["p4", "p3", "p2", "p1", "p0"]


def test_tasks_do_not_cross_tenants(server: LiveServer, alice: httpx.Client) -> None:
    case = open_claim(alice)
    task = _create_task(alice, case["id"], title="acme only")
    with server.client("mallory", ("supervisor",), tenant="globex") as mallory:
        assert mallory.get(f"/api/tasks/{task['id']}", params={"wait_for": task["position"]}).status_code == 404
        assert mallory.get("/api/tasks", params={"view": "all"}).json()["items"] == []
        for action, body in (("claim", {}), ("complete", {"data": {}}), ("cancel", {})):
            reply = mallory.post(f"/api/tasks/{task['id']}/{action}", json=body)
            assert reply.status_code == 404, reply.text
        assert mallory.post(f"/api/cases/{case['id']}/tasks", json={"title": "x"}).status_code == 404


def test_bad_requests_are_problems_naming_the_field(server: LiveServer, alice: httpx.Client) -> None:
    case = open_claim(alice)
    cases = [
        (f"/api/cases/{case['id']}/tasks", {"title": "x", "priority": 101}, "priority"),
        (f"/api/cases/{case['id']}/tasks", {"title": "x", "form_schema": {"type": 5}}, "form_schema.type"),
        (f"/api/cases/{case['id']}/tasks", {"title": "x", "due_at": "2026-12-01T10:00:00"}, "due_at"),
        (f"/api/cases/{case['id']}/tasks", {"title": "x", "process_instance_key": "pi"}, "process_instance_key"),
    ]
    for path, body, field in cases:
        reply = alice.post(path, json=body)
        assert reply.status_code == 422, (body, reply.text)
        assert field in [e["path"] for e in reply.json()["errors"]], reply.json()
    view = alice.get("/api/tasks", params={"view": "everyone"})
    assert view.status_code == 422 and view.json()["errors"][0]["path"] == "view"
    viewer = server.client("vic", ("viewer",))
    with viewer:
        assert viewer.post(f"/api/cases/{case['id']}/tasks", json={"title": "x"}).status_code == 403
