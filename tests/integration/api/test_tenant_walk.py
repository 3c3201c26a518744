"""The tenant walk: every route of the served OpenAPI, called by someone who must not see or change the data.

1. A user of tenant B (an admin there, even in a group of the same name as A's) against tenant A's ids.
2. A supervisor of tenant A outside the `read_groups` of a confidential definition, against its case.

Every GET (reads, lists, search, counts, kanban, timeline, history, diff, tasks, reference data, the SSE stream
with a Last-Event-ID: 0 replay and a live event) finds nothing of the protected data; every POST (each command
route and the batch) changes nothing of it. Routes come from `app.openapi()`: a route this file does not know how
to call fails the test, so a new route is walked from the day it is added.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from casestream.settings import Settings
from tests.http_server import LiveServer, live_server
from tests.integration.api.conftest import CLAIM

AUDIT_EVENTS = frozenset({"CommandDenied", "CommandDenialsRepeated"})  # denials may be recorded (commands/audit.py)
SSE_SECONDS = 2.0
# routes that hold no tenant data (discovery, keys, health, metrics, sign-in)
PUBLIC_GETS = frozenset({"/metrics", "/.well-known/openid-configuration", "/.well-known/jwks.json", "/auth/config",
                         "/healthz", "/readyz"})
STORAGE = "/storage/{tenant}/{case_id}/{area}/{name}"  # the local storage's signed-URL route
CONFIDENTIAL_ACCESS = {"read_groups": ["fraud-team"]}


def walk_process(name: str) -> str:
    """A deployable BPMN file (start, end) whose process name is `name`."""
    return ('<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions '
            'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Defs" targetNamespace="http://x">'
            f'<bpmn:process id="walk-process" name="{name}" isExecutable="true">'
            '<bpmn:startEvent id="Begin"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>'
            '<bpmn:sequenceFlow id="F1" sourceRef="Begin" targetRef="Finish" />'
            '<bpmn:endEvent id="Finish"><bpmn:incoming>F1</bpmn:incoming></bpmn:endEvent>'
            '</bpmn:process></bpmn:definitions>')


@dataclass
class Protected:
    """What the walker must neither see nor change: path parameters to use, and strings that must not show."""

    params: dict[str, str]
    secrets: set[str]
    tenant: str
    protected: frozenset[str]  # the path parameters naming protected data (a route with one must change nothing)
    aggregates: set[str] = field(default_factory=set)  # ids whose events must not change
    definition: str | None = None  # no case, task or definition of this key may be stored by the walker

    def named_by(self, template: str) -> bool:
        """Whether the route names protected data (the batch always does: it targets the protected case)."""
        if template == "/api/commands":
            return True
        if template == "/api/definitions/{key}":
            return "definition_key" in self.protected
        return any("{" + name + "}" in template for name in self.protected)

    def touched_by(self, event: Any) -> bool:
        """Whether a stored event is of protected data."""
        key = getattr(event, "definition_key", None) or (getattr(event, "spec", None) or {}).get("key")
        return str(event.aggregate_id) in self.aggregates or (self.definition is not None and key == self.definition)


def _token(server: LiveServer, user: str, tenant: str, roles: tuple[str, ...], groups: tuple[str, ...] = ()) -> str:
    issuer = server.platform.issuer
    assert issuer is not None
    return issuer.issue(user, tenant, roles, groups=groups)


def _client(server: LiveServer, user: str, tenant: str, roles: tuple[str, ...],
            groups: tuple[str, ...] = ()) -> httpx.Client:
    headers = {"Authorization": f"Bearer {_token(server, user, tenant, roles, groups)}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def _ok(reply: httpx.Response) -> dict[str, Any]:
    assert reply.status_code in (200, 201), reply.text
    body: dict[str, Any] = reply.json()
    return body


@dataclass
class World:
    server: LiveServer
    secret: str
    tenant_a: Protected
    confidential: Protected
    regular_case: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data: Path = tmp_path_factory.mktemp("walk")
    # no outbox: its background sends would store events while the walk checks that a request stored none
    with live_server(Settings(data_dir=data, policy_engine="embedded", mail_outbox=False)) as server:
        yield _populate(server)


def _populate(server: LiveServer) -> World:
    secret = f"acme-secret-{uuid.uuid4().hex[:10]}"
    with _client(server, "ada", "acme", ("admin",), ("fraud-team",)) as admin, \
            _client(server, "fay", "acme", ("caseworker",), ("fraud-team",)) as member:
        _ok(admin.post("/api/definitions", json={**CLAIM, "mail": {"address": "claims@walk.test"}}))
        fraud = {**CLAIM, "key": "fraud", "name": f"Fraud {secret}", "number_prefix": "FRD",
                 "access": CONFIDENTIAL_ACCESS, "mail": {"address": "fraud@walk.test"}}
        _ok(admin.post("/api/definitions", json=fraud))
        _ok(admin.post("/api/queues", json={"key": "vault", "name": f"Vault {secret}"}))
        _ok(admin.post("/api/record-types", json={"key": "vendor", "name": f"Vendor {secret}",
                                                  "schema": {"type": "object"}}))
        _ok(admin.post("/api/record-types/vendor/records", json={"key": "v1", "data": {"name": f"Glazier {secret}"}}))
        _ok(admin.post("/api/processes", json={"files": [{"name": "walk.bpmn",
                                                          "content": walk_process(f"Walk {secret}")}]}))

        def case_with_everything(client: httpx.Client, definition: str, tag: str) -> dict[str, str]:
            case = _ok(client.post("/api/cases", json={"definition_key": definition, "title": f"{tag} {secret}",
                                                       "data": {"amount": 100}}))
            _ok(client.post(f"/api/cases/{case['id']}/data", json={"patch": {"amount": 250}}))
            _ok(client.post(f"/api/cases/{case['id']}/comments", json={"body": f"{tag} note {secret}"}))
            task = _ok(client.post(f"/api/cases/{case['id']}/tasks", json={"title": f"{tag} task {secret}",
                                                                            "assignee": "fay"}))
            _ok(client.get(f"/api/tasks/{task['id']}", params={"wait_for": task["position"]}))
            document_id, upload_id = _document(client, case["id"], f"{tag} file {secret}.txt")
            mail = _ok(client.post(f"/api/cases/{case['id']}/messages", json={
                "subject": f"{tag} mail {secret}", "body": f"{tag} body {secret}", "to": ["someone@walk.test"]}))
            return {"case_id": case["id"], "comment_id": _comment_id(client, case["id"]), "task_id": task["id"],
                    "document_id": document_id, "upload_id": upload_id, "message_id": mail["id"]}

        regular = case_with_everything(admin, "claim", "regular")
        regular.update(_incident(server, admin))
        confidential = case_with_everything(member, "fraud", "confidential")
    definition_ids = {d["id"] for d in _definitions_in_store(server)}
    tenant_a = Protected(
        params={**regular, "type_key": "vendor", "record_key": "v1", "definition_key": "claim"},
        secrets={secret, *regular.values(), *confidential.values()},
        tenant="acme",
        # type, record and definition keys are names in the caller's own tenant: B may have its own "vendor"
        protected=frozenset({"case_id", "comment_id", "task_id", "document_id", "upload_id", "message_id",
                             "incident_id", "instance_id", "request_id", "message_key"}),
    )
    conf = Protected(
        params={**confidential, "incident_id": regular["incident_id"], "instance_id": regular["instance_id"],
                "request_id": regular["request_id"], "message_key": regular["message_key"],
                "type_key": "vendor", "record_key": "v1", "definition_key": "fraud"},
        secrets={f"confidential {secret}", f"confidential note {secret}", f"confidential task {secret}",
                 f"confidential mail {secret}", f"Fraud {secret}", *confidential.values()},
        tenant="acme",
        protected=frozenset({"case_id", "comment_id", "task_id", "document_id", "upload_id", "message_id",
                             "definition_key"}),
        aggregates={confidential["case_id"], confidential["task_id"], confidential["document_id"],
                    confidential["message_id"], *definition_ids},
        definition="fraud",
    )
    return World(server, secret, tenant_a, conf, regular["case_id"])


def _document(client: httpx.Client, case_id: str, filename: str) -> tuple[str, str]:
    """A document attached through the upload flow, and a second upload of it left pending: their ids."""
    data = f"contents of {filename}\n".encode()
    declared = {"filename": filename, "content_type": "text/plain", "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest()}
    ticket = _ok(client.post(f"/api/cases/{case_id}/uploads", json=declared))
    assert httpx.put(ticket["url"], content=data).status_code == 200
    _ok(client.post(f"/api/cases/{case_id}/documents/{ticket['document_id']}/uploads/{ticket['upload_id']}/confirm"))
    pending = _ok(client.post(f"/api/cases/{case_id}/uploads",
                              json={**declared, "document_id": ticket["document_id"]}))
    assert httpx.put(pending["url"], content=data).status_code == 200
    return str(ticket["document_id"]), str(pending["upload_id"])


def _incident(server: LiveServer, admin: httpx.Client) -> dict[str, str]:
    """An open process incident of tenant A (a lifecycle whose gateway matches nothing): its and its instance's id."""
    from tests.integration.api.test_operations_api import DEFINITION, MODEL

    assert server.platform.processes is not None and server.platform.processes.wait_ready(60)
    _ok(admin.post("/api/processes", json={"files": [{"name": "ops.bpmn", "content": MODEL}]}))
    _ok(admin.post("/api/definitions", json=DEFINITION))
    case = _ok(admin.post("/api/cases", json={"definition_key": DEFINITION["key"], "title": "ops", "data": {}}))
    deadline = time.monotonic() + 30
    while not (found := admin.get("/api/incidents", params={"case_id": case["id"]}).json()["items"]):
        assert time.monotonic() < deadline, "no incident was raised"
        time.sleep(0.05)
    # an operator's request and a published message of tenant A, each with its own GET
    _ok(admin.post(f"/api/process-instances/{found[0]['instance_id']}/variables", json={"variables": {"note": 1}}))
    request_id = next(str(p.event.aggregate_id) for p in server.platform.store.read(0, 1_000_000)
                      if type(p.event).__name__ == "ProcessOperationRequested")
    message = _ok(admin.post("/api/messages", json={"name": "walk-message", "correlation_key": case["id"]}))
    return {"incident_id": found[0]["id"], "instance_id": found[0]["instance_id"], "request_id": request_id,
            "message_key": message["message_key"]}


