"""The served OpenAPI tells the truth: every operation's real replies, success and refusals, match the schema it
documents for that status and media type; every reply is documented by more than `string`."""

from __future__ import annotations

import hashlib
import io
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from PIL import Image

from tests.http_server import LiveServer
from tests.integration.api.conftest import CLAIM

TEXT_MEDIA = ("text/event-stream", "text/plain")


class Truth:
    """Checks replies against the OpenAPI document and remembers which (operation, status) it has seen."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.seen: dict[tuple[str, str], set[int]] = defaultdict(set)
        self._templates = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path) for path in spec["paths"]
        ]

    def template(self, path: str) -> str:
        # the most specific template wins (/api/definitions/{key} must not swallow a literal path)
        matches = [t for pattern, t in self._templates if pattern.match(path)]
        assert matches, f"{path} is not in the OpenAPI"
        return min(matches, key=lambda t: t.count("{"))

    def check(self, reply: httpx.Response, *, body: bool = True) -> httpx.Response:
        """Assert that reply's status, media type and body are what the OpenAPI says for its operation."""
        method = reply.request.method.lower()
        template = self.template(reply.request.url.path)
        operation = self.spec["paths"][template].get(method)
        assert operation is not None, f"{method.upper()} {template} is not documented"
        documented = operation["responses"].get(str(reply.status_code))
        where = f"{method.upper()} {reply.request.url.path} -> {reply.status_code}"
        assert documented is not None, f"{where}: status not documented ({sorted(operation['responses'])})"
        media = reply.headers.get("content-type", "").split(";")[0].strip()
        content = documented.get("content", {})
        types = {key.split(";")[0].strip(): value for key, value in content.items()}
        assert media in types, f"{where}: {media} not documented ({sorted(types)})"
        if body and media.endswith("json"):
            schema = {"$ref": _pointer(template, method, reply.status_code, next(
                key for key in content if key.split(";")[0].strip() == media)), **self.spec}
            errors = sorted(Draft202012Validator(schema).iter_errors(reply.json()), key=lambda e: e.path)
            assert not errors, f"{where}: {errors[0].message} at {list(errors[0].absolute_path)}\n{reply.text[:500]}"
        self.seen[(method.upper(), template)].add(reply.status_code)
        return reply


def _pointer(template: str, method: str, status: int, media: str) -> str:
    def escape(part: str) -> str:
        return part.replace("~", "~0").replace("/", "~1")

    return f"#/paths/{escape(template)}/{method}/responses/{status}/content/{escape(media)}/schema"


@pytest.fixture(scope="module")
def spec(server: LiveServer) -> dict[str, Any]:
    reply = httpx.get(f"{server.url}/openapi.json")
    assert reply.status_code == 200
    document: dict[str, Any] = reply.json()
    return document


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def test_every_operation_documents_its_parameters_and_replies(spec: dict[str, Any]) -> None:
    """Path parameters declared, success replies with a real schema (text only for text media), errors as
    problem+json, so a route typed `string` or missing its path parameters fails here."""
    problems: list[str] = []
    for method, path, operation in _operations(spec):
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        if set(re.findall(r"\{([^}]+)\}", path)) != declared:
            problems.append(f"{method} {path}: path parameters declared {sorted(declared)}")
        successes = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        if not successes:
            problems.append(f"{method} {path}: no success reply documented")
        for status, response in operation["responses"].items():
            for media, body in response.get("content", {}).items():
                schema = body.get("schema", {})
                if media.startswith(TEXT_MEDIA):
                    continue
                if not schema or schema == {"type": "string"}:
                    problems.append(f"{method} {path} {status} {media}: schema {schema}")
                if int(status) >= 400 and not (path == "/readyz" and status == "503") and (
                        media != "application/problem+json" or schema != {"$ref": "#/components/schemas/Problem"}):
                    problems.append(f"{method} {path} {status}: {media} {schema}, not a Problem")
        for status in ("401", "422") if path.startswith("/api/") else ():
            if status not in operation["responses"]:
                problems.append(f"{method} {path}: {status} not documented")
    assert spec["paths"]["/api/events"]["get"]["responses"]["200"]["content"].keys() == {"text/event-stream"}
    assert not problems, "\n".join(problems)


