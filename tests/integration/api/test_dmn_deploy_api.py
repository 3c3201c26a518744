"""DMN through the deploy API: a BPMN with a business-rule task and its DMN file deployed over HTTP, a case run
through them; a bad DMN refused naming the file, decision, rule and line; decisions belong to the deploying tenant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from casestream.cli import app as cli_app
from casestream.settings import Settings
from domain.process import ProcessCompleted, ProcessStarted, process_instance_id
from processes.manager import lifecycle_key
from tests.http_server import LiveServer, live_server
from tests.integration.api.test_process_deploy_api import deploy, wait_for

PROCESS = "routed-by-rules"
BPMN = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="Defs" targetNamespace="http://x">
  <bpmn:process id="{PROCESS}" name="Routed by rules" isExecutable="true">
    <bpmn:startEvent id="Begin"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="Begin" targetRef="Decide" />
    <bpmn:businessRuleTask id="Decide" name="Pick the queue">
      <bpmn:extensionElements><zeebe:calledDecision decisionId="pick_queue" resultVariable="queue" />
      </bpmn:extensionElements>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:businessRuleTask>
    <bpmn:sequenceFlow id="F2" sourceRef="Decide" targetRef="Queue_it" />
    <bpmn:serviceTask id="Queue_it" name="Queue">
      <bpmn:extensionElements><zeebe:taskDefinition type="case.set-queue" /></bpmn:extensionElements>
      <bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="F3" sourceRef="Queue_it" targetRef="Finish" />
    <bpmn:endEvent id="Finish"><bpmn:incoming>F3</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def dmn(big: str = "senior", first_cell: str = "&gt;= 1000") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="queue_rules" name="Queue rules"
             namespace="http://camunda.org/schema/1.0/dmn">
  <decision id="pick_queue" name="Pick the queue">
    <decisionTable id="table" hitPolicy="FIRST">
      <input id="in_amount" label="Amount"><inputExpression id="ie" typeRef="number"><text>amount</text>
      </inputExpression></input>
      <output id="out_queue" name="queue" typeRef="string" />
      <rule id="rule_big"><inputEntry id="c1"><text>{first_cell}</text></inputEntry>
        <outputEntry id="o1"><text>"{big}"</text></outputEntry></rule>
      <rule id="rule_rest"><inputEntry id="c2"><text>-</text></inputEntry>
        <outputEntry id="o2"><text>"intake"</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>
"""