def _comment_id(client: httpx.Client, case_id: str) -> str:
    case = _ok(client.get(f"/api/cases/{case_id}"))
    return str(case["comments"][-1]["id"])


def _definitions_in_store(server: LiveServer) -> list[dict[str, Any]]:
    return [d for d in server.platform.documents.find(_query("definitions", "acme")) if d["key"] == "fraud"]


def _query(collection: str, tenant: str) -> Any:
    from projections.ports import Query

    return Query(collection, tenant, {}, sort="key", descending=False, limit=1000)


# --- how each route is called -------------------------------------------------------------------------------------

def _path(template: str, p: Protected) -> str:
    """The route with the protected ids filled in ({key} is the record key under record types, else a definition)."""
    record = template.startswith("/api/record-types/")
    if template == STORAGE:  # the protected upload's object, without a signature
        return f"/storage/{p.tenant}/{p.params['case_id']}/uploads/{p.params['upload_id']}"
    values = {"case_id": p.params["case_id"], "comment_id": p.params["comment_id"], "task_id": p.params["task_id"],
              "document_id": p.params["document_id"], "upload_id": p.params["upload_id"],
              "message_id": p.params["message_id"],
              "type_key": p.params["type_key"], "definition_key": p.params["definition_key"],
              "process_id": "walk-process", "version": "1",
              "incident_id": p.params["incident_id"], "instance_id": p.params["instance_id"], "element_id": "Gate",
              "request_id": p.params["request_id"], "message_key": p.params["message_key"],
              "key": p.params["record_key"] if record else p.params["definition_key"]}
    path = template
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"route {template}: a path parameter this walk cannot fill"
    return path


