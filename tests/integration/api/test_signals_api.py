"""POST /api/signals over HTTP on a real embedded platform (processes on): a broadcast reaches every instance of
the tenant waiting for its name (and no other tenant's), with its variables; only admins and workers broadcast;
bad input is a 422 problem naming the field and stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from casestream.settings import Settings
from domain.process_signal import ProcessSignalBroadcast, ProcessSignalDelivered
from tests.http_server import LiveServer, live_server
from tests.integration.api.bpmn_parts import queue_then_finish
from tests.integration.api.test_operations_api import wait_for

PROCESS = "wait-for-release"
# the case's lifecycle waits for the signal "release", then queues the case where the signal's variables say
MODEL = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="Defs" targetNamespace="http://x">
  <bpmn:signal id="Release" name="release" />
  <bpmn:process id="{PROCESS}" name="Wait for the release" isExecutable="true">
    <bpmn:startEvent id="Begin"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="Begin" targetRef="Released" />
    <bpmn:intermediateCatchEvent id="Released"><bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
      <bpmn:signalEventDefinition signalRef="Release" /></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F2" sourceRef="Released" targetRef="Queue_it" />
{queue_then_finish("F2", "=target")}  </bpmn:process>
</bpmn:definitions>
"""
DEFINITION: dict[str, Any] = {
    "key": "releases", "name": "Releases", "schema": {"type": "object"},
    "stages": [{"key": "open", "name": "Open", "transitions": []}], "queues": ["released"],
    "lifecycle_process": PROCESS,
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(Settings(data_dir=tmp_path / "data", processes="on")) as live:
        assert live.platform.processes is not None and live.platform.processes.wait_ready(60)
        for tenant in ("acme", "globex"):
            with live.client("root", ("admin",), tenant) as admin:
                deployed = admin.post("/api/processes", json={"files": [{"name": "w.bpmn", "content": MODEL}]})
                assert deployed.status_code == 200, deployed.text
                assert admin.post("/api/definitions", json=DEFINITION).status_code in (200, 201)
        yield live


def open_case(admin: httpx.Client) -> str:
    reply = admin.post("/api/cases", json={"definition_key": "releases", "title": "r", "data": {}})
    assert reply.status_code == 201, reply.text
    case_id = str(reply.json()["id"])

    def waiting() -> bool:
        items = admin.get("/api/process-instances", params={"case_id": case_id}).json()["items"]
        return any(e["element_id"] == "Released" for item in items for e in item["elements"])

    wait_for("the instance waiting for the signal", waiting)
    return case_id


def queue_of(admin: httpx.Client, case_id: str) -> str | None:
    found: str | None = admin.get(f"/api/cases/{case_id}").json().get("queue")
    return found


def stored(server: LiveServer, event_type: type) -> list[Any]:
    return [p.event for p in server.platform.store.read(0, 1_000_000) if isinstance(p.event, event_type)]


def test_a_broadcast_reaches_every_waiting_instance_of_the_tenant_only(server: LiveServer) -> None:
    with server.client("root", ("admin",)) as admin, server.client("root", ("admin",), "globex") as other, \
            server.client("deployer", ("worker",)) as worker:
        first, second = open_case(admin), open_case(admin)
        elsewhere = open_case(other)
        reply = worker.post("/api/signals", json={"name": "release", "variables": {"target": "released"}})
        assert reply.status_code == 201, reply.text
        body = reply.json()
        assert body["taken"] is True and body["started"] == [] and len(body["delivered"]) == 2
        for case_id in (first, second):
            assert wait_for("the case queued by the signal", lambda c=case_id: queue_of(admin, c) == "released")
        assert queue_of(other, elsewhere) is None
        [delivered] = stored(server, ProcessSignalDelivered)
        assert sorted(delivered.delivered) == sorted(body["delivered"])
        again = worker.post("/api/signals", json={"name": "release"})
        assert again.status_code == 201 and again.json()["delivered"] == []  # a signal is never kept for later


def test_only_admins_and_workers_broadcast_and_bad_input_stores_nothing(server: LiveServer) -> None:
    before = server.platform.store.max_position()
    with server.client() as alice:
        refused = alice.post("/api/signals", json={"name": "release"})
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("application/problem+json")
    with server.client("root", ("admin",)) as admin:
        empty = admin.post("/api/signals", json={"name": "  "})
        unknown = admin.post("/api/signals", json={"name": "release", "correlation_key": "x"})
    assert empty.status_code == 422 and "name" in empty.text
    assert unknown.status_code == 422 and "correlation_key" in unknown.text
    assert stored(server, ProcessSignalBroadcast) == []
    assert [p for p in server.platform.store.read(before, 1000) if isinstance(p.event, ProcessSignalBroadcast)] == []
