"""POST /api/commands over HTTP: per-command answers, whole-request refusals, read-your-writes on the batch."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.http_server import LiveServer
from tests.integration.api.conftest import open_claim


def send(client: httpx.Client, *commands: dict[str, Any]) -> httpx.Response:
    return client.post("/api/commands", json={"commands": list(commands)})


def test_a_batch_answers_each_command_as_its_own_endpoint_would(server: LiveServer, alice: httpx.Client) -> None:
    case = open_claim(alice)["id"]
    reply = send(
        alice,
        {"type": "OpenCase", "definition_key": "claim", "title": "Batch opened", "data": {"amount": 7}},
        {"type": "AddComment", "case_id": case, "body": "first"},
        {"type": "MoveCaseToStage", "case_id": case, "stage": "payout"},  # intake -> payout is not allowed
        {"type": "MoveCaseToStage", "case_id": case, "stage": "assessment"},
        {"type": "UpdateCaseData", "case_id": case, "patch": {"amount": -1}},  # schema: minimum 0
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    statuses = [r["status"] for r in body["results"]]
    assert statuses == [201, 200, 409, 200, 422]
    opened, comment, refused, moved, invalid = body["results"]
    assert opened["number"].startswith("CLAIM-") and opened["version"] == 1
    assert (comment["version"], moved["version"]) == (2, 3)
    assert "comment_id" in comment
    assert refused["type"].endswith("/stage-transition-not-allowed")
    assert [e["path"] for e in invalid["errors"]] == ["data.amount"]
    assert body["position"] == max(opened["position"], comment["position"], moved["position"])
    detail = alice.get(f"/api/cases/{case}", params={"wait_for": body["position"]}).json()
    assert detail["stage"] == "assessment"
    assert [c["body"] for c in detail["comments"]] == ["first"]
    assert detail["data"] == {"amount": 100}


def test_a_malformed_command_refuses_the_whole_batch_naming_it(server: LiveServer, alice: httpx.Client) -> None:
    case = open_claim(alice)["id"]
    before = server.platform.store.max_position()
    reply = send(
        alice,
        {"type": "AddComment", "case_id": case, "body": "fine"},
        {"type": "AddComment", "case_id": "not-a-uuid", "body": "x"},
        {"type": "Teleport", "case_id": case},
        {"type": "AssignCase", "case_id": case, "assignee": "bob", "actor": "mallory"},
    )
    assert reply.status_code == 422
    assert reply.headers["content-type"].startswith("application/problem+json")
    paths = [e["path"] for e in reply.json()["errors"]]
    assert paths == ["commands[1].case_id", "commands[2].type", "commands[3].actor"]
    assert server.platform.store.max_position() == before


def test_a_command_the_policy_denies_is_refused_alone(server: LiveServer) -> None:
    before = server.platform.store.max_position()
    with server.client("carol", ("caseworker",)) as carol:
        reply = send(carol, {"type": "DefineQueue", "key": "vip", "name": "VIP"},
                     {"type": "OpenCase", "definition_key": "claim", "title": "Batch opened", "data": {"amount": 7}})
    assert reply.status_code == 200, reply.text
    denied, opened = reply.json()["results"]
    assert (denied["status"], denied["type"].rsplit("/", 1)[-1]) == (403, "forbidden")
    assert denied["detail"].startswith("DefineQueue is not allowed")
    stored = {type(p.event).__name__ for p in server.platform.store.read(before, 100)}
    assert opened["status"] == 201 and "QueueDefined" not in stored and "CaseOpened" in stored


def test_process_fields_of_a_task_are_refused_as_on_the_task_endpoint(alice: httpx.Client) -> None:
    case = open_claim(alice)["id"]
    reply = send(alice, {"type": "CreateTask", "case_id": case, "title": "Call", "task_id": str(uuid.uuid4())})
    assert reply.status_code == 422
    assert [e["path"] for e in reply.json()["errors"]] == ["commands[0].task_id"]
    ok = send(alice, {"type": "CreateTask", "case_id": case, "title": "Call"})
    assert ok.json()["results"][0]["status"] == 201


def test_command_ids_repeat_within_and_across_batches(server: LiveServer, alice: httpx.Client) -> None:
    case = open_claim(alice)["id"]
    key = f"k-{uuid.uuid4()}"
    comment = {"type": "AddComment", "case_id": case, "body": "once", "command_id": key}
    first = send(alice, comment, comment, {**comment, "body": "changed"}).json()["results"]
    assert [r["status"] for r in first] == [200, 200, 409]
    assert first[2]["type"].endswith("/command-id-reused")
    head = server.platform.store.max_position()
    again = send(alice, comment).json()["results"][0]
    assert (again["status"], again["version"], again["position"]) == (200, first[0]["version"], first[0]["position"])
    assert server.platform.store.max_position() == head


def test_empty_oversized_and_wrongly_shaped_batches_are_refused(alice: httpx.Client) -> None:
    assert alice.post("/api/commands", json={"commands": []}).status_code == 422
    assert alice.post("/api/commands", json=[{"type": "AddComment"}]).status_code == 422
    assert alice.post("/api/commands", json={"commands": [], "extra": 1}).status_code == 422
    many = {"commands": [{"type": "AddComment", "case_id": str(uuid.uuid4()), "body": "x"}] * 501}
    reply = alice.post("/api/commands", json=many)  # ~45 kB: under this server's 64 kB body limit
    assert reply.status_code == 422
    assert [e["path"] for e in reply.json()["errors"]] == ["commands"]
    assert alice.post("/api/commands", content=b"{not json", headers={"content-type": "application/json"}
                      ).status_code == 400
