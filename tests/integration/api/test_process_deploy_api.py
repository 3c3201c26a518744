"""Deploying processes over HTTP: versions, running instances keeping theirs, bad files beside good ones, restarts.

A real embedded platform served over HTTP (processes on). People act through the API (admins deploy and publish,
caseworkers open cases and complete tasks); what the engine did is read from the event store.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from typer.testing import CliRunner

from adapters.event_store import sqlite_event_store
from casestream.cli import app as cli_app
from casestream.settings import Settings
from domain.process import ProcessCompleted, ProcessStarted, process_instance_id
from domain.process_deployment import xml_hash
from processes.manager import lifecycle_key
from tests.http_server import LiveServer, free_port, live_server
from tests.integration.api.test_api_workers import ROOT, Workers

T = TypeVar("T")
PROCESS = "deploy-check"


def model(queue: str, *, process_id: str = PROCESS, extra: str = "") -> str:
    """A lifecycle: a user task, then the case is put in `queue` (so the version that ran is visible)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="Defs" targetNamespace="http://x">
  <bpmn:process id="{process_id}" name="Deploy check" isExecutable="true">
    <bpmn:startEvent id="Begin"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="Begin" targetRef="Task_review" />
    <bpmn:userTask id="Task_review" name="Review">
      <bpmn:extensionElements><zeebe:assignmentDefinition candidateGroups="caseworker" />{extra}
      </bpmn:extensionElements>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="F2" sourceRef="Task_review" targetRef="Queue_it" />
    <bpmn:serviceTask id="Queue_it" name="Queue">
      <bpmn:extensionElements>
        <zeebe:taskDefinition type="case.set-queue" />
        <zeebe:taskHeaders><zeebe:header key="queue" value="{queue}" /></zeebe:taskHeaders>
      </bpmn:extensionElements>
      <bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="F3" sourceRef="Queue_it" targetRef="Finish" />
    <bpmn:endEvent id="Finish"><bpmn:incoming>F3</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


