"""Roles x command routes x case states through the HTTP API of a real app, with the Rego policies evaluated in-process
(regopy) and by the OPA server: each answer is allowed or denied exactly as the README's table says.

The expected answers come from the table below, written from POLICY_CONTRACT.md / the README, never from the policy.
Allowed: the policy let the command through (2xx, or a refusal of the domain, e.g. reopening an open case: never
the `forbidden` problem). Denied: 403 `forbidden` problem+json naming the command. Hidden: the subject may not even
read the case's definition, so the case or task does not exist for them (404 `not-found`, as for a missing one).
Denied and hidden commands store nothing (the event store's last position stays where it was).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from casestream.settings import Settings
from commands import messages as m
from commands.bus import Actor
from commands.policy import Decision
from domain.errors import PolicyUnavailable
from tests.http_server import LiveServer, live_server
from tests.integration.api.conftest import CLAIM

TENANT = "acme"
ALLOW, DENY, HIDDEN = "allowed", "denied", "hidden"
SETUP = Actor("setup", TENANT, ("admin",))
AUDIT_EVENTS = frozenset({"CommandDenied", "CommandDenialsRepeated"})

# role name in the matrix -> the roles its token carries
ROLES: dict[str, tuple[str, ...]] = {
    "viewer": ("viewer",), "caseworker": ("caseworker",), "worker": ("worker",), "supervisor": ("supervisor",),
    "admin": ("admin",), "no role": (), "unknown role": ("auditor",),
}
STATES = ("open", "closed", "archived")

CASE_WORK = {  # what a caseworker (or a worker service account) may send to an OPEN case
    "UpdateCaseData", "RetitleCase", "MoveCaseToStage", "AssignCase", "UnassignCase", "QueueCase", "AddComment",
    "EditComment", "DeleteComment", "CreateTask", "CloseCase (as assignee)",
    "ClaimTask (as assignee)", "ClaimTask (as non-assignee)", "UnclaimTask (as holder)",
    "CompleteTask (as assignee)", "RequestDocumentUpload", "RenameDocument", "RemoveDocument", "ComposeEmail",
}
SUPERVISOR_ON_CLOSED = {"ReopenCase", "ArchiveCase", "AddComment", "PlaceLegalHold", "ReleaseLegalHold"}
REFERENCE = {"PublishCaseDefinition", "DefineQueue", "DefineRecordType", "SaveRecord", "RemoveRecord"}


def expected(role: str, action: str, state: str | None) -> str:
    """The README's table: may `role` send `action` to a case in `state` (None: no case involved)?"""
    if role in ("no role", "unknown role"):  # nothing at all, not even reading: what they cannot read is not there
        return HIDDEN if state is not None or action == "OpenCase" else DENY
    if role == "viewer":
        return DENY
    works = role in ("caseworker", "worker", "supervisor", "admin")
    supervises = role in ("supervisor", "admin")
    if state is None:
        if action == "OpenCase":
            return ALLOW if works else DENY
        return ALLOW if supervises and action in REFERENCE else DENY
    if state != "open":
        return ALLOW if supervises and action in SUPERVISOR_ON_CLOSED else DENY
    return ALLOW if supervises or action in CASE_WORK else DENY


# --- the commands: how to set up the target and what to POST --------------------------------------------------

@dataclass
class Target:
    """What one cell acts on: the case (and task, comment) made for it, and fresh keys for reference commands."""

    case_id: UUID | None = None
    task_id: UUID | None = None
    comment_id: str | None = None
    document_id: UUID | None = None
    key: str = ""


Send = tuple[str, dict[str, Any]]  # path, body


@dataclass(frozen=True)
class Action:
    """One row of the matrix: its setup (as an admin, through the bus) and its request."""

    name: str
    request: Callable[[Target], Send]
    on_case: bool = True
    case_assignee: str = "someone-else"  # "me": the acting user
    task: str | None = None  # None, "mine" (assigned to me), "theirs", "open" (for anyone), "held" (claimed by me)
    comment: bool = False
    document: str | None = None  # None, "attached", "held" (under legal hold)


