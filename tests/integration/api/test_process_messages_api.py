"""POST /api/messages over HTTP on a real embedded platform (processes on): a message published before the
instance reaches its catch is buffered, then correlated when the catch opens; one whose time to live has passed
never correlates; bad input is a 422 problem naming the field and stores nothing; a live message id is a 409."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from casestream.settings import Settings
from domain.process_message import ProcessMessageCorrelated, ProcessMessagePublished
from tests.http_server import LiveServer, live_server
from tests.integration.api.bpmn_parts import queue_then_finish
from tests.integration.api.test_operations_api import wait_for

PROCESS = "pay-then-ship"
# a review first (the instance is not waiting for the payment yet), then the payment keyed by the order number
MODEL = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="Defs" targetNamespace="http://x">
  <bpmn:message id="Paid" name="order-paid">
    <bpmn:extensionElements><zeebe:subscription correlationKey="=orderNumber" /></bpmn:extensionElements>
  </bpmn:message>
  <bpmn:process id="{PROCESS}" name="Pay, then ship" isExecutable="true">
    <bpmn:startEvent id="Begin"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="Begin" targetRef="Review" />
    <bpmn:userTask id="Review" name="Review the order"><bpmn:incoming>F1</bpmn:incoming>
      <bpmn:outgoing>F2</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="F2" sourceRef="Review" targetRef="Payment" />
    <bpmn:intermediateCatchEvent id="Payment"><bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing>
      <bpmn:messageEventDefinition messageRef="Paid" /></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F3" sourceRef="Payment" targetRef="Queue_it" />
{queue_then_finish("F3", "paid", "F4")}  </bpmn:process>
</bpmn:definitions>
"""
DEFINITION: dict[str, Any] = {
    "key": "orders", "name": "Orders", "schema": {"type": "object"},
    "stages": [{"key": "open", "name": "Open", "transitions": []}], "queues": ["paid"],
    "lifecycle_process": PROCESS,
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(Settings(data_dir=tmp_path / "data", processes="on")) as live:
        assert live.platform.processes is not None and live.platform.processes.wait_ready(60)
        with live.client("root", ("admin",)) as admin:
            deployed = admin.post("/api/processes", json={"files": [{"name": "pay.bpmn", "content": MODEL}]})
            assert deployed.status_code == 200, deployed.text
            assert admin.post("/api/definitions", json=DEFINITION).status_code in (200, 201)
        yield live


def open_order(admin: httpx.Client) -> tuple[str, str]:
    """A case whose process waits on its review; the case id and the order number."""
    number = f"ORD-{uuid.uuid4().hex[:8]}"
    reply = admin.post("/api/cases", json={"definition_key": "orders", "title": number,
                                           "data": {"orderNumber": number}})
    assert reply.status_code == 201, reply.text
    return reply.json()["id"], number


def review(admin: httpx.Client, case_id: str) -> None:
    """Complete the case's review task: the instance goes on to wait for the payment."""
    def task() -> list[dict[str, Any]]:
        return admin.get("/api/tasks", params={"view": "all", "case_id": case_id}).json()["items"]

    found = wait_for("the review task", task)
    done = admin.post(f"/api/tasks/{found[0]['id']}/complete", json={"data": {}})
    assert done.status_code == 200, done.text


def elements(admin: httpx.Client, case_id: str) -> list[str]:
    items = admin.get("/api/process-instances", params={"case_id": case_id}).json()["items"]
    return [e["element_id"] for item in items for e in item["elements"]]


def queue_of(admin: httpx.Client, case_id: str) -> str | None:
    found: str | None = admin.get(f"/api/cases/{case_id}").json().get("queue")
    return found


def stored(server: LiveServer, event_type: type) -> list[Any]:
    return [p.event for p in server.platform.store.read(0, 100_000) if isinstance(p.event, event_type)]


def test_a_message_published_early_is_buffered_then_correlated_when_the_catch_opens(server: LiveServer) -> None:
    with server.client("root", ("admin",)) as admin, server.client("shop", ("worker",)) as shop:
        case_id, number = open_order(admin)
        published = shop.post("/api/messages", json={"name": "order-paid", "correlation_key": number,
                                                     "variables": {"paidBy": "card"}, "time_to_live": "PT10M"})
        assert published.status_code == 201, published.text
        reply = published.json()
        assert (reply["correlated"], reply["buffered"], reply["process_instance_key"]) == (False, True, None)
        review(admin, case_id)
        assert wait_for("the case queued by the process", lambda: queue_of(admin, case_id) == "paid")
    correlated = stored(server, ProcessMessageCorrelated)
    assert [str(e.aggregate_id) for e in correlated] == [reply["message_key"]]


def test_a_message_to_a_waiting_catch_correlates_at_once_and_names_the_instance(server: LiveServer) -> None:
    with server.client("root", ("admin",)) as admin:
        case_id, number = open_order(admin)
        review(admin, case_id)
        wait_for("the instance at the payment catch", lambda: "Payment" in elements(admin, case_id))
        reply = admin.post("/api/messages", json={"name": "order-paid", "correlation_key": number,
                                                  "time_to_live": 0}).json()
        assert reply["correlated"] is True and reply["buffered"] is False
        instances = admin.get("/api/process-instances", params={"case_id": case_id}).json()["items"]
        assert reply["process_instance_key"] == instances[0]["instance_key"]
        assert wait_for("the case queued by the process", lambda: queue_of(admin, case_id) == "paid")


def test_a_message_whose_time_to_live_passed_never_correlates(server: LiveServer) -> None:
    with server.client("root", ("admin",)) as admin:
        case_id, number = open_order(admin)
        reply = admin.post("/api/messages", json={"name": "order-paid", "correlation_key": number,
                                                  "time_to_live": 1})
        assert reply.status_code == 201, reply.text
        time.sleep(0.05)  # past its 1 ms
        review(admin, case_id)
        wait_for("the instance at the payment catch", lambda: "Payment" in elements(admin, case_id))
        # a message published now does correlate: so the expired one had its chance and did not take it
        fresh = admin.post("/api/messages", json={"name": "order-paid", "correlation_key": number}).json()
        assert fresh["correlated"] is True
    assert [str(e.aggregate_id) for e in stored(server, ProcessMessageCorrelated)] == [fresh["message_key"]]


def test_a_live_message_id_is_refused_with_409(server: LiveServer) -> None:
    message = {"name": "order-paid", "correlation_key": "ORD-none", "message_id": "payment-7"}
    with server.client("root", ("admin",)) as admin:
        assert admin.post("/api/messages", json=message).status_code == 201
        again = admin.post("/api/messages", json=message)
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
    assert "payment-7" in again.json()["detail"]
    assert len(stored(server, ProcessMessagePublished)) == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "order-paid", "correlation_key": "k", "time_to_live": "soon"}, "time_to_live"),
    ({"name": "order-paid", "correlation_key": "k", "time_to_live": -5}, "time_to_live"),
    ({"name": "", "correlation_key": "k"}, "name"),
    ({"name": "order-paid"}, "correlation_key"),
    ({"name": "order-paid", "correlation_key": "k", "variables": [1, 2]}, "variables"),
    ({"name": "order-paid", "correlation_key": "k", "colour": "red"}, "colour"),
])
def test_bad_input_is_a_422_problem_naming_the_field_and_stores_nothing(
    server: LiveServer, body: dict[str, Any], field: str
) -> None:
    before = server.platform.store.max_position()
    with server.client("root", ("admin",)) as admin:
        reply = admin.post("/api/messages", json=body)
    assert reply.status_code == 422 and reply.headers["content-type"].startswith("application/problem+json")
    assert field in reply.text
    assert server.platform.store.max_position() == before


def test_a_buffered_message_survives_a_restart_and_then_correlates(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", processes="on")
    with live_server(settings) as first:
        assert first.platform.processes is not None and first.platform.processes.wait_ready(60)
        with first.client("root", ("admin",)) as admin:
            assert admin.post("/api/processes", json={"files": [{"name": "pay.bpmn", "content": MODEL}]}
                              ).status_code == 200
            assert admin.post("/api/definitions", json=DEFINITION).status_code in (200, 201)
            case_id, number = open_order(admin)
            reply = admin.post("/api/messages", json={"name": "order-paid", "correlation_key": number,
                                                      "time_to_live": "PT1H"}).json()
            assert reply["buffered"] is True
    with live_server(settings) as second:
        assert second.platform.processes is not None and second.platform.processes.wait_ready(60)
        with second.client("root", ("admin",)) as admin:
            review(admin, case_id)
            assert wait_for("the case queued by the process", lambda: queue_of(admin, case_id) == "paid")
        assert [str(e.aggregate_id) for e in stored(second, ProcessMessageCorrelated)] == [reply["message_key"]]