def check_operations(server: LiveServer, admin: httpx.Client, check: Any) -> None:
    """Every incident and process-instance route answering 2xx (and its reply checked)."""
    from tests.integration.api.test_operations_api import DEFINITION, MODEL, open_incident

    assert server.platform.processes is not None and server.platform.processes.wait_ready(60)
    admin.post("/api/processes", json={"files": [{"name": "ops.bpmn", "content": MODEL}]})
    check(admin.post("/api/definitions", json=DEFINITION))
    cases = [check(admin.post("/api/cases", json={"definition_key": DEFINITION["key"], "title": "Ops",
                                                  "data": {"amount": 1}})).json()["id"] for _ in range(3)]
    first, second, third = (open_incident(admin, case) for case in cases)
    check(admin.get("/api/incidents", params={"state": "open", "limit": 1}))
    check(admin.get(f"/api/incidents/{first['id']}"))
    check(admin.get("/api/process-instances", params={"has_incident": True}))
    check(admin.get(f"/api/process-instances/{first['instance_id']}"))
    check(admin.post(f"/api/process-instances/{first['instance_id']}/variables", json={"variables": {"amount": 2}}))
    check(admin.post(f"/api/incidents/{first['id']}/retry", json={"variables": {"amount": 5000}}))
    check(admin.post(f"/api/incidents/{second['id']}/cancel", json={"reason": "a test"}))
    check(admin.post(f"/api/process-instances/{third['instance_id']}/cancel", json={}))
    check(admin.post(f"/api/process-instances/{third['instance_id']}/jobs/Gate/retry", json={}))  # 409
    # a job whose command the case refuses (a queue its definition lacks): an uncaught BPMN error, retried
    check(admin.post("/api/definitions", json={**DEFINITION, "key": "ops-no-queue", "queues": []}))
    failing = check(admin.post("/api/cases", json={"definition_key": "ops-no-queue", "title": "Ops",
                                                   "data": {"amount": 5000}})).json()["id"]
    job = open_incident(admin, failing)
    check(admin.post(f"/api/process-instances/{job['instance_id']}/jobs/{job['element_id']}/retry", json={}))
    requests = [str(p.event.aggregate_id) for p in server.platform.store.read(0, 1_000_000)
                if type(p.event).__name__ == "ProcessOperationRequested"]
    check(admin.get(f"/api/process-operations/{requests[0]}"))  # what became of a request (done)
    check(admin.get(f"/api/process-operations/{requests[-2]}"))  # refused (the 409 above)


def check_deployments(admin: httpx.Client, alice: httpx.Client, check: Any) -> None:
    """The process deployment routes: deployed (200), partly refused (207), refused (422), listed, read back."""
    model = ('<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions '
             'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Defs" targetNamespace="http://x">'
             '<bpmn:process id="truth-process" isExecutable="true">'
             '<bpmn:startEvent id="Begin"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>'
             '<bpmn:sequenceFlow id="F1" sourceRef="Begin" targetRef="Finish" />'
             '<bpmn:endEvent id="Finish"><bpmn:incoming>F1</bpmn:incoming></bpmn:endEvent>'
             '</bpmn:process></bpmn:definitions>')
    check(admin.post("/api/processes", json={"files": [{"name": "truth.bpmn", "content": model}]}))  # 200
    check(admin.post("/api/processes", files=[("files", ("truth.bpmn", model.encode())),
                                              ("files", ("bad.bpmn", b"<nope"))]))  # 207
    check(admin.post("/api/processes", json={"files": [{"name": "bad.bpmn", "content": "<nope"}]}))  # 422
    check(admin.get("/api/processes"))
    check(admin.get("/api/processes/truth-process/versions/1"), body=False)
    check(admin.get("/api/processes/truth-process/versions/2"))  # 404
    check(alice.get("/api/processes"))  # 403


def check_messages(admin: httpx.Client, alice: httpx.Client, check: Any) -> None:
    """POST /api/messages: buffered (201), a live message id again (409), a bad TTL (422), not allowed (403)."""
    message = {"name": "truth-message", "correlation_key": "t-1", "time_to_live": "PT1M", "message_id": "m-1"}
    published = check(admin.post("/api/messages", json=message)).json()
    assert published["buffered"] is True
    check(admin.get(f"/api/messages/{published['message_key']}"))
    check(admin.post("/api/messages", json=message))  # 409
    check(admin.post("/api/messages", json={**message, "time_to_live": "soon"}))  # 422
    check(alice.post("/api/messages", json=message))  # 403


