"""Publishing a definition over HTTP: process fields are checked and a bad one is a 422 naming the field."""

from __future__ import annotations

from typing import Any

from tests.http_server import LiveServer
from tests.integration.api.conftest import CLAIM


def _publish(server: LiveServer, **fields: Any) -> Any:
    with server.client("admin", ("admin",)) as admin:
        return admin.post("/api/definitions", json={**CLAIM, "key": "claim-processes", **fields})


def test_bad_process_fields_are_422_naming_each_field(server: LiveServer) -> None:
    reply = _publish(
        server, lifecycle_process="no-such-process", stage_processes={"limbo": ["claim-case"]},
        automation=[{"on": "CommentAdded", "action": "correlate-message", "value": "customer-replied",
                     "when": "=actor = "}],
    )
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    paths = {e["path"]: e["message"] for e in reply.json()["errors"]}
    assert set(paths) == {"lifecycle_process", "stage_processes.limbo", "automation[0].when"}
    assert "no deployed process 'no-such-process'" in paths["lifecycle_process"]


def test_definition_naming_shipped_processes_is_published(server: LiveServer) -> None:
    reply = _publish(
        server, lifecycle_process="claim-case", stage_processes={"payout": ["onboarding-saga"]},
        automation=[{"on": "CaseAssigned", "action": "set-queue", "value": "fraud", "when": '=assignee = "bob"'}],
    )
    assert reply.status_code == 200, reply.text
    with server.client("alice", ("caseworker",)) as alice:
        body = alice.get("/api/definitions/claim-processes", params={"wait_for": reply.json()["position"]}).json()
    assert body["latest"]["lifecycle_process"] == "claim-case"
    assert body["latest"]["stage_processes"] == {"payout": ["onboarding-saga"]}
    assert body["latest"]["automation"] == [
        {"on": "CaseAssigned", "action": "set-queue", "value": "fraud", "when": '=assignee = "bob"'}]


def test_readyz_reports_the_process_manager(server: LiveServer) -> None:
    assert server.platform.processes is not None and server.platform.processes.wait_ready(60)
    with server.client() as client:
        body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert (body["processes"]["state"], body["processes"]["running"], body["processes"]["error"]) == (
        "running", True, None)
    assert body["processes"]["position"] <= body["event_store"]["position"]
