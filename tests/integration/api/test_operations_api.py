"""Incidents and the operations API over HTTP: a lifecycle whose gateway matches nothing raises an incident an admin
sees, retries after fixing the data or cancels; instances are listed and read; a restart keeps an open incident.

A real embedded platform served over HTTP (processes on); the model is deployed through POST /api/processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from casestream.settings import Settings
from tests.http_server import LiveServer, live_server
from tests.integration.api.bpmn_parts import queue_then_finish
from tests.integration.api.test_api_workers import Workers
from tests.integration.api.test_process_deploy_api import two_processes  # noqa: F401  (a fixture)

T = TypeVar("T")
PROCESS = "ops-check"
MODEL = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="Defs" targetNamespace="http://x">
  <bpmn:process id="{PROCESS}" name="Operations check" isExecutable="true">
    <bpmn:startEvent id="Begin"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="Begin" targetRef="Gate" />
    <bpmn:exclusiveGateway id="Gate"><bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>Big</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="Big" sourceRef="Gate" targetRef="Queue_it">
      <bpmn:conditionExpression>=amount &gt; 1000</bpmn:conditionExpression></bpmn:sequenceFlow>
{queue_then_finish("Big", "big")}  </bpmn:process>
</bpmn:definitions>
"""
DEFINITION: dict[str, Any] = {
    "key": "ops-check", "name": "Operations check", "schema": {"type": "object"},
    "stages": [{"key": "open", "name": "Open", "transitions": []}], "queues": ["big"],
    "lifecycle_process": PROCESS,
}


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def serve(data_dir: Path) -> Any:
    return live_server(Settings(data_dir=data_dir, processes="on"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def server(data_dir: Path) -> Iterator[LiveServer]:
    with serve(data_dir) as live:
        assert live.platform.processes is not None and live.platform.processes.wait_ready(60)
        with live.client("root", ("admin",)) as admin:
            deployed = admin.post("/api/processes", json={"files": [{"name": "ops.bpmn", "content": MODEL}]})
            assert deployed.status_code == 200, deployed.text
            assert admin.post("/api/definitions", json=DEFINITION).status_code in (200, 201)
        yield live


def open_case(server: LiveServer, amount: int) -> str:
    with server.client() as alice:
        reply = alice.post("/api/cases", json={"definition_key": "ops-check", "title": "t", "data": {"amount": amount}})
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def open_incident(admin: httpx.Client, case_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        reply = admin.get("/api/incidents", params={"case_id": case_id, "state": "open"})
        assert reply.status_code == 200, reply.text
        items = reply.json()["items"]
        return items[0] if items else None

    return wait_for("an open incident", probe)


def test_an_unmatched_gateway_is_an_incident_an_admin_retries_after_fixing_the_data(server: LiveServer) -> None:
    case_id = open_case(server, 5)
    with server.client("root", ("admin",)) as admin, server.client() as alice:
        incident = open_incident(admin, case_id)
        assert (incident["element_id"], incident["kind"], incident["process_id"]) == ("Gate", "element", PROCESS)
        assert alice.get("/api/incidents").status_code == 403  # admins only
        assert alice.post(f"/api/incidents/{incident['id']}/retry", json={}).status_code == 403
        timeline = alice.get(f"/api/cases/{case_id}/timeline").json()
        assert any(e["summary"].startswith("process incident at Gate") for e in timeline)  # on the case, for all
        flagged = admin.get("/api/process-instances", params={"has_incident": True, "case_id": case_id}).json()
        (instance,) = flagged["items"]
        detail = admin.get(f"/api/process-instances/{instance['id']}").json()
        assert detail["variables"]["amount"] == 5 and detail["elements"] == [
            {"element_id": "Gate", "state": "failed"}]

        bad = admin.post(f"/api/incidents/{incident['id']}/retry", json={"variables": {"1x": 2}})
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
        retried = admin.post(f"/api/incidents/{incident['id']}/retry",
                             json={"variables": {"amount": 5000}, "note": "amount corrected"})
        assert retried.status_code == 200, retried.text
        again = admin.post(f"/api/incidents/{incident['id']}/retry", json={})
        assert again.status_code == 409  # resolved (and the instance has run on)

        def queued() -> bool:
            return alice.get(f"/api/cases/{case_id}").json()["queue"] == "big"

        wait_for("the retried process to queue the case", queued)
        done = admin.get(f"/api/incidents/{incident['id']}").json()
        assert (done["state"], done["resolution"], done["resolved_by"], done["note"]) == (
            "resolved", "retried", "root", "amount corrected")

        def completed() -> bool:
            found = admin.get(f"/api/process-instances/{instance['id']}").json()
            return bool(found["state"] == "completed")

        wait_for("the instance to complete", completed)


def test_cancelling_through_the_incident_and_the_operations_routes(server: LiveServer) -> None:
    first, second = open_case(server, 1), open_case(server, 2)
    with server.client("root", ("admin",)) as admin:
        incident = open_incident(admin, first)
        reply = admin.post(f"/api/incidents/{incident['id']}/cancel", json={"reason": "opened by mistake"})
        assert reply.status_code == 200, reply.text
        instance_id = incident["instance_id"]
        state = wait_for("the instance to be cancelled", lambda: admin.get(
            f"/api/process-instances/{instance_id}").json()["state"] == "cancelled")
        assert state
        assert admin.get(f"/api/incidents/{incident['id']}").json()["resolution"] == "cancelled"

        other = open_incident(admin, second)
        variables = admin.post(f"/api/process-instances/{other['instance_id']}/variables",
                               json={"variables": {"amount": 3}})
        assert variables.status_code == 200, variables.text
        no_job = admin.post(f"/api/process-instances/{other['instance_id']}/jobs/Gate/retry", json={})
        assert no_job.status_code == 409  # a gateway is not a job: retry the incident instead
        assert admin.post(f"/api/process-instances/{other['instance_id']}/cancel", json={}).status_code == 200
        assert admin.post(f"/api/process-instances/{other['instance_id']}/cancel", json={}).status_code == 409
        unknown = admin.post("/api/process-instances/8d5e2c1a-0000-4000-8000-000000000000/cancel", json={})
        assert unknown.status_code == 404


def test_a_restart_keeps_an_open_incident_and_serves(data_dir: Path) -> None:
    with serve(data_dir) as live:
        assert live.platform.processes is not None and live.platform.processes.wait_ready(60)
        with live.client("root", ("admin",)) as admin:
            admin.post("/api/processes", json={"files": [{"name": "ops.bpmn", "content": MODEL}]})
            admin.post("/api/definitions", json=DEFINITION)
        case_id = open_case(live, 7)
        with live.client("root", ("admin",)) as admin:
            incident = open_incident(admin, case_id)
    with serve(data_dir) as again:
        assert again.platform.processes is not None and again.platform.processes.wait_ready(60)
        with again.client("root", ("admin",)) as admin:
            assert open_incident(admin, case_id)["id"] == incident["id"]
            assert admin.get("/readyz").json()["processes"]["error"] is None
            retried = admin.post(f"/api/incidents/{incident['id']}/retry", json={"variables": {"amount": 9000}})
            assert retried.status_code == 200, retried.text


MOVE_MODEL = MODEL.replace(PROCESS, "move-check").replace(
    '''<bpmn:sequenceFlow id="F1" sourceRef="Begin" targetRef="Gate" />''',
    '''<bpmn:sequenceFlow id="F1" sourceRef="Begin" targetRef="Review" />
    <bpmn:userTask id="Review" name="Review the case"><bpmn:incoming>F1</bpmn:incoming>
      <bpmn:outgoing>F2</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="F2" sourceRef="Review" targetRef="Gate" />''').replace(
    "<bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>Big</bpmn:outgoing>",
    "<bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>Big</bpmn:outgoing>").replace(
    "=amount &gt; 1000", "=withdrawn = true")


def test_a_manual_move_withdraws_the_open_user_task_and_the_process_goes_on(server: LiveServer) -> None:
    with server.client("root", ("admin",)) as admin, server.client() as alice:
        deployed = admin.post("/api/processes", json={"files": [{"name": "move.bpmn", "content": MOVE_MODEL}]})
        assert deployed.status_code == 200, deployed.text
        definition = {**DEFINITION, "key": "move-check", "lifecycle_process": "move-check",
                      "stages": [{"key": "open", "transitions": ["done"]}, {"key": "done", "transitions": []}]}
        assert admin.post("/api/definitions", json=definition).status_code in (200, 201)
        case_id = alice.post("/api/cases", json={"definition_key": "move-check", "title": "t", "data": {}}).json()["id"]

        def open_task() -> dict[str, Any] | None:
            items = alice.get("/api/tasks", params={"view": "all", "case_id": case_id}).json()["items"]
            return items[0] if items else None

        task = wait_for("the review task", open_task)
        moved = alice.post(f"/api/cases/{case_id}/stage", json={"stage": "done"})
        assert moved.status_code == 200, moved.text

        def queued() -> bool:
            return alice.get(f"/api/cases/{case_id}").json()["queue"] == "big"

        wait_for("the process to go on past the withdrawn task (withdrawn = true)", queued)
        cancelled = alice.get(f"/api/tasks/{task['id']}").json()
        assert (cancelled["status"], cancelled["cancel_reason"]) == (
            "cancelled", "the case was moved from open to done by alice")
        timeline = [e["summary"] for e in alice.get(f"/api/cases/{case_id}/timeline").json()]
        assert "cancelled task “Review the case”: the case was moved from open to done by alice" in timeline


CATCH_MODEL = MOVE_MODEL.replace("move-check", "move-catch").replace(
    '''<bpmn:sequenceFlow id="F2" sourceRef="Review" targetRef="Gate" />''',
    '''<bpmn:sequenceFlow id="F2" sourceRef="Review" targetRef="Gate" />
    <bpmn:boundaryEvent id="Moved" attachedToRef="Review"><bpmn:outgoing>M1</bpmn:outgoing>
      <bpmn:messageEventDefinition messageRef="StageChanged" /></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="M1" sourceRef="Moved" targetRef="Stopped" />
    <bpmn:endEvent id="Stopped"><bpmn:incoming>M1</bpmn:incoming></bpmn:endEvent>''').replace(
    "</bpmn:process>", '''</bpmn:process>
  <bpmn:message id="StageChanged" name="case-stage-changed">
    <bpmn:extensionElements><zeebe:subscription correlationKey="=caseId" /></bpmn:extensionElements>
  </bpmn:message>''')


def test_a_process_that_catches_the_move_decides_instead(server: LiveServer) -> None:
    with server.client("root", ("admin",)) as admin, server.client() as alice:
        deployed = admin.post("/api/processes", json={"files": [{"name": "catch.bpmn", "content": CATCH_MODEL}]})
        assert deployed.status_code == 200, deployed.text
        definition = {**DEFINITION, "key": "move-catch", "lifecycle_process": "move-catch",
                      "stages": [{"key": "open", "transitions": ["done"]}, {"key": "done", "transitions": []}]}
        assert admin.post("/api/definitions", json=definition).status_code in (200, 201)
        case_id = alice.post("/api/cases", json={"definition_key": "move-catch", "title": "t", "data": {}}).json()["id"]
        task = wait_for("the review task", lambda: (alice.get("/api/tasks", params={
            "view": "all", "case_id": case_id}).json()["items"] or [None])[0])
        assert alice.post(f"/api/cases/{case_id}/stage", json={"stage": "done"}).status_code == 200

        def instance_state() -> str | None:
            found = admin.get("/api/process-instances", params={"case_id": case_id}).json()["items"]
            return found[0]["state"] if found and found[0]["state"] != "running" else None

        assert wait_for("the boundary to end the process", instance_state) == "completed"
        def closed_task() -> dict[str, Any] | None:
            found: dict[str, Any] = alice.get(f"/api/tasks/{task['id']}").json()
            return found if found["status"] != "open" else None

        # the task's cancellation is a command of its own after the step: folded shortly after the instance ends
        cancelled = wait_for("the review task to close", closed_task)
        # withdrawn by the process itself (its boundary ended it), not by the manual-move default
        assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "the process instance ended")
        assert alice.get(f"/api/cases/{case_id}").json()["queue"] is None  # not past the task: the boundary took it


def _grouped(server: LiveServer, user: str, roles: tuple[str, ...], groups: tuple[str, ...]) -> httpx.Client:
    issuer = server.platform.issuer
    assert issuer is not None
    token = issuer.issue(user, "acme", roles, groups=groups)
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_incidents_and_instances_of_a_definition_an_admin_may_not_read_are_not_found(server: LiveServer) -> None:
    secret = {**DEFINITION, "key": "ops-secret", "access": {"read_groups": ["ops-team"]}}
    with _grouped(server, "ines", ("admin",), ("ops-team",)) as member, \
            _grouped(server, "root", ("admin",), ("other-team",)) as outsider:
        assert member.post("/api/definitions", json=secret).status_code in (200, 201)
        hidden = member.post("/api/cases", json={"definition_key": "ops-secret", "title": "t", "data": {"amount": 1}})
        assert hidden.status_code == 201, hidden.text
        visible = open_case(server, 2)
        incident = open_incident(member, hidden.json()["id"])
        shown = open_incident(outsider, visible)
        listed = outsider.get("/api/incidents", params={"state": "open"}).json()["items"]
        assert shown["id"] in [i["id"] for i in listed] and incident["id"] not in [i["id"] for i in listed]
        assert outsider.get(f"/api/incidents/{incident['id']}").status_code == 404
        refused = outsider.post(f"/api/incidents/{incident['id']}/retry", json={"variables": {"amount": 5000}})
        assert refused.status_code == 404 and refused.headers["content-type"] == "application/problem+json"
        assert member.get(f"/api/incidents/{incident['id']}").json()["state"] == "open"  # untouched
        # a page of one: the hidden incident is skipped, not counted
        page = outsider.get("/api/incidents", params={"limit": 1, "state": "open"}).json()
        assert [i["id"] for i in page["items"]] == [shown["id"]]
        # the instance too (its variables are the case's data)
        instances = [i["id"] for i in outsider.get("/api/process-instances").json()["items"]]
        assert shown["instance_id"] in instances and incident["instance_id"] not in instances
        assert outsider.get(f"/api/process-instances/{incident['instance_id']}").status_code == 404
        cancel = outsider.post(f"/api/process-instances/{incident['instance_id']}/cancel", json={})
        assert cancel.status_code == 404
        assert member.get(f"/api/process-instances/{incident['instance_id']}").json()["state"] == "running"


def test_a_follower_of_serve_workers_answers_operations_the_runner_process_applies(
    two_processes: Workers,  # noqa: F811  (the fixture imported above)
) -> None:
    """`serve --workers 2`: a follower process runs no engine; its requests go through the log to the runner's."""
    from contextlib import closing

    with closing(two_processes.client_of("follower", "root", ("admin",))) as admin:
        assert admin.post("/api/processes", json={"files": [{"name": "ops.bpmn", "content": MODEL}]}
                          ).status_code == 200
        assert admin.post("/api/definitions", json=DEFINITION).status_code in (200, 201)
        opened = admin.post("/api/cases", json={"definition_key": "ops-check", "title": "t", "data": {"amount": 5}})
        assert opened.status_code == 201, opened.text
        incident = open_incident(admin, opened.json()["id"])
        retried = admin.post(f"/api/incidents/{incident['id']}/retry", json={"variables": {"amount": 5000}})
        assert retried.status_code == 200, retried.text
        assert retried.json()["id"] == incident["instance_id"]
        published = admin.post("/api/messages", json={"name": "nobody-waits", "correlation_key": "k"})
        assert published.status_code == 201 and published.json()["buffered"] is True, published.text