def check_signals(admin: httpx.Client, alice: httpx.Client, check: Any) -> None:
    """POST /api/signals: broadcast (201), bad input (422), not allowed (403)."""
    check(admin.post("/api/signals", json={"name": "truth-signal", "variables": {"a": 1}}))
    check(admin.post("/api/signals", json={"name": ""}))  # 422
    check(alice.post("/api/signals", json={"name": "truth-signal"}))  # 403


def test_real_replies_match_the_documented_schemas(server: LiveServer, spec: dict[str, Any]) -> None:
    truth = Truth(spec)
    check = truth.check
    url = server.url
    with server.client("admin", ("admin",)) as admin, server.client("alice", ("caseworker",)) as alice, \
            server.client("sue", ("supervisor",)) as sue, httpx.Client(base_url=url, timeout=30) as anonymous:
        # reference data and definitions
        check(admin.post("/api/definitions", json={**CLAIM, "key": "truth", "name": "Truth"}))
        check(admin.post("/api/queues", json={"key": "claims-team", "name": "Claims team"}))
        check(admin.post("/api/record-types", json={"key": "vendor", "name": "Vendor", "schema": {"type": "object"}}))
        check(admin.post("/api/record-types/vendor/records", json={"key": "v1", "data": {"city": "Lyon"}}))
        check(admin.post("/api/record-types/vendor/records", json={"key": "v2", "data": {}}))
        check(admin.post("/api/record-types/vendor/records/v2/remove", json={"reason": "duplicate"}))
        # a case through its life
        opened = check(alice.post("/api/cases", json={"definition_key": "truth", "title": "Flood",
                                                      "data": {"amount": 10}})).json()
        case = opened["id"]
        check(alice.post(f"/api/cases/{case}/data", json={"patch": {"category": "water"}}))
        check(alice.post(f"/api/cases/{case}/title", json={"title": "Flood in the cellar"}))
        check(alice.post(f"/api/cases/{case}/stage", json={"stage": "assessment"}))
        check(sue.post(f"/api/cases/{case}/assign", json={"assignee": "alice"}))
        check(sue.post(f"/api/cases/{case}/unassign", json={}))
        check(sue.post(f"/api/cases/{case}/queue", json={"queue": "claims-team"}))
        comment = check(alice.post(f"/api/cases/{case}/comments", json={"body": "called the client"})).json()
        check(alice.post(f"/api/cases/{case}/comments/{comment['comment_id']}/edit", json={"body": "called them"}))
        check(alice.post(f"/api/cases/{case}/comments/{comment['comment_id']}/delete", json={"reason": "typo"}))
        task = check(alice.post(f"/api/cases/{case}/tasks", json={
            "title": "Check the meter", "form_schema": {"type": "object"}, "due_at": "2030-01-01T00:00:00Z"})).json()
        other = check(alice.post(f"/api/cases/{case}/tasks", json={"title": "Call back"})).json()
        check(alice.post(f"/api/tasks/{task['id']}/claim", json={}))
        check(alice.post(f"/api/tasks/{task['id']}/unclaim", json={}))
        check(sue.post(f"/api/tasks/{task['id']}/priority", json={"priority": 80}))
        check(sue.post(f"/api/tasks/{task['id']}/assign", json={"assignee": "alice"}))
        check(alice.post(f"/api/tasks/{task['id']}/complete", json={"data": {"reading": 42}}))
        check(sue.post(f"/api/tasks/{other['id']}/cancel", json={"reason": "not needed"}))
        batch = check(alice.post("/api/commands", json={"commands": [
            {"type": "AddComment", "case_id": case, "body": "batched"},
            {"type": "MoveCaseToStage", "case_id": case, "stage": "nowhere"},
        ]})).json()
        assert batch["results"][1]["status"] == 422  # a refusal inside the batch is a Problem item
        check(sue.post(f"/api/cases/{case}/close", json={"reason": "paid", "resolution": "approved"}))
        check(sue.post(f"/api/cases/{case}/reopen", json={"reason": "appeal"}))
        check(sue.post(f"/api/cases/{case}/close", json={"reason": "paid again"}))
        check(admin.post(f"/api/cases/{case}/archive", json={"reason": "done"}))
        # a document through its life (local storage: the upload and download routes are the API's own)
        open_case = check(alice.post("/api/cases", json={"definition_key": "truth", "title": "Papers",
                                                         "data": {"amount": 1}})).json()["id"]
        page = io.BytesIO()
        Image.new("RGB", (60, 80), "white").save(page, "PDF")  # a real PDF: the worker draws its thumbnail
        data = page.getvalue()
        ticket = check(alice.post(f"/api/cases/{open_case}/uploads", json={
            "filename": "a.pdf", "content_type": "application/pdf", "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest()})).json()
        check(anonymous.put(ticket["url"], content=data))
        doc = f"/api/cases/{open_case}/documents/{ticket['document_id']}"
        check(alice.post(f"{doc}/uploads/{ticket['upload_id']}/confirm"))
        check(alice.post(f"{doc}/rename", json={"filename": "b.pdf"}))
        check(sue.post(f"{doc}/legal-hold", json={"reason": "audit"}))
        check(alice.post(f"{doc}/remove", json={}))  # 409, held
        unknown_id = str(uuid.uuid4())
        check(sue.post(f"{doc}/legal-hold/release", json={}))
        done = check(alice.post(f"/api/cases/{open_case}/uploads", json={
            "filename": "x.exe", "content_type": "nonsense", "size": 1, "sha256": "ab" * 32}))  # 422
        assert done.status_code == 422
        check(alice.get(f"/api/cases/{open_case}/documents", params={"wait_for": ticket["position"] + 4}))
        check(alice.get(doc))
        link = check(alice.get(f"{doc}/download")).json()
        check(anonymous.get(link["url"]), body=False)
        check(alice.get(f"{doc}/preview"), body=False)  # 404 until the worker made it, then a PNG
        deadline = time.monotonic() + 30
        while alice.get(doc).json()["versions"][0]["preview"] is None and time.monotonic() < deadline:
            time.sleep(0.1)
        check(alice.get(f"{doc}/preview"), body=False)
        check(anonymous.get(link["url"].replace("signature=", "signature=0")))  # 403
        check(alice.post(f"{doc}/remove", json={"reason": "done"}))
        # e-mail: a definition with a mailbox, a message taken in by the ingester, a reply, a compose, the quarantine
        mailbox = "truth@casestream.test"
        mailed = check(admin.post("/api/definitions", json={
            **CLAIM, "key": "mailed", "name": "Mailed", "schema": {"type": "object"},
            "mail": {"address": mailbox, "templates": {"thanks": {"subject": "Thanks", "body": "{{ case.number }}"}}},
        })).json()
        assert server.platform.runner.wait(mailed["position"], 10) and server.platform.mail is not None
        ingester = server.platform.mail.ingester
        taken = ingester.ingest(b"From: ann@casestream.test\r\nTo: truth@casestream.test\r\nSubject: Help\r\n"
                                b"Message-ID: <truth-" + uuid.uuid4().hex.encode() + b"@casestream.test>\r\n\r\n"
                                b"Please help.\r\n", mailbox, "acme")
        assert taken.status == "received", taken
        ingester.ingest(b"no headers at all", mailbox, "acme")  # quarantined: no sender
        messages = f"/api/cases/{taken.case_id}/messages"
        check(alice.get(messages, params={"wait_for": server.platform.store.max_position()}))
        check(alice.get(f"{messages}/{taken.message}"))
        check(alice.post(f"{messages}/{taken.message}/reply", json={"template": "thanks"}))
        check(alice.post(messages, json={"subject": "Hello", "body": "news", "to": ["ann@casestream.test"]}))
        check(alice.post(messages, json={"subject": "Hello"}))  # 422: no body, nobody to send to
        check(alice.post(f"{messages}/{unknown_id}/reply", json={"body": "x"}))  # 404
        check(admin.get("/api/mail/quarantine", params={"status": "quarantined",
                                                        "wait_for": server.platform.store.max_position()}))
        check(alice.get("/api/mail/quarantine"))  # 403
        position = batch["position"]

        # every query, read after the writes (wait_for)
        waited = {"wait_for": position}
        for path, params in [
            ("/api/me", {}), ("/api/cases", {**waited, "limit": 1}), (f"/api/cases/{case}", waited),
            (f"/api/cases/{case}/timeline", waited), (f"/api/cases/{case}/history", {"version": 2}),
            (f"/api/cases/{case}/diff", {"from": 1, "to": 4}), ("/api/kanban/truth", waited), ("/api/counts", waited),
            ("/api/definitions", waited), ("/api/definitions/truth", waited), ("/api/queues", {}),
            ("/api/record-types", {}), ("/api/record-types/vendor/records", {}), ("/api/tasks", {"view": "all"}),
            (f"/api/tasks/{task['id']}", waited), ("/api/audit", {"limit": 2}),
        ]:
            check(admin.get(path, params=params))
        page = check(admin.get("/api/cases", params={"limit": 1})).json()
        if page["next_cursor"]:
            check(admin.get("/api/cases", params={"limit": 1, "cursor": page["next_cursor"]}))
        for path in ["/healthz", "/readyz", "/metrics", "/auth/config", "/.well-known/openid-configuration",
                     "/.well-known/jwks.json"]:
            check(anonymous.get(path))
        check(anonymous.post("/auth/token", data={"grant_type": "password", "username": "bob",
                                                  "password": "casestream"}))
        with admin.stream("GET", "/api/events", params={"last_event_id": position}) as feed:
            check(feed, body=False)

        # operations: incidents of a lifecycle whose gateway matches nothing, retried and cancelled; instances
        check_operations(server, admin, check)

        check_deployments(admin, alice, check)
        check_messages(admin, alice, check)
        check_signals(admin, alice, check)

        # refusals, each as a documented problem
        unknown = str(uuid.uuid4())
        check(anonymous.get("/api/cases"))  # 401
        check(anonymous.post(f"/api/cases/{case}/title", json={"title": "x"}))  # 401
        check(anonymous.get("/api/events"))  # 401
        check(anonymous.post("/auth/token", data={"grant_type": "password", "username": "bob", "password": "x"}))
        check(anonymous.post("/auth/token", data={"grant_type": "magic", "username": "bob", "password": "x"}))
        check(alice.post("/api/definitions", json={**CLAIM, "key": "mine"}))  # 403
        check(alice.get("/api/audit"))  # 403
        for path in [f"/api/cases/{unknown}", f"/api/cases/{unknown}/timeline",
                     f"/api/cases/{unknown}/history?version=1", f"/api/cases/{unknown}/diff?from=1&to=2",
                     "/api/kanban/nope", "/api/definitions/nope", f"/api/tasks/{unknown}"]:
            check(admin.get(path))  # 404
        check(alice.post(f"/api/cases/{unknown}/title", json={"title": "x"}))  # 404
        check(alice.post(f"/api/tasks/{unknown}/claim", json={}))  # 404
        check(alice.post("/api/cases", json={"definition_key": "nope", "title": "x"}))  # 404
        fresh = check(alice.post("/api/cases", json={"definition_key": "truth", "title": "Stale",
                                                     "data": {"amount": 1}})).json()
        check(alice.post(f"/api/cases/{fresh['id']}/title", json={"title": "y", "expected_version": 9}))  # 409
        check(alice.post(f"/api/cases/{fresh['id']}/data", json={"patch": {"amount": -1}}))  # 422
        check(alice.post("/api/cases/not-a-uuid/title", json={"title": "x"}))  # 422, path parameter
        check(alice.post(f"/api/tasks/{unknown}/priority", json={"priority": True}))  # 422, strict int
        check(admin.get(f"/api/cases/{case}/history"))  # 422, neither version nor as_of
        check(admin.get(f"/api/cases/{case}/diff", params={"from": 3, "to": 1}))  # 422
        check(admin.get("/api/cases", params={"limit": 0}))  # 422
        check(admin.get("/api/tasks", params={"view": "everything"}))  # 422
        check(admin.get("/api/me", params={"wait_for": 10**12}))  # 422, a position never written
        check(admin.get("/api/audit", params={"since": "9999-12-31T23:59:59-14:00"}))  # 422
        check(admin.get("/api/events", params={"last_event_id": 10**12}))  # 422
        check(alice.post("/api/cases", content=b"{not json", headers={"Content-Type": "application/json"}))  # 400
        check(alice.post("/api/cases", content=b'{"title": NaN}', headers={"Content-Type": "application/json"}))
        check(alice.get("/api/cases", headers={"X-Correlation-ID": "not an id"}))  # 400
        check(alice.post("/api/commands", json={"commands": [{"type": "AddComment", "case_id": case,
                                                              "body": "x" * 70_000}]}))  # 413
        check(alice.get("/api/me", headers={"X-Padding": "x" * 20_000}))  # 431
        check(anonymous.get("/healthz", headers={"X-Padding": "x" * 20_000}))  # 431

    missing = [f"{m} {p}" for m, p, op in _operations(spec)
               if not any(200 <= s < 300 for s in truth.seen.get((m, p), ()))]
    assert not missing, f"operations never answered 2xx here: {missing}"
    statuses = {s for seen in truth.seen.values() for s in seen}
    assert {400, 401, 403, 404, 409, 413, 422, 431} <= statuses, sorted(statuses)