_SHA = "ab" * 32
ACTIONS: tuple[Action, ...] = (
    Action("UpdateCaseData", lambda t: (f"/api/cases/{t.case_id}/data", {"patch": {"amount": 7}})),
    Action("RetitleCase", lambda t: (f"/api/cases/{t.case_id}/title", {"title": "Hail on the roof"})),
    Action("MoveCaseToStage", lambda t: (f"/api/cases/{t.case_id}/stage", {"stage": "assessment"})),
    Action("AssignCase", lambda t: (f"/api/cases/{t.case_id}/assign", {"assignee": "dora"})),
    Action("UnassignCase", lambda t: (f"/api/cases/{t.case_id}/unassign", {})),
    Action("QueueCase", lambda t: (f"/api/cases/{t.case_id}/queue", {"queue": "fraud"})),
    Action("AddComment", lambda t: (f"/api/cases/{t.case_id}/comments", {"body": "Called the customer."})),
    Action("EditComment", lambda t: (f"/api/cases/{t.case_id}/comments/{t.comment_id}/edit", {"body": "Edited."}),
           comment=True),
    Action("DeleteComment", lambda t: (f"/api/cases/{t.case_id}/comments/{t.comment_id}/delete", {}), comment=True),
    Action("CloseCase (as assignee)", lambda t: (f"/api/cases/{t.case_id}/close", {"reason": "paid"}),
           case_assignee="me"),
    Action("CloseCase (as non-assignee)", lambda t: (f"/api/cases/{t.case_id}/close", {"reason": "paid"})),
    Action("ReopenCase", lambda t: (f"/api/cases/{t.case_id}/reopen", {"reason": "customer called"})),
    Action("ArchiveCase", lambda t: (f"/api/cases/{t.case_id}/archive", {"reason": "retention"})),
    Action("CreateTask", lambda t: (f"/api/cases/{t.case_id}/tasks", {"title": "Call back"})),
    Action("ClaimTask (as assignee)", lambda t: (f"/api/tasks/{t.task_id}/claim", {}), task="mine"),
    Action("ClaimTask (as non-assignee)", lambda t: (f"/api/tasks/{t.task_id}/claim", {}), task="open"),
    Action("UnclaimTask (as holder)", lambda t: (f"/api/tasks/{t.task_id}/unclaim", {}), task="held"),
    Action("CompleteTask (as assignee)", lambda t: (f"/api/tasks/{t.task_id}/complete", {"data": {}}), task="mine"),
    Action("CompleteTask (as non-assignee)", lambda t: (f"/api/tasks/{t.task_id}/complete", {"data": {}}),
           task="theirs"),
    Action("CancelTask", lambda t: (f"/api/tasks/{t.task_id}/cancel", {"reason": "not needed"}), task="theirs"),
    Action("ChangeTaskPriority", lambda t: (f"/api/tasks/{t.task_id}/priority", {"priority": 90}), task="theirs"),
    Action("AssignTask", lambda t: (f"/api/tasks/{t.task_id}/assign", {"assignee": "dora"}), task="theirs"),
    Action("RequestDocumentUpload", lambda t: (f"/api/cases/{t.case_id}/uploads", {
        "filename": "roof.pdf", "content_type": "application/pdf", "size": 10, "sha256": _SHA})),
    Action("RenameDocument", lambda t: (f"/api/cases/{t.case_id}/documents/{t.document_id}/rename",
                                        {"filename": "roof-2.pdf"}), document="attached"),
    Action("RemoveDocument", lambda t: (f"/api/cases/{t.case_id}/documents/{t.document_id}/remove", {}),
           document="attached"),
    Action("PlaceLegalHold", lambda t: (f"/api/cases/{t.case_id}/documents/{t.document_id}/legal-hold",
                                        {"reason": "litigation"}), document="attached"),
    Action("ReleaseLegalHold", lambda t: (f"/api/cases/{t.case_id}/documents/{t.document_id}/legal-hold/release",
                                          {}), document="held"),
    Action("ComposeEmail", lambda t: (f"/api/cases/{t.case_id}/messages", {
        "subject": "Your claim", "body": "We are on it.", "to": ["alice@casestream.test"]})),
    Action("OpenCase", lambda t: ("/api/cases", {"definition_key": "claim", "title": "Hail", "data": {"amount": 1}}),
           on_case=False),
    Action("PublishCaseDefinition", lambda t: ("/api/definitions", {**CLAIM, "key": t.key}), on_case=False),
    Action("DefineQueue", lambda t: ("/api/queues", {"key": t.key, "name": "A queue"}), on_case=False),
    Action("DefineRecordType", lambda t: ("/api/record-types", {"key": t.key, "name": "Vendor",
                                                                "schema": {"type": "object"}}), on_case=False),
    Action("SaveRecord", lambda t: ("/api/record-types/vendor/records", {"key": t.key, "data": {}}), on_case=False),
    Action("RemoveRecord", lambda t: (f"/api/record-types/vendor/records/{t.key}/remove", {}), on_case=False),
)
BY_NAME = {action.name: action for action in ACTIONS}
_keys = itertools.count()