def _get_params(template: str, p: Protected, secret: str) -> dict[str, Any]:
    known: dict[str, dict[str, Any]] = {
        "/api/cases": {"q": secret},
        "/api/cases/{case_id}/history": {"version": 1},
        "/api/cases/{case_id}/diff": {"from": 1, "to": 2},
        "/api/tasks": {"view": "all", "case_id": p.params["case_id"]},
        "/api/counts": {"definition_key": p.params["definition_key"]},
        "/api/audit": {},
        "/api/me": {},
        "/api/definitions": {}, "/api/queues": {}, "/api/record-types": {},
        "/api/record-types/{type_key}/records": {}, "/api/cases/{case_id}": {},
        "/api/cases/{case_id}/timeline": {}, "/api/kanban/{definition_key}": {}, "/api/definitions/{key}": {},
        "/api/tasks/{task_id}": {},
        "/api/cases/{case_id}/documents": {"removed": True}, "/api/cases/{case_id}/documents/{document_id}": {},
        "/api/cases/{case_id}/documents/{document_id}/download": {}, STORAGE: {},
        "/api/cases/{case_id}/documents/{document_id}/preview": {},
        "/api/cases/{case_id}/messages": {}, "/api/cases/{case_id}/messages/{message_id}": {},
        "/api/mail/quarantine": {},
        "/api/incidents": {}, "/api/incidents/{incident_id}": {}, "/api/process-instances": {},
        "/api/process-instances/{instance_id}": {},
        "/api/process-operations/{request_id}": {}, "/api/messages/{message_key}": {},
        "/api/processes": {}, "/api/processes/{process_id}/versions/{version}": {},
    }
    assert template in known or template in PUBLIC_GETS, f"GET {template}: the tenant walk does not know this route"
    return known.get(template, {})


