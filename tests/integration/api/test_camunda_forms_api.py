"""Camunda forms over HTTP: a linked `.form` deployed beside its BPMN or on its own (API and CLI), and a
`camunda-forms:bpmn:` embedded form, give the user task its form; a completion breaking the form is refused 422
naming the field and stores nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from typer.testing import CliRunner

from casestream.cli import app as cli_app
from casestream.settings import Settings
from domain.task import TaskCompleted
from processes.forms import FORM_JS_KEY
from tests.http_server import LiveServer, live_server
from tests.integration.api.test_process_deploy_api import DEFINITION, deploy, model, open_case, wait_for

FORM: dict[str, Any] = {
    "id": "review-form", "schemaVersion": 16, "type": "default",
    "components": [
        {"type": "text", "text": "# Review"},
        {"type": "checkbox", "key": "approved", "label": "Approve", "validate": {"required": True}},
        {"type": "number", "key": "amount", "label": "Amount", "validate": {"min": 0, "max": 1000}},
        {"type": "select", "key": "risk", "values": [{"label": "Low", "value": "low"}, {"label": "High",
                                                                                         "value": "high"}]},
    ],
}
EMBEDDED = model("first", extra='<zeebe:formDefinition formKey="camunda-forms:bpmn:UserTaskForm_1" />').replace(
    '<bpmn:startEvent id="Begin">',
    '<bpmn:extensionElements><zeebe:userTaskForm id="UserTaskForm_1">'
    + json.dumps({"components": [{"type": "textfield", "key": "reason", "validate": {"required": True,
                                                                                   "minLength": 3}}]})
    .replace("&", "&amp;").replace("<", "&lt;")
    + '</zeebe:userTaskForm></bpmn:extensionElements>\n    <bpmn:startEvent id="Begin">')


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(Settings(data_dir=tmp_path / "data", processes="on")) as live:
        assert live.platform.processes is not None and live.platform.processes.wait_ready(60)
        yield live


def review_task(server: LiveServer, case_id: str) -> dict[str, Any]:
    with server.client() as alice:
        def open_task() -> dict[str, Any] | None:
            items = alice.get("/api/tasks", params={"case_id": case_id, "view": "all"}).json()["items"]
            return next((t for t in items if t["active"]), None)

        task = wait_for("the review task", open_task)
        assert alice.post(f"/api/tasks/{task['id']}/claim", json={}).status_code == 200
        whole = alice.get(f"/api/tasks/{task['id']}")
        assert whole.status_code == 200, whole.text
        return whole.json()  # type: ignore[no-any-return]


def completions(server: LiveServer, task_id: str) -> list[TaskCompleted]:
    return [e for e in server.platform.store.events_of(UUID(task_id)) if isinstance(e, TaskCompleted)]


def complete(server: LiveServer, task_id: str, data: dict[str, Any]) -> Any:
    with server.client() as alice:
        return alice.post(f"/api/tasks/{task_id}/complete", json={"data": data})


def test_a_linked_form_deployed_beside_its_bpmn_validates_the_task_completion(server: LiveServer) -> None:
    bpmn = model("first", extra='<zeebe:formDefinition formId="review-form" />')
    with server.client("root", ("admin",)) as admin:
        reply = deploy(admin, ("check.bpmn", bpmn), ("review.form", json.dumps(FORM)))
        assert reply.status_code == 200, reply.text
        assert [f["status"] for f in reply.json()["files"]] == ["deployed", "deployed"]
        assert admin.post("/api/definitions", json=DEFINITION).status_code == 200
    case_id = open_case(server)
    task = review_task(server, case_id)
    schema = task["form_schema"]
    assert schema["required"] == ["approved"] and schema["properties"]["risk"]["enum"] == ["low", "high"]
    assert schema[FORM_JS_KEY] == FORM  # the portal may render form-js itself
    missing = complete(server, task["id"], {"amount": 5})
    assert missing.status_code == 422 and missing.headers["content-type"].startswith("application/problem+json")
    assert "data.approved" in {e["path"] for e in missing.json()["errors"]}
    too_much = complete(server, task["id"], {"approved": True, "amount": 5000, "risk": "medium"})
    assert too_much.status_code == 422
    assert {e["path"] for e in too_much.json()["errors"]} == {"data.amount", "data.risk"}
    assert completions(server, task["id"]) == []
    done = complete(server, task["id"], {"approved": True, "amount": 50, "risk": "low"})
    assert done.status_code == 200, done.text
    assert len(completions(server, task["id"])) == 1


@pytest.mark.parametrize("reference", ['formKey="camunda-forms:bpmn:UserTaskForm_1"',
                                       'externalReference="UserTaskForm_1"'])  # as Modeler 5 writes it
def test_an_embedded_camunda_form_validates_the_task_completion(server: LiveServer, reference: str) -> None:
    bpmn = EMBEDDED.replace('formKey="camunda-forms:bpmn:UserTaskForm_1"', reference)
    with server.client("root", ("admin",)) as admin:
        reply = deploy(admin, ("check.bpmn", bpmn))
        assert reply.status_code == 200, reply.text
        assert admin.post("/api/definitions", json=DEFINITION).status_code == 200
    task = review_task(server, open_case(server))
    assert task["form_schema"]["required"] == ["reason"]
    short = complete(server, task["id"], {"reason": "no"})
    assert short.status_code == 422 and {e["path"] for e in short.json()["errors"]} == {"data.reason"}
    assert complete(server, task["id"], {"reason": "fine by me"}).status_code == 200


def test_a_form_with_an_unsupported_component_is_refused_at_deploy_naming_it(server: LiveServer) -> None:
    bad_form = {"id": "review-form", "components": [{"type": "filepicker", "key": "upload"}]}
    bad_embedded = EMBEDDED.replace('"type": "textfield"', '"type": "filepicker"')
    bpmn = model("first", extra='<zeebe:formDefinition formId="review-form" />')
    with server.client("root", ("admin",)) as admin:
        reply = deploy(admin, ("check.bpmn", bpmn), ("review.form", json.dumps(bad_form)))
        _process, form = reply.json()["files"]
        assert form["status"] == "refused"
        assert "'upload' (type 'filepicker')" in form["problems"][0]["message"]
        embedded = deploy(admin, ("embedded.bpmn", bad_embedded))
        assert embedded.status_code == 422
        [problem] = embedded.json()["files"][0]["problems"]
        assert problem["element_id"] == "UserTaskForm_1" and "filepicker" in problem["message"]
        assert problem["line"] is not None


def test_a_form_deployed_alone_is_linked_by_id_and_its_latest_version_taken_when_the_task_is_created(
        server: LiveServer, tmp_path: Path) -> None:
    bpmn = model("first", extra='<zeebe:formDefinition formId="review-form" />')
    with server.client("root", ("admin",)) as admin:
        head = server.platform.store.max_position()
        unknown = deploy(admin, ("check.bpmn", bpmn))  # the form is not deployed yet: refused, naming the task
        assert unknown.status_code == 422 and unknown.headers["content-type"].startswith("application/problem+json")
        [problem] = unknown.json()["files"][0]["problems"]
        assert problem["element_id"] == "Task_review" and "formId 'review-form'" in problem["message"]
        assert problem["line"] is not None and server.platform.store.max_position() == head
    form_file = tmp_path / "review.form"
    form_file.write_text(json.dumps(FORM))
    admin_token = ["--url", server.url, "--token", server.token("root", ("admin",))]
    alone = CliRunner().invoke(cli_app, ["process", "deploy", str(form_file), *admin_token])
    assert alone.exit_code == 0, alone.output
    assert alone.output.strip() == "review.form: deployed (form review-form version 1)"
    with server.client("root", ("admin",)) as admin:
        assert deploy(admin, ("check.bpmn", bpmn)).status_code == 200
        assert admin.post("/api/definitions", json=DEFINITION).status_code == 200
    first = review_task(server, open_case(server))
    assert first["form_schema"][FORM_JS_KEY] == FORM and first["form_schema"]["required"] == ["approved"]
    second_version = {**FORM, "components": [{"type": "textfield", "key": "verdict", "validate": {"required": True}}]}
    with server.client("root", ("admin",)) as admin:
        reply = deploy(admin, ("review.form", json.dumps(second_version)))
        assert [(f["status"], f["version"]) for f in reply.json()["files"]] == [("deployed", 2)]
    second = review_task(server, open_case(server))  # the same process version: the form's latest is taken
    assert second["form_schema"]["required"] == ["verdict"]
    assert first["form_schema"]["required"] == ["approved"]  # the task made before keeps its form


def test_a_conditional_field_is_required_while_shown_and_dropped_while_hidden(server: LiveServer) -> None:
    form = {"id": "review-form", "components": [
        {"type": "checkbox", "key": "approved"},
        {"type": "textfield", "key": "reason", "validate": {"required": True},
         "conditional": {"hide": "=approved"}}]}
    bpmn = model("first", extra='<zeebe:formDefinition formId="review-form" />')
    with server.client("root", ("admin",)) as admin:
        assert deploy(admin, ("check.bpmn", bpmn), ("review.form", json.dumps(form))).status_code == 200
        assert admin.post("/api/definitions", json=DEFINITION).status_code == 200
    shown = review_task(server, open_case(server))
    missing = complete(server, shown["id"], {"approved": False})
    assert missing.status_code == 422 and {e["path"] for e in missing.json()["errors"]} == {"data.reason"}
    assert completions(server, shown["id"]) == []
    assert complete(server, shown["id"], {"approved": False, "reason": "incomplete"}).status_code == 200
    hidden = review_task(server, open_case(server))
    assert complete(server, hidden["id"], {"approved": True, "reason": "not sent by form-js"}).status_code == 200
    [done] = completions(server, hidden["id"])
    assert done.data == {"approved": True}