def _user(role: str) -> str:
    return role.replace(" ", "-")


def prepare(server: LiveServer, action: Action, state: str | None, user: str) -> Target:
    """Make what the cell acts on, through the bus as an admin: a case in `state` with what the action needs."""
    bus = server.platform.bus
    target = Target(key=f"k{next(_keys)}-{uuid.uuid4().hex[:6]}")
    if action.name == "RemoveRecord":
        bus.dispatch(m.SaveRecord(type_key="vendor", key=target.key, data={}), SETUP)
    if not action.on_case:
        return target
    case_id = UUID(bus.dispatch(m.OpenCase(definition_key="claim", title="Hail", data={"amount": 5}), SETUP).id)
    target.case_id = case_id
    assignee = user if action.case_assignee == "me" else action.case_assignee
    bus.dispatch(m.AssignCase(case_id=case_id, assignee=assignee), SETUP)
    if action.comment:  # written by the acting user (authorship is the domain's rule)
        added = bus.dispatch(m.AddComment(case_id=case_id, body="First look."), Actor(user, TENANT, ("admin",)))
        target.comment_id = str(added.extra["comment_id"])
    if action.task is not None:
        task_assignee = {"mine": user, "held": None, "open": None, "theirs": "someone-else"}[action.task]
        created = bus.dispatch(m.CreateTask(case_id=case_id, title="Check the roof", assignee=task_assignee), SETUP)
        target.task_id = UUID(created.id)
        if action.task == "held":
            bus.dispatch(m.ClaimTask(task_id=target.task_id), Actor(user, TENANT, ("admin",)))
    if action.document is not None:  # attached through the bus: the confirm's measured facts, no bytes needed
        asked = bus.dispatch(m.RequestDocumentUpload(case_id=case_id, filename="roof.pdf",
                                                     content_type="application/pdf", size=10, sha256=_SHA), SETUP)
        target.document_id = UUID(str(asked.extra["document_id"]))
        bus.dispatch(m.ConfirmDocumentUpload(
            case_id=case_id, document_id=target.document_id, upload_id=str(asked.extra["upload_id"]), size=10,
            sniffed_type="application/pdf", sha256=_SHA, object_key=f"acme/{case_id}/sha256/{_SHA}"), SETUP)
        if action.document == "held":
            bus.dispatch(m.PlaceLegalHold(case_id=case_id, document_id=target.document_id), SETUP)
    if state in ("closed", "archived"):
        bus.dispatch(m.CloseCase(case_id=case_id, reason="done"), SETUP)
    if state == "archived":
        bus.dispatch(m.ArchiveCase(case_id=case_id, reason="retention"), SETUP)
    return target