def _post_body(template: str, p: Protected) -> dict[str, Any]:
    case_id, task_id = p.params["case_id"], p.params["task_id"]
    known: dict[str, dict[str, Any]] = {
        "/api/definitions": {**CLAIM, "key": p.params["definition_key"], "name": "taken over"},
        "/api/queues": {"key": "vault", "name": "taken over"},
        "/api/record-types": {"key": "vendor", "name": "taken over", "schema": {"type": "object"}},
        "/api/record-types/{type_key}/records": {"key": "v1", "data": {"name": "taken over"}},
        "/api/record-types/{type_key}/records/{key}/remove": {"reason": "taken over"},
        "/api/cases": {"definition_key": p.params["definition_key"], "title": "walker", "data": {"amount": 1}},
        "/api/cases/{case_id}/data": {"patch": {"amount": 1}},
        "/api/cases/{case_id}/title": {"title": "taken over"},
        "/api/cases/{case_id}/stage": {"stage": "assessment"},
        "/api/cases/{case_id}/assign": {"assignee": "walker"},
        "/api/cases/{case_id}/unassign": {},
        "/api/cases/{case_id}/queue": {"queue": "fraud"},
        "/api/cases/{case_id}/comments": {"body": "walker"},
        "/api/cases/{case_id}/comments/{comment_id}/edit": {"body": "walker"},
        "/api/cases/{case_id}/comments/{comment_id}/delete": {"reason": "walker"},
        "/api/cases/{case_id}/close": {"reason": "walker"},
        "/api/cases/{case_id}/reopen": {"reason": "walker"},
        "/api/cases/{case_id}/archive": {"reason": "walker"},
        "/api/cases/{case_id}/tasks": {"title": "walker"},
        "/api/tasks/{task_id}/claim": {}, "/api/tasks/{task_id}/unclaim": {},
        "/api/tasks/{task_id}/complete": {"data": {}},
        "/api/tasks/{task_id}/cancel": {"reason": "walker"},
        "/api/tasks/{task_id}/priority": {"priority": 99},
        "/api/tasks/{task_id}/assign": {"assignee": "walker"},
        "/api/cases/{case_id}/uploads": {"filename": "walker.txt", "content_type": "text/plain", "size": 5,
                                                   "sha256": "ab" * 32},
        "/api/cases/{case_id}/documents/{document_id}/uploads/{upload_id}/confirm": {},
        "/api/cases/{case_id}/documents/{document_id}/rename": {"filename": "walker.txt"},
        "/api/cases/{case_id}/documents/{document_id}/remove": {"reason": "walker"},
        "/api/cases/{case_id}/documents/{document_id}/legal-hold": {"reason": "walker"},
        "/api/cases/{case_id}/documents/{document_id}/legal-hold/release": {"reason": "walker"},
        "/api/cases/{case_id}/messages": {"subject": "walker", "body": "walker", "to": ["walker@example.org"]},
        "/api/cases/{case_id}/messages/{message_id}/reply": {"body": "walker"},
        "/api/processes": {"files": [{"name": "walk.bpmn", "content": walk_process("taken over")}]},
        "/api/incidents/{incident_id}/retry": {"variables": {"amount": 5000}},
        "/api/incidents/{incident_id}/cancel": {"reason": "walker"},
        "/api/process-instances/{instance_id}/cancel": {},
        "/api/process-instances/{instance_id}/variables": {"variables": {"amount": 5000}},
        "/api/process-instances/{instance_id}/jobs/{element_id}/retry": {},
        # keyed by the protected case's id: a message never crosses tenants, whatever its key
        "/api/messages": {"name": "customer-replied", "correlation_key": case_id, "variables": {"taken": "over"}},
        # a signal reaches the broadcaster's tenant only, whatever its name
        "/api/signals": {"name": "customer-replied", "variables": {"taken": "over"}},
        "/api/commands": {"commands": [
            {"type": "AddComment", "case_id": case_id, "body": "walker"},
            {"type": "AssignCase", "case_id": case_id, "assignee": "walker"},
            {"type": "CloseCase", "case_id": case_id, "reason": "walker"},
            {"type": "ArchiveCase", "case_id": case_id, "reason": "walker"},
            {"type": "ClaimTask", "task_id": task_id},
            {"type": "CompleteTask", "task_id": task_id, "data": {}},
            {"type": "CancelTask", "task_id": task_id, "reason": "walker"},
            {"type": "CreateTask", "case_id": case_id, "title": "walker"},
        ]},
    }
    assert template in known or template == "/auth/token", f"POST {template}: the tenant walk does not know this route"
    return known.get(template, {})