# an unknown job type: refused at deploy, naming the element and its line
BAD = model("first", process_id="bad-one").replace('type="case.set-queue"', 'type="no.such-worker"')
DEFINITION: dict[str, Any] = {
    "key": "deploy-check", "name": "Deploy check", "schema": {"type": "object"},
    "stages": [{"key": "open", "name": "Open", "transitions": []}], "queues": ["first", "second"],
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


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def server(data_dir: Path) -> Iterator[LiveServer]:
    with live_server(Settings(data_dir=data_dir, processes="on")) as live:
        assert live.platform.processes is not None and live.platform.processes.wait_ready(60)
        yield live


def deploy(client: httpx.Client, *files: tuple[str, str]) -> httpx.Response:
    return client.post("/api/processes", json={"files": [{"name": n, "content": c} for n, c in files]})


def open_case(server: LiveServer) -> str:
    with server.client() as alice:
        reply = alice.post("/api/cases", json={"definition_key": "deploy-check", "title": "t", "data": {}})
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def started_hash(server: LiveServer, case_id: str) -> str:
    iid = process_instance_id("acme", lifecycle_key(case_id, PROCESS))
    started = wait_for("the lifecycle's start", lambda: next(
        (e for e in server.platform.store.events_of(iid) if isinstance(e, ProcessStarted)), None))
    return started.definition_hash


def finish_review(server: LiveServer, case_id: str) -> None:
    """A caseworker claims and completes the case's review task; the process then queues the case and ends."""
    with server.client() as alice:
        def open_task() -> dict[str, Any] | None:
            items = alice.get("/api/tasks", params={"case_id": case_id, "view": "all"}).json()["items"]
            return next((t for t in items if t["active"]), None)

        task = wait_for("the review task", open_task)
        assert alice.post(f"/api/tasks/{task['id']}/claim", json={}).status_code == 200
        assert alice.post(f"/api/tasks/{task['id']}/complete", json={"data": {}}).status_code == 200
    iid = process_instance_id("acme", lifecycle_key(case_id, PROCESS))
    wait_for("the lifecycle to complete", lambda: any(
        isinstance(e, ProcessCompleted) for e in server.platform.store.events_of(iid)))


def queue_of(server: LiveServer, case_id: str) -> str | None:
    with server.client() as alice:
        reply = alice.get(f"/api/cases/{case_id}", params={"wait_for": server.platform.store.max_position()})
    return reply.json()["queue"]  # type: ignore[no-any-return]


def test_versions_are_made_by_new_content_only_and_a_running_instance_keeps_its_version(server: LiveServer) -> None:
    v1, v2 = model("first"), model("second")
    with server.client("root", ("admin",)) as admin:
        first = deploy(admin, ("check.bpmn", v1))
        assert first.status_code == 200, first.text
        assert first.json()["files"] == [{
            "file": "check.bpmn", "kind": "process", "status": "deployed", "process_id": PROCESS, "version": 1,
            "content_hash": xml_hash(v1), "forms": [], "problems": []}]
        again = deploy(admin, ("renamed.bpmn", v1)).json()["files"][0]
        assert (again["status"], again["version"]) == ("unchanged", 1)
        assert admin.post("/api/definitions", json=DEFINITION).status_code == 200
    on_v1 = open_case(server)
    assert started_hash(server, on_v1) == xml_hash(v1)
    with server.client("root", ("admin",)) as admin:
        second = deploy(admin, ("check.bpmn", v2)).json()["files"][0]
        assert (second["status"], second["version"]) == ("deployed", 2)
        listed = {p["id"]: p for p in admin.get("/api/processes").json()["items"]}
        assert (listed[PROCESS]["latest_version"], listed[PROCESS]["versions"], listed[PROCESS]["shipped"]) == (
            2, 2, False)
        assert listed["claim-case"]["shipped"] is True
        back = admin.get(f"/api/processes/{PROCESS}/versions/1")
        assert back.headers["content-type"] == "application/xml"
        assert back.content == v1.encode("utf-8")
        assert admin.get(f"/api/processes/{PROCESS}/versions/2").content == v2.encode("utf-8")
        missing = admin.get(f"/api/processes/{PROCESS}/versions/3")
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    on_v2 = open_case(server)
    assert started_hash(server, on_v2) == xml_hash(v2)
    finish_review(server, on_v1)
    finish_review(server, on_v2)
    assert (queue_of(server, on_v1), queue_of(server, on_v2)) == ("first", "second")


def test_a_bad_file_is_refused_alone_naming_file_element_and_line(server: LiveServer) -> None:
    form = '{"id": "review-form", "type": "default", "components": [{"type": "textfield", "key": "note"}]}'
    with_form = model("first", process_id="with-form", extra='<zeebe:formDefinition formId="review-form" />')
    with server.client("root", ("admin",)) as admin:
        reply = admin.post("/api/processes", files=[
            ("files", ("good.bpmn", with_form.encode(), "application/xml")),
            ("files", ("bad.bpmn", BAD.encode(), "application/xml")),
            ("files", ("review.form", form.encode(), "application/json")),
            ("files", ("stray.form", b'{"id": "nobody-uses-me", "components": []}', "application/json")),
        ])
        assert reply.status_code == 207, reply.text
        good, bad, used, stray = reply.json()["files"]
        assert (good["status"], good["process_id"], good["version"], good["forms"]) == (
            "deployed", "with-form", 1, ["review-form"])
        assert bad["status"] == "refused" and bad["version"] is None
        [problem] = bad["problems"]
        assert problem["element_id"] == "Queue_it" and "no.such-worker" in problem["message"]
        assert problem["line"] == BAD.splitlines().index(
            next(line for line in BAD.splitlines() if 'id="Queue_it"' in line)) + 1
        assert (used["status"], used["process_id"], used["forms"]) == ("deployed", "review-form", ["review-form"])
        assert (stray["status"], stray["process_id"], stray["version"]) == ("deployed", "nobody-uses-me", 1)
        ids = {p["id"] for p in admin.get("/api/processes").json()["items"]}
        assert "with-form" in ids and "bad-one" not in ids

        refused = deploy(admin, ("bad.bpmn", BAD), ("broken.bpmn", "<bpmn:definitions"))
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("application/problem+json")
        body = refused.json()
        assert body["detail"].startswith("bad.bpmn: Queue_it:")
        assert {e["path"] for e in body["errors"]} == {"bad.bpmn#Queue_it", "broken.bpmn"}
        assert [f["status"] for f in body["files"]] == ["refused", "refused"]


def test_only_admins_deploy_and_read_processes(server: LiveServer) -> None:
    with server.client("bob", ("supervisor",)) as bob:
        denied = deploy(bob, ("check.bpmn", model("first")))
        assert denied.status_code == 403
        assert "only admins deploy processes" in denied.text
        assert bob.get("/api/processes").status_code == 403
        assert bob.get("/api/processes/claim-case/versions/1").status_code == 403
    with server.client("root", ("admin",)) as admin:
        assert PROCESS not in {p["id"] for p in admin.get("/api/processes").json()["items"]}
        audited = wait_for("the refusal in the audit log", lambda: admin.get(
            "/api/audit", params={"action": "DeployProcess", "wait_for": server.platform.store.max_position()}
        ).json()["items"])
        assert audited[0]["actor"] == "bob" and "only admins deploy processes" in audited[0]["reasons"]
        assert admin.post("/api/processes", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
        assert admin.post("/api/processes", json={"files": []}).status_code == 422


def test_deployments_are_per_tenant(server: LiveServer) -> None:
    with server.client("root", ("admin",), tenant="globex") as other:
        assert deploy(other, ("check.bpmn", model("first"))).status_code == 200
    with server.client("root", ("admin",)) as admin:
        assert PROCESS not in {p["id"] for p in admin.get("/api/processes").json()["items"]}
        assert admin.get(f"/api/processes/{PROCESS}/versions/1").status_code == 404
        refused = admin.post("/api/definitions", json=DEFINITION)
        assert refused.status_code == 422 and f"no deployed process {PROCESS!r}" in refused.text


def test_a_restart_keeps_every_version_and_the_instance_started_on_the_old_one(data_dir: Path) -> None:
    v1, v2 = model("first"), model("second")
    with live_server(Settings(data_dir=data_dir, processes="on")) as before:
        assert before.platform.processes is not None and before.platform.processes.wait_ready(60)
        with before.client("root", ("admin",)) as admin:
            assert deploy(admin, ("check.bpmn", v1)).status_code == 200
            assert admin.post("/api/definitions", json=DEFINITION).status_code == 200
        on_v1 = open_case(before)
        assert started_hash(before, on_v1) == xml_hash(v1)
        with before.client("root", ("admin",)) as admin:
            assert deploy(admin, ("check.bpmn", v2)).json()["files"][0]["version"] == 2
        head = before.platform.store.max_position()
    with live_server(Settings(data_dir=data_dir, processes="on")) as after:
        assert after.platform.processes is not None and after.platform.processes.wait_ready(60)
        assert after.platform.store.max_position() == head  # the shipped ones again: same content, no new version
        with after.client("root", ("admin",)) as admin:
            listed = {p["id"]: p for p in admin.get("/api/processes").json()["items"]}
            assert (listed[PROCESS]["latest_version"], listed[PROCESS]["versions"]) == (2, 2)
        finish_review(after, on_v1)
        assert queue_of(after, on_v1) == "first"
        assert started_hash(after, open_case(after)) == xml_hash(v2)



def test_cli_deploy_prints_each_outcome_and_fails_when_a_file_is_refused(server: LiveServer, tmp_path: Path) -> None:
    good, bad = tmp_path / "check.bpmn", tmp_path / "bad.bpmn"
    good.write_text(model("first"))
    bad.write_text(BAD)
    admin = ["--url", server.url, "--token", server.token("root", ("admin",))]
    runner = CliRunner()
    first = runner.invoke(cli_app, ["process", "deploy", str(good), *admin])
    assert first.exit_code == 0, first.output
    assert first.output.strip() == f"check.bpmn: deployed ({PROCESS} version 1)"
    mixed = runner.invoke(cli_app, ["process", "deploy", str(good), str(bad), *admin])
    assert mixed.exit_code == 1
    line = BAD.splitlines().index(next(x for x in BAD.splitlines() if 'id="Queue_it"' in x)) + 1
    assert f"check.bpmn: unchanged ({PROCESS} version 1)" in mixed.output
    assert "bad.bpmn: refused" in mixed.output
    assert "  Queue_it: " in mixed.output and "no.such-worker" in mixed.output and f"(line {line})" in mixed.output
    caseworker = runner.invoke(cli_app, ["process", "deploy", str(good), "--url", server.url, "--token",
                                         server.token()])
    assert caseworker.exit_code == 1 and "only admins deploy processes" in caseworker.output
    no_token = runner.invoke(cli_app, ["process", "deploy", str(good), "--url", server.url], env={
        "CASESTREAM_TOKEN": ""})
    assert no_token.exit_code == 2 and "--token" in no_token.output


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[Workers]:
    """`casestream serve --workers 2` with the processes on: the runner process runs the engine."""
    data = tmp_path / "workers"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASESTREAM_")}
    env.update({"CASESTREAM_DATA_DIR": str(data), "CASESTREAM_PROCESSES": "on"})
    process = subprocess.Popen(
        [sys.executable, "-c", "from casestream.cli import main; main()", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "2"], env=env, cwd=str(ROOT), start_new_session=True)
    running = Workers(f"http://127.0.0.1:{port}", data, process)
    try:
        def both() -> bool:
            assert process.poll() is None, f"serve --workers exited with {process.returncode}"
            try:
                roles = {httpx.get(f"{running.url}/readyz", timeout=2).json()["runner"]["role"] for _ in range(8)}
            except (httpx.HTTPError, ValueError, KeyError):
                return False
            return roles == {"runner", "follower"}

        wait_for("both processes", both, timeout=90)
        yield running
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_deploy_through_a_follower_is_started_by_the_runner_process_s_engine(two_processes: Workers) -> None:
    store = sqlite_event_store(Settings(data_dir=two_processes.data_dir).events_path)

    def started_on(case_id: str) -> str:
        iid = process_instance_id("acme", lifecycle_key(case_id, PROCESS))
        found = wait_for("the lifecycle's start", lambda: next(
            (e for e in store.events_of(iid) if isinstance(e, ProcessStarted)), None), timeout=60)
        return found.definition_hash

    try:
        with closing(two_processes.client_of("follower", "root", ("admin",))) as admin:
            for version, queue in ((1, "first"), (2, "second")):
                deployed = deploy(admin, ("check.bpmn", model(queue))).json()["files"][0]
                assert (deployed["status"], deployed["version"]) == ("deployed", version), deployed
                if version == 1:  # the follower checks the definition against the deployments in the event store
                    assert admin.post("/api/definitions", json=DEFINITION).status_code == 200
                opened = admin.post("/api/cases", json={"definition_key": "deploy-check", "title": "t", "data": {}})
                assert opened.status_code == 201, opened.text
                assert started_on(opened.json()["id"]) == xml_hash(model(queue))
            # the follower answers from the read models the runner process folds (a deploy waits for them)
            listed = {p["id"]: p for p in admin.get("/api/processes").json()["items"]}
            assert (listed[PROCESS]["latest_version"], listed[PROCESS]["shipped"]) == (2, False)
            back = admin.get(f"/api/processes/{PROCESS}/versions/1")
            assert back.headers["content-type"] == "application/xml" and back.content == model("first").encode()
    finally:
        store.close()
