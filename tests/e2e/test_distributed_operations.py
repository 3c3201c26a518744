"""Operations and messages in the distributed mode (`casestream up --distributed`: API replicas with no engine, the
BPMN engine in `casestream process-worker`), through the edge: an incident is listed from the MongoDB read models,
retried after setting variables and resolved; a refused retry gets the embedded mode's problem; a message
published over the API correlates to a waiting instance; a live duplicate message id is a 409."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from api.problems import MEDIA_TYPE, domain_problem_body
from domain.errors import InvalidStateChange
from domain.process import IncidentNotOpen
from infra.server import Server
from tests.e2e.stack_process import EDGE, RunningStack, casestream, edge_token
from tests.integration.api import test_operations_api as ops
from tests.integration.api import test_process_messages_api as pay

T = TypeVar("T")
API = f"{EDGE}/api"


@pytest.fixture(scope="module")
def servers(postgres_server: Server, kafka_server: Server, ferretdb_server: Server, opa_server: Server,
            s3_server: Server) -> None:
    """The backing servers run already (the stack joins them instead of starting its own)."""


def eventually(what: str, probe: Callable[[], T | None], stack: RunningStack, timeout: float = 120) -> T:
    """probe's first truthy value; fails with the stack's log when none comes in time (workers fold in batches)."""
    try:
        return ops.wait_for(what, probe, timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}:\n{stack.output()[-3000:]}") from None


def ok(reply: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert reply.status_code in (statuses or (200, 201)), f"{reply.request.method} {reply.request.url}: " \
                                                         f"{reply.status_code} {reply.text}"
    body: dict[str, Any] = reply.json()
    return body


def test_operations_and_messages_go_through_the_log_to_the_process_worker(servers: None, tmp_path: Path) -> None:
    stack = RunningStack.launch(tmp_path / "stack", tmp_path / "up.log")
    try:
        stack.wait_up()
        with httpx.Client(base_url=API, headers=edge_token(), timeout=60) as admin:
            ok(admin.post("/processes", json={"files": [{"name": "ops.bpmn", "content": ops.MODEL},
                                                        {"name": "pay.bpmn", "content": pay.MODEL}]}))
            ok(admin.post("/definitions", json=ops.DEFINITION))
            ok(admin.post("/definitions", json=pay.DEFINITION))
            incident_is_retried_after_setting_variables(admin, stack)
            a_published_message_correlates(admin, stack)
    finally:
        stack.interrupt()
        casestream("down", "--wipe", "--yes", "--data-dir", str(stack.data_dir), env=stack.env)
    assert stack.process.returncode in (0, 130), stack.output()[-3000:]


def incident_is_retried_after_setting_variables(admin: httpx.Client, stack: RunningStack) -> None:
    case_id = ok(admin.post("/cases", json={"definition_key": "ops-check", "title": "t", "data": {"amount": 5}}))["id"]

    def listed() -> dict[str, Any] | None:
        items = ok(admin.get("/incidents", params={"case_id": case_id, "state": "open"}))["items"]
        return items[0] if items else None

    incident = eventually("the process worker's incident in the read models", listed, stack)
    assert (incident["element_id"], incident["kind"]) == ("Gate", "element")
    assert ok(admin.get(f"/incidents/{incident['id']}"))["state"] == "open"
    instance_id = incident["instance_id"]
    queries_answer_from_the_read_models(admin, stack, incident)
    detail = ok(admin.get(f"/process-instances/{instance_id}"))
    assert detail["variables"]["amount"] == 5 and detail["has_incident"] is True

    # refused by the process worker's engine: the same problem the embedded mode answers
    no_job = admin.post(f"/process-instances/{instance_id}/jobs/Gate/retry", json={})
    assert no_job.status_code == 409 and no_job.headers["content-type"] == MEDIA_TYPE, no_job.text
    assert no_job.json() == domain_problem_body(IncidentNotOpen("no failed job waits for a retry at element 'Gate'"))

    changed = ok(admin.post(f"/process-instances/{instance_id}/variables", json={"variables": {"amount": 5000}}))
    assert changed["id"] == instance_id and changed["version"] > detail["version"]  # applied by the process worker
    retried = ok(admin.post(f"/incidents/{incident['id']}/retry", json={"note": "amount corrected"}))
    assert retried["id"] == instance_id and retried["version"] > changed["version"]

    resolved = eventually("the incident resolved in the read models", lambda: (
        found if (found := ok(admin.get(f"/incidents/{incident['id']}")))["state"] == "resolved" else None), stack)
    assert (resolved["resolution"], resolved["resolved_by"], resolved["note"]) == (
        "retried", "admin", "amount corrected")
    eventually("the retried process to queue the case", lambda: ok(admin.get(f"/cases/{case_id}"))["queue"] == "big",
               stack)

    again = admin.post(f"/incidents/{incident['id']}/retry", json={})  # the instance has run to its end
    assert again.status_code == 409 and again.headers["content-type"] == MEDIA_TYPE, again.text
    assert again.json() == domain_problem_body(InvalidStateChange(f"process instance {instance_id} is not running"))
    unknown = admin.post(f"/process-instances/{uuid.UUID(int=7)}/cancel", json={})
    assert unknown.status_code == 404 and unknown.headers["content-type"] == MEDIA_TYPE


def queries_answer_from_the_read_models(admin: httpx.Client, stack: RunningStack, incident: dict[str, Any]) -> None:
    """The filters and cursor paging of incidents and instances on MongoDB; an incident cancelled through its route."""
    case_id = ok(admin.post("/cases", json={"definition_key": "ops-check", "title": "t", "data": {"amount": 6}}))["id"]
    other = eventually("a second incident", lambda: ok(admin.get("/incidents", params={
        "case_id": case_id}))["items"], stack)[0]
    query = {"process_id": ops.PROCESS, "state": "open", "limit": 1}
    first = ok(admin.get("/incidents", params=query))
    assert len(first["items"]) == 1 and first["next_cursor"], first
    rest = ok(admin.get("/incidents", params={**query, "limit": 10, "cursor": first["next_cursor"]}))
    assert [i["id"] for i in first["items"] + rest["items"]] == [other["id"], incident["id"]]  # newest first
    assert [i["id"] for i in ok(admin.get("/incidents", params={"instance_id": other["instance_id"]}))["items"]] \
        == [other["id"]]
    flagged = ok(admin.get("/process-instances", params={"has_incident": True, "process_id": ops.PROCESS,
                                                         "state": "running"}))["items"]
    assert {incident["instance_id"], other["instance_id"]} <= {i["id"] for i in flagged}
    cancelled = ok(admin.post(f"/incidents/{other['id']}/cancel", json={"reason": "a duplicate"}))
    assert cancelled["id"] == other["instance_id"]
    eventually("the cancelled instance in the read models", lambda: other["instance_id"] in [
        i["id"] for i in ok(admin.get("/process-instances", params={"state": "cancelled"}))["items"]], stack)
    eventually("the incident resolved by the cancel", lambda: ok(admin.get(f"/incidents/{other['id']}"))[
        "resolution"] == "cancelled", stack)


def a_published_message_correlates(admin: httpx.Client, stack: RunningStack) -> None:
    number = f"ORD-{uuid.uuid4().hex[:8]}"
    case_id = ok(admin.post("/cases", json={"definition_key": "orders", "title": number,
                                            "data": {"orderNumber": number}}))["id"]
    task = eventually("the review task", lambda: ok(admin.get("/tasks", params={
        "view": "all", "case_id": case_id}))["items"], stack)[0]
    ok(admin.post(f"/tasks/{task['id']}/complete", json={"data": {}}))

    def at_payment() -> dict[str, Any] | None:
        items = ok(admin.get("/process-instances", params={"case_id": case_id}))["items"]
        return items[0] if items and any(e["element_id"] == "Payment" for e in items[0]["elements"]) else None

    instance = eventually("the instance waiting at the payment catch", at_payment, stack)
    message = {"name": "order-paid", "correlation_key": number, "message_id": f"pay-{number}", "time_to_live": 0}
    published = ok(admin.post("/messages", json=message), 201)
    assert (published["correlated"], published["buffered"]) == (True, False), published
    assert published["process_instance_key"] == instance["instance_key"]
    state = ok(admin.get(f"/messages/{published['message_key']}"))
    assert state["taken"] is True and state["process_instance_key"] == instance["instance_key"]
    eventually("the case queued by the process", lambda: ok(admin.get(f"/cases/{case_id}"))["queue"] == "paid",
               stack)

    buffered = {"name": "order-paid", "correlation_key": "ORD-nobody", "message_id": "dup-1",
                "time_to_live": "PT10M"}
    first = ok(admin.post("/messages", json=buffered), 201)
    assert (first["correlated"], first["buffered"]) == (False, True), first
    duplicate = admin.post("/messages", json=buffered)
    assert duplicate.status_code == 409 and duplicate.headers["content-type"] == MEDIA_TYPE, duplicate.text
    assert "dup-1" in duplicate.json()["detail"]