def stored_since(server: LiveServer, position: int) -> list[str]:
    """The types of the events stored after position, less the audit log's (a denial is recorded there, on purpose)."""
    positioned = server.platform.store.read(position, 1000)
    return [type(p.event).__name__ for p in positioned if type(p.event).__name__ not in AUDIT_EVENTS]


# --- the app, once per engine ------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["embedded", "opa"])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real app whose policy is evaluated in-process (regopy) or by the OPA server from infra/."""
    data: Path = tmp_path_factory.mktemp(f"matrix-{request.param}")
    settings = Settings(data_dir=data, processes="off", policy_engine=request.param)
    if request.param == "opa":
        opa = request.getfixturevalue("opa_server")
        settings = settings.model_copy(update={"opa_url": opa.url()})
    with live_server(settings) as live:
        bus = live.platform.bus
        bus.dispatch(m.PublishCaseDefinition.model_validate(CLAIM), SETUP)
        bus.dispatch(m.DefineRecordType(key="vendor", name="Vendor", schema={"type": "object"}), SETUP)
        yield live


CELLS = [
    pytest.param(role, action.name, state, id=f"{role}-{action.name}-{state or 'no case'}")
    for role in ROLES
    for action in ACTIONS
    for state in (STATES if action.on_case else (None,))
]


@pytest.mark.parametrize(("role", "action_name", "state"), CELLS)
def test_each_role_may_send_each_command_exactly_as_the_table_says(
    app: LiveServer, role: str, action_name: str, state: str | None
) -> None:
    action = BY_NAME[action_name]
    user = _user(role)
    target = prepare(app, action, state, user)
    path, body = action.request(target)
    before = app.platform.store.max_position()
    with app.client(user, ROLES[role]) as client:
        reply = client.post(path, json=body)
    want = expected(role, action_name, state)
    problem = reply.json() if reply.headers.get("content-type", "").startswith("application/problem+json") else {}
    kind = str(problem.get("type", "")).rsplit("/", 1)[-1]
    seen = f"{reply.status_code} {kind or reply.text[:200]}"
    if want == ALLOW:
        assert reply.status_code < 300 or (reply.status_code in (404, 409, 422) and kind not in ("forbidden",
                                                                                                 "not-found")), seen
        return
    if want == DENY:
        assert (reply.status_code, kind) == (403, "forbidden"), seen
        assert problem["detail"].startswith(f"{action_name.split(' ')[0]} is not allowed: "), problem
    else:
        assert (reply.status_code, kind) == (404, "not-found"), seen
    assert stored_since(app, before) == [], f"a {want} command stored events"


def test_the_table_covers_every_command_route() -> None:
    """Every POST route of the API that sends a command is a row of the matrix."""
    from api.routes_commands import BATCHABLE

    rows = {name.split(" ")[0] for name in BY_NAME}
    assert rows == set(BATCHABLE) | {"RequestDocumentUpload"}  # its route replies with an upload URL: not batched


def test_the_batch_endpoint_refuses_a_denied_command_alone(app: LiveServer) -> None:
    target = prepare(app, BY_NAME["AddComment"], "closed", "alice")
    before = app.platform.store.max_position()
    with app.client("alice", ("caseworker",)) as client:
        reply = client.post("/api/commands", json={"commands": [
            {"type": "OpenCase", "definition_key": "claim", "title": "Hail", "data": {"amount": 3}},
            {"type": "AddComment", "case_id": str(target.case_id), "body": "on a closed case"},
            {"type": "DefineQueue", "key": "alice-queue", "name": "Mine"},
        ]})
    assert reply.status_code == 200, reply.text
    statuses = [(r["status"], r.get("type", "").rsplit("/", 1)[-1]) for r in reply.json()["results"]]
    assert statuses == [(201, ""), (403, "forbidden"), (403, "forbidden")]
    assert app.platform.store.max_position() > before  # the case was opened