# --- the checks ----------------------------------------------------------------------------------------------------

def _leaks(text: str, p: Protected) -> list[str]:
    return sorted(s for s in p.secrets if s in text)


def _events_after(server: LiveServer, position: int) -> list[Any]:
    batch, _last = server.platform.store.read_batch(position, 100_000)
    return [item.event for item in batch if type(item.event).__name__ not in AUDIT_EVENTS]


def _settle(server: LiveServer) -> None:
    """Wait until the read models hold everything stored so far (so a leak cannot hide behind lag)."""
    assert server.platform.runner.wait(server.platform.store.max_position(), 10)


def _read_stream(server: LiveServer, client: httpx.Client, during: Any) -> str:
    """The SSE stream from Last-Event-ID: 0 for SSE_SECONDS, with `during()` run once the stream is subscribed."""
    before = server.app.state.broadcaster.subscribers
    chunks: list[str] = []
    deadline = time.monotonic() + SSE_SECONDS
    timeout = httpx.Timeout(30, read=0.3)
    with client.stream("GET", "/api/events", headers={"Last-Event-ID": "0"}, timeout=timeout) as reply:
        assert reply.status_code == 200, reply.read()
        server.wait_for_subscribers(before + 1)
        during()
        lines = reply.iter_lines()
        while time.monotonic() < deadline:
            try:
                chunks.append(next(lines))
            except httpx.ReadTimeout:
                break
            except StopIteration:
                break
    return "\n".join(chunks)


def _walk(world: World, walker: httpx.Client, p: Protected, *, only_own_tenant: str | None,
          sees_tenant: bool) -> None:
    """Every route as `walker`: no protected string in any successful reply, no protected data changed.

    only_own_tenant: routes that name no protected id may store events, but only in this tenant (the walker's own);
    None: they may store nothing that touches the protected aggregates. sees_tenant: whether the walker sees the
    tenant's other cases (then a live event of one reaches its stream: the stream really was delivering)."""
    server = world.server
    paths: dict[str, dict[str, Any]] = server.app.openapi()["paths"]
    walked = 0
    for template, operations in paths.items():
        for method in operations:
            _settle(server)
            before = server.platform.store.max_position()
            path = _path(template, p)
            names_protected = p.named_by(template)
            if method == "get":
                if template == "/api/events":
                    continue  # walked below, with a live event during the stream
                reply = walker.get(path, params=_get_params(template, p, world.secret))
                assert reply.status_code < 500, f"GET {path}: {reply.status_code} {reply.text}"
                if reply.status_code < 300:
                    assert not _leaks(reply.text, p), f"GET {path} shows {_leaks(reply.text, p)}: {reply.text[:500]}"
                elif names_protected:
                    assert reply.status_code in (403, 404), f"GET {path}: {reply.status_code} {reply.text}"
            elif method == "post":
                body = _post_body(template, p)
                reply = (walker.post(path, data={"grant_type": "password", "username": "walker", "password": "x"})
                         if template == "/auth/token" else walker.post(path, json=body))
                assert reply.status_code < 500, f"POST {path}: {reply.status_code} {reply.text}"
                if template == "/api/commands":
                    assert reply.status_code == 200, reply.text
                    statuses = [r["status"] for r in reply.json()["results"]]
                    assert all(s in (403, 404) for s in statuses), f"batch answered {statuses}"
                elif names_protected:
                    assert reply.status_code in (403, 404), f"POST {path}: {reply.status_code} {reply.text}"
                _settle(server)
                stored = _events_after(server, before)
                touched = [e for e in stored if p.touched_by(e)
                           or (only_own_tenant is not None and e.meta.tenant != only_own_tenant)]
                assert not touched, f"POST {path} changed protected data: {[type(e).__name__ for e in touched]}"
                if names_protected:
                    assert not stored, f"POST {path} stored {[type(e).__name__ for e in stored]}"
            elif method == "put" and template == STORAGE:  # signed URLs only: a token opens nothing
                reply = walker.put(path, content=b"walker")
                assert reply.status_code == 403, f"PUT {path}: {reply.status_code} {reply.text}"
                assert p.params["upload_id"] not in reply.text
                _settle(server)
                assert not _events_after(server, before), f"PUT {path} stored events"
            else:
                pytest.fail(f"{method.upper()} {template}: the tenant walk does not know this method")
            walked += 1
    assert walked >= 40  # the walk really went through the API

    protected_live, regular_live = f"live-{uuid.uuid4().hex[:8]}", f"live-{uuid.uuid4().hex[:8]}"

    def live_event() -> None:
        with _client(server, "fay", "acme", ("caseworker",), ("fraud-team",)) as member:
            _ok(member.post(f"/api/cases/{p.params['case_id']}/comments", json={"body": protected_live}))
            _ok(member.post(f"/api/cases/{world.regular_case}/comments", json={"body": regular_live}))

    _settle(server)
    seen = _read_stream(server, walker, live_event)
    assert not _leaks(seen, p), f"the SSE stream shows {_leaks(seen, p)}"
    assert protected_live not in seen
    assert (regular_live in seen) == sees_tenant, seen[-2000:]