DEFINITION: dict[str, Any] = {
    "key": "routed", "name": "Routed", "schema": {"type": "object", "properties": {"amount": {"type": "number"}}},
    "stages": [{"key": "open", "name": "Open", "transitions": []}], "queues": ["senior", "intake", "expert"],
    "lifecycle_process": PROCESS,
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(Settings(data_dir=tmp_path / "data", processes="on")) as live:
        assert live.platform.processes is not None and live.platform.processes.wait_ready(60)
        yield live


def run_case(server: LiveServer, amount: int) -> str | None:
    """Open a case with `amount`, wait for its lifecycle to finish, and say the queue the decision put it in."""
    with server.client() as alice:
        reply = alice.post("/api/cases", json={"definition_key": "routed", "title": "t", "data": {"amount": amount}})
        assert reply.status_code == 201, reply.text
        case_id = str(reply.json()["id"])
        iid = process_instance_id("acme", lifecycle_key(case_id, PROCESS))
        wait_for("the lifecycle to complete", lambda: any(
            isinstance(e, ProcessCompleted) for e in server.platform.store.events_of(iid)))
        case = alice.get(f"/api/cases/{case_id}", params={"wait_for": server.platform.store.max_position()})
    return case.json()["queue"]  # type: ignore[no-any-return]


def test_a_business_rule_task_uses_a_dmn_deployed_over_http_and_a_new_version(server: LiveServer) -> None:
    with server.client("root", ("admin",)) as admin:
        reply = deploy(admin, ("rules.dmn", dmn()), ("routed.bpmn", BPMN))
        assert reply.status_code == 200, reply.text
        decisions, process = reply.json()["files"]
        assert (decisions["kind"], decisions["status"], decisions["process_id"], decisions["version"],
                decisions["forms"]) == ("decisions", "deployed", "queue_rules", 1, ["pick_queue"])
        assert process["status"] == "deployed"
        again = deploy(admin, ("rules.dmn", dmn())).json()["files"][0]
        assert (again["status"], again["version"]) == ("unchanged", 1)
        assert admin.post("/api/definitions", json=DEFINITION).status_code == 200
        assert PROCESS in {p["id"] for p in admin.get("/api/processes").json()["items"]}
        assert "queue_rules" not in {p["id"] for p in admin.get("/api/processes").json()["items"]}
    assert run_case(server, 5000) == "senior"
    assert run_case(server, 10) == "intake"
    with server.client("root", ("admin",)) as admin:
        second = deploy(admin, ("rules.dmn", dmn(big="expert"))).json()["files"][0]
        assert (second["status"], second["version"]) == ("deployed", 2)
    assert run_case(server, 5000) == "expert"


def test_a_bad_dmn_is_refused_naming_file_decision_rule_and_line(server: LiveServer) -> None:
    bad = dmn(first_cell="&gt;= = 1000")
    with server.client("root", ("admin",)) as admin:
        reply = deploy(admin, ("rules.dmn", bad))
        assert reply.status_code == 422 and reply.headers["content-type"].startswith("application/problem+json")
        [problem] = reply.json()["files"][0]["problems"]
        assert problem["element_id"] == "rule_big" and "pick_queue" in problem["message"]
        assert problem["line"] == next(n for n, line in enumerate(bad.splitlines(), 1) if 'id="rule_big"' in line)
        assert reply.json()["detail"].startswith("rules.dmn: rule_big:")
        unsupported = deploy(admin, ("rules.dmn", dmn().replace('hitPolicy="FIRST"', 'hitPolicy="PRIORITY"')))
        [problem] = unsupported.json()["files"][0]["problems"]
        assert problem["element_id"] == "table" and "PRIORITY" in problem["message"]


def test_decisions_are_the_deploying_tenants_own(server: LiveServer) -> None:
    with server.client("root", ("admin",)) as admin:
        assert deploy(admin, ("rules.dmn", dmn()), ("routed.bpmn", BPMN)).status_code == 200
    with server.client("root", ("admin",), tenant="globex") as other:
        assert deploy(other, ("routed.bpmn", BPMN)).status_code == 200
        assert other.post("/api/definitions", json=DEFINITION).status_code == 200
    with server.client(tenant="globex") as bob:
        reply = bob.post("/api/cases", json={"definition_key": "routed", "title": "t", "data": {"amount": 5}})
        assert reply.status_code == 201, reply.text
        case_id = str(reply.json()["id"])
    iid = process_instance_id("globex", lifecycle_key(case_id, PROCESS))
    wait_for("the lifecycle's start", lambda: any(
        isinstance(e, ProcessStarted) for e in server.platform.store.events_of(iid)))
    with server.client("root", ("admin",), tenant="globex") as other:
        incidents = wait_for("an incident for the missing decision", lambda: [
            i for i in other.get("/api/incidents").json().get("items", []) if "pick_queue" in str(i)])
    assert incidents


def test_cli_deploys_a_dmn_file_and_names_a_refused_rule(server: LiveServer, tmp_path: Path) -> None:
    good, bad = tmp_path / "rules.dmn", tmp_path / "bad.dmn"
    good.write_text(dmn())
    bad.write_text(dmn(first_cell="&gt;= = 1000").replace('id="queue_rules"', 'id="other_rules"'))
    admin = ["--url", server.url, "--token", server.token("root", ("admin",))]
    runner = CliRunner()
    first = runner.invoke(cli_app, ["process", "deploy", str(good), *admin])
    assert first.exit_code == 0, first.output
    assert first.output.strip() == "rules.dmn: deployed (queue_rules version 1: decisions pick_queue)"
    refused = runner.invoke(cli_app, ["process", "deploy", str(bad), *admin])
    assert refused.exit_code == 1
    assert "bad.dmn: refused" in refused.output and "  rule_big: input cell 1" in refused.output
    assert "(in decision 'pick_queue')" in refused.output