def test_a_confidential_definitions_case_is_not_found_for_a_non_member(app: LiveServer) -> None:
    bus = app.platform.bus
    key = f"secret-{uuid.uuid4().hex[:6]}"
    member = Actor("ivy", TENANT, ("admin",), ("fraud-team",))
    bus.dispatch(m.PublishCaseDefinition.model_validate({**CLAIM, "key": key,
                                                         "access": {"read_groups": ["fraud-team"]}}), member)
    case_id = bus.dispatch(m.OpenCase(definition_key=key, title="Ring", data={"amount": 9}), member).id
    before = app.platform.store.max_position()
    with app.client("alice", ("supervisor",)) as outsider:
        hidden = outsider.post(f"/api/cases/{case_id}/comments", json={"body": "what is this?"})
        missing = outsider.post(f"/api/cases/{uuid.uuid4()}/comments", json={"body": "what is this?"})
        opening = outsider.post("/api/cases", json={"definition_key": key, "title": "Probe", "data": {"amount": 1}})
    assert (hidden.status_code, missing.status_code, opening.status_code) == (404, 404, 404)
    assert hidden.json()["type"] == missing.json()["type"] and hidden.json()["detail"] == f"case {case_id} not found"
    assert stored_since(app, before) == []
    token = app.platform.issuer.issue("ivy", TENANT, ("caseworker",), groups=("fraud-team",))  # type: ignore[union-attr]
    with app.client("ivy", ("caseworker",)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        assert client.post(f"/api/cases/{case_id}/comments", json={"body": "mine"}).status_code == 200


class Unreachable:
    """A policy engine that cannot be asked (the real OPA server is shared by every test, so it is not stopped)."""

    def decide(self, request: Mapping[str, Any]) -> Decision:
        raise PolicyUnavailable("the policy engine did not answer within 2.0s")


def test_an_unreachable_policy_engine_refuses_with_503_and_retry_after(app: LiveServer) -> None:
    target = prepare(app, BY_NAME["AddComment"], "open", "alice")
    bus = app.platform.bus
    before, policy = app.platform.store.max_position(), bus.policy
    bus.policy = Unreachable()
    try:
        with app.client("alice", ("caseworker",)) as client:
            reply = client.post(f"/api/cases/{target.case_id}/comments", json={"body": "hello"})
    finally:
        bus.policy = policy
    assert reply.status_code == 503 and reply.headers["retry-after"] == "2", reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["type"].endswith("/policy-unavailable")
    assert app.platform.store.max_position() == before


OPERATIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (  # the operations routes (admins only), on unknown ids
    ("get", "/api/incidents", {}),
    ("get", f"/api/incidents/{uuid.UUID(int=1)}", {}),
    ("post", f"/api/incidents/{uuid.UUID(int=1)}/retry", {"variables": {"amount": 1}}),
    ("post", f"/api/incidents/{uuid.UUID(int=1)}/cancel", {"reason": "probe"}),
    ("get", "/api/process-instances", {}),
    ("get", f"/api/process-instances/{uuid.UUID(int=2)}", {}),
    ("post", f"/api/process-instances/{uuid.UUID(int=2)}/cancel", {}),
    ("post", f"/api/process-instances/{uuid.UUID(int=2)}/variables", {"variables": {"amount": 1}}),
    ("post", f"/api/process-instances/{uuid.UUID(int=2)}/jobs/Work/retry", {}),
    ("get", f"/api/process-operations/{uuid.UUID(int=3)}", {}),
)


@pytest.mark.parametrize("role", list(ROLES))
def test_only_admins_reach_the_operations_routes(app: LiveServer, role: str) -> None:
    """Incidents and process instances: the README's table gives them (RetryIncident, CancelProcessInstance,
    SetProcessVariables, read_process_operations) to admins alone; everyone else is refused before any lookup."""
    before = app.platform.store.max_position()
    with app.client(_user(role), ROLES[role]) as client:
        for method, path, body in OPERATIONS:
            reply = client.get(path) if method == "get" else client.post(path, json=body)
            kind = reply.json().get("type", "").rsplit("/", 1)[-1] if reply.status_code >= 400 else ""
            if role == "admin":
                assert reply.status_code in (200, 404), f"{method} {path}: {reply.status_code} {reply.text[:200]}"
            else:
                assert (reply.status_code, kind) == (403, "forbidden"), f"{method} {path}: {reply.text[:200]}"
    assert stored_since(app, before) == []


DEPLOYABLE = ('<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions '
              'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Defs" targetNamespace="http://x">'
              '<bpmn:process id="matrix-process" isExecutable="true">'
              '<bpmn:startEvent id="Begin"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>'
              '<bpmn:sequenceFlow id="F1" sourceRef="Begin" targetRef="Finish" />'
              '<bpmn:endEvent id="Finish"><bpmn:incoming>F1</bpmn:incoming></bpmn:endEvent>'
              '</bpmn:process></bpmn:definitions>')


@pytest.mark.parametrize("role", list(ROLES))
def test_only_admins_deploy_and_read_processes(app: LiveServer, role: str) -> None:
    """DeployProcess and read_processes: admins alone, as the README's table says; a refusal stores nothing."""
    before = app.platform.store.max_position()
    with app.client(_user(role), ROLES[role]) as client:
        replies = [client.post("/api/processes", json={"files": [{"name": "m.bpmn", "content": DEPLOYABLE}]}),
                   client.get("/api/processes"), client.get("/api/processes/matrix-process/versions/1")]
    if role == "admin":
        assert [r.status_code for r in replies] == [200, 200, 200], [r.text[:200] for r in replies]
        assert replies[2].text == DEPLOYABLE
        return
    for reply in replies:
        assert (reply.status_code, reply.json()["type"].rsplit("/", 1)[-1]) == (403, "forbidden"), reply.text
    assert stored_since(app, before) == []


@pytest.mark.parametrize("role", list(ROLES))
def test_admins_and_workers_broadcast_signals(app: LiveServer, role: str) -> None:
    """BroadcastSignal: admins and worker service accounts, as the README's table says. This app runs no process
    engine, so an allowed broadcast is answered 503 (processes off) and, like a refusal, stores nothing."""
    before = app.platform.store.max_position()
    with app.client(_user(role), ROLES[role]) as client:
        reply = client.post("/api/signals", json={"name": "order-cancelled"})
    kind = reply.json()["type"].rsplit("/", 1)[-1]
    if role in ("admin", "worker"):
        assert (reply.status_code, kind) == (503, "processes-off"), reply.text
    else:
        assert (reply.status_code, kind) == (403, "forbidden"), reply.text
    assert stored_since(app, before) == []


@pytest.mark.parametrize("role", list(ROLES))
def test_admins_and_workers_publish_process_messages(app: LiveServer, role: str) -> None:
    """PublishProcessMessage: admins and worker service accounts, as the README's table says. This app runs no
    process engine, so an allowed publish is answered 503 (processes off) and, like a refusal, stores nothing."""
    before = app.platform.store.max_position()
    with app.client(_user(role), ROLES[role]) as client:
        reply = client.post("/api/messages", json={"name": "order-paid", "correlation_key": "o-1"})
        state = client.get(f"/api/messages/{uuid.UUID(int=4)}")  # what became of a message: its publishers ask
    kind = reply.json()["type"].rsplit("/", 1)[-1]
    if role in ("admin", "worker"):
        assert (reply.status_code, kind) == (503, "processes-off"), reply.text
        assert state.status_code == 404, state.text
    else:
        assert (reply.status_code, kind) == (403, "forbidden"), reply.text
        assert state.status_code == 403, state.text
    assert stored_since(app, before) == []