def test_a_user_of_another_tenant_finds_nothing_and_changes_nothing(world: World) -> None:
    server = world.server
    with _client(server, "mallory", "globex", ("admin",), ("fraud-team",)) as mallory:
        # a control: mallory's own tenant works for mallory
        _ok(mallory.post("/api/definitions", json={**CLAIM, "key": "globex-claim"}))
        own = _ok(mallory.post("/api/cases", json={"definition_key": "globex-claim", "title": "Mallory's own",
                                                   "data": {"amount": 1}}))
        listed = _ok(mallory.get("/api/cases", params={"wait_for": own["position"]}))
        assert [c["id"] for c in listed["items"]] == [own["id"]]
        _walk(world, mallory, world.tenant_a, only_own_tenant="globex", sees_tenant=False)


def test_a_user_outside_a_confidential_definitions_group_finds_nothing_of_it(world: World) -> None:
    server = world.server
    with _client(server, "oscar", "acme", ("supervisor",), ("claims-team",)) as oscar:
        # a control: the same user sees the tenant's other cases, so the walk below is not blind
        listed = _ok(oscar.get("/api/cases", params={"q": world.secret}))
        assert [c["id"] for c in listed["items"]] == [world.regular_case]
        definitions = oscar.get("/api/definitions")
        assert definitions.status_code == 200 and [d["key"] for d in definitions.json()] == ["claim", "ops-check"]
        _walk(world, oscar, world.confidential, only_own_tenant=None, sees_tenant=True)


def test_a_member_of_the_group_sees_the_confidential_case(world: World) -> None:
    """The other side of the walk: the filters hide the confidential case from outsiders only."""
    with _client(world.server, "fay", "acme", ("caseworker",), ("fraud-team",)) as member:
        case_id = world.confidential.params["case_id"]
        assert _ok(member.get(f"/api/cases/{case_id}"))["definition_key"] == "fraud"
        found = _ok(member.get("/api/cases", params={"q": f"confidential {world.secret}"}))
        assert [c["id"] for c in found["items"]] == [case_id]
        tasks = _ok(member.get("/api/tasks", params={"view": "all", "case_id": case_id}))
        assert [t["id"] for t in tasks["items"]] == [world.confidential.params["task_id"]]
        assert "fraud" in _ok(member.get("/api/counts"))["definition_key"]


def test_no_role_at_all_reads_nothing(world: World) -> None:
    with _client(world.server, "nobody", "acme", ()) as nobody:
        assert _ok(nobody.get("/api/cases"))["items"] == []
        assert _ok(nobody.get("/api/tasks", params={"view": "all"}))["items"] == []
        assert nobody.get(f"/api/cases/{world.regular_case}").status_code == 404
        refused = nobody.get("/api/queues")
        assert refused.status_code == 403 and refused.headers["content-type"].startswith("application/problem+json")
