"""The command fast path (api/fast_commands.py) answers exactly as the FastAPI routes do, byte for byte.

Two apps over one platform: one with the fast path, one routing every request through FastAPI. Each request goes
to both as raw ASGI calls and their replies (status, header list in order, body) are compared; a success reply
differs only in the new case's id and position, so its expected bytes are the plain reply's with those two values
swapped in. Successes are sent through `FastCommands.handle` with a fallback that fails the test, so they are
known to be answered by the fast path itself.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from api.app import CasestreamApi, create_app
from api.json_reply import dumps
from casestream.bootstrap import Platform, bootstrap
from casestream.settings import Settings
from tests.integration.api.conftest import CLAIM

Reply = tuple[int, list[tuple[bytes, bytes]], bytes]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data: Path = tmp_path_factory.mktemp("fast")
    platform = bootstrap(Settings(data_dir=data, processes="off", max_body_bytes=65_536, body_timeout_seconds=0.3))
    try:
        yield platform
    finally:
        platform.close()


@pytest.fixture(scope="module")
def apps(platform: Platform) -> tuple[CasestreamApi, CasestreamApi]:
    fast, plain = create_app(platform), create_app(platform, fast_commands=False)
    assert fast.fast_commands is not None and plain.fast_commands is None
    return fast, plain


def token(platform: Platform, user: str = "alice", roles: tuple[str, ...] = ("caseworker",)) -> str:
    assert platform.issuer is not None
    return platform.issuer.issue(user, "acme", roles)


def scope_of(path: str, body: bytes, headers: dict[str, str]) -> Scope:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    if body:
        raw.append((b"content-length", str(len(body)).encode()))
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"testserver"), *raw], "client": ("127.0.0.1", 1), "server": ("testserver", 80),
            "state": {}}


async def call(app: Any, path: str, body: bytes, headers: dict[str, str], *, fast_only: bool = False,
               stalled: bool = False) -> Reply:
    """One POST through app (fast_only: through the fast path's handle, whose fallback fails the test; stalled:
    the client announces the body and never sends it)."""
    scope = scope_of(path, body, headers)
    sent = False
    messages: list[Message] = []

    async def receive() -> Message:
        nonlocal sent
        if stalled:
            await asyncio.Event().wait()
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        messages.append(message)

    if fast_only:
        async def no_fallback(_scope: Scope, _receive: Receive, _send: Send) -> None:
            pytest.fail(f"the fast path handed {path} {body[:80]!r} to FastAPI")

        matched = app.fast_commands.match(scope)
        assert matched is not None, path
        scope["app"] = app
        await app.fast_commands.handle(matched, scope, receive, send, no_fallback)
    else:
        await app(scope, receive, send)
    start = messages[0]
    return start["status"], list(start["headers"]), b"".join(m.get("body", b"") for m in messages[1:])


def json_headers(platform: Platform, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token(platform)}", "content-type": "application/json", **extra}


@pytest.fixture(scope="module", autouse=True)
def claim_definition(platform: Platform, apps: tuple[CasestreamApi, CasestreamApi]) -> None:
    headers = {"authorization": f"Bearer {token(platform, 'root', ('admin',))}", "content-type": "application/json"}
    status, _, body = asyncio.run(call(apps[1], "/api/definitions", orjson.dumps(CLAIM), headers))
    assert status == 200, body


def stored_since(platform: Platform, position: int) -> list[str]:
    """The types of the events stored after position, less the audit trail's (policy refusals are recorded by a
    writer thread of their own, commands/audit.py, at some later moment)."""
    audit = {"CommandDenied", "CommandDenialsRepeated"}
    positioned, _ = platform.store.read_batch(position, 1000)
    return [name for p in positioned if (name := type(p.event).__name__) not in audit]


def assert_same_success(fast: Reply, plain: Reply, varying: tuple[str, ...]) -> None:
    """Same status and headers; the body the plain reply's with the values of the command's own (varying) keys
    swapped in."""
    fast_body, plain_body = orjson.loads(fast[2]), orjson.loads(plain[2])
    assert list(fast_body) == list(plain_body)
    expected = dumps({**plain_body, **{key: fast_body[key] for key in varying}})
    assert fast[2] == expected
    assert fast[0] == plain[0]
    length = [(b"content-length", str(len(expected)).encode())]
    assert fast[1] == [length[0] if name == b"content-length" else (name, value) for name, value in plain[1]]


async def test_a_create_is_answered_by_the_fast_path_as_the_route_answers_it(
    platform: Platform, apps: tuple[CasestreamApi, CasestreamApi],
) -> None:
    fast, plain = apps
    body = orjson.dumps({"definition_key": "claim", "title": "Storm", "data": {"amount": 10}})
    headers = json_headers(platform, **{"x-correlation-id": "corr-1", "x-causation-id": "cause-1"})
    await call(plain, "/api/cases", body, headers)  # the token verified once (the fast path takes known ones)
    fast_reply = await call(fast, "/api/cases", body, headers, fast_only=True)
    plain_reply = await call(plain, "/api/cases", body, headers)
    assert fast_reply[0] == 201
    assert_same_success(fast_reply, plain_reply, ("id", "position", "number"))
    names = [name for name, _ in fast_reply[1]]
    assert names == [b"content-length", b"content-type", b"x-content-type-options", b"x-frame-options",
                     b"referrer-policy", b"cross-origin-opener-policy", b"content-security-policy"]
    reply = orjson.loads(fast_reply[2])
    [stored], _ = platform.store.read_batch(reply["position"] - 1, 1)
    meta = stored.event.meta
    assert (meta.correlation_id, meta.causation_id, meta.actor) == ("corr-1", "cause-1", "alice")
    assert str(stored.event.aggregate_id) == reply["id"]


async def test_a_repeated_command_and_a_command_with_path_parameters_answer_the_same(
    platform: Platform, apps: tuple[CasestreamApi, CasestreamApi],
) -> None:
    fast, plain = apps
    headers = json_headers(platform)
    await call(plain, "/api/cases", orjson.dumps({"definition_key": "claim", "title": "x", "data": {"amount": 1}}),
               headers)
    key = f"open-{uuid.uuid4()}"
    body = orjson.dumps({"definition_key": "claim", "title": "Once", "data": {"amount": 5}, "command_id": key})
    first = await call(fast, "/api/cases", body, headers, fast_only=True)
    assert first[0] == 201
    again_fast = await call(fast, "/api/cases", body, headers, fast_only=True)
    again_plain = await call(plain, "/api/cases", body, headers)
    assert again_fast == again_plain
    assert again_fast[0] == 200 and orjson.loads(again_fast[2])["id"] == orjson.loads(first[2])["id"]

    case_id = orjson.loads(first[2])["id"]
    retitled_fast = await call(fast, f"/api/cases/{case_id}/title", b'{"title": "Twice"}', headers, fast_only=True)
    retitled_plain = await call(plain, f"/api/cases/{case_id}/title", b'{"title": "Thrice"}', headers)
    assert retitled_fast[0] == 200
    assert_same_success(retitled_fast, retitled_plain, ("version", "position"))
    assert orjson.loads(retitled_plain[2])["version"] == orjson.loads(retitled_fast[2])["version"] + 1


def refusals(platform: Platform) -> list[tuple[str, bytes, dict[str, str]]]:
    """Requests each path must refuse, the same way (the bus's refusals, and ones the fast path hands over)."""
    good = json_headers(platform)
    viewer = {**good, "authorization": f"Bearer {token(platform, 'vera', ('viewer',))}"}
    claim = {"definition_key": "claim", "title": "t", "data": {"amount": 1}}
    missing = str(uuid.uuid4())
    return [
        ("/api/cases", orjson.dumps({**claim, "data": {"amount": -1}}), good),  # the schema (the bus)
        ("/api/cases", orjson.dumps({**claim, "definition_key": "nope"}), good),  # no such definition (the bus)
        ("/api/cases", orjson.dumps(claim), viewer),  # the policy (the bus)
        (f"/api/cases/{missing}/title", b'{"title": "x"}', good),  # no such case (the bus)
        ("/api/cases", orjson.dumps(claim), {"content-type": "application/json"}),  # no token
        ("/api/cases", orjson.dumps(claim), {**good, "authorization": "Bearer not-a-token"}),
        ("/api/cases", orjson.dumps(claim), {**good, "authorization": "Basic YWxpY2U6eA=="}),
        ("/api/cases", b'{"definition_key": "claim", "title": ', good),  # not JSON
        ("/api/cases", b'{"definition_key": "claim", "title": "t", "data": {"amount": NaN}}', good),
        ("/api/cases", b"[1, 2]", good),
        ("/api/cases", orjson.dumps({**claim, "surprise": 1}), good),  # the body model
        ("/api/cases", orjson.dumps({**claim, "title": "x" * 201}), good),
        ("/api/cases", orjson.dumps(claim), {**good, "content-type": "text/plain"}),
        ("/api/cases", orjson.dumps(claim), {**good, "x-correlation-id": "not an id"}),  # the request limits
        ("/api/cases", b"", good),
        ("/api/cases", b"{" + b" " * 70_000 + b"}", good),
        ("/api/cases/not-a-uuid/title", b'{"title": "x"}', good),  # the path parameter
        (f"/api/cases/{missing}/title", b'{"title": "x", "case_id": "' + missing.encode() + b'"}', good),
    ]


async def test_refusals_are_the_same_through_both_paths(
    platform: Platform, apps: tuple[CasestreamApi, CasestreamApi],
) -> None:
    fast, plain = apps
    for path, body, headers in refusals(platform):
        position = platform.store.max_position()
        fast_reply = await call(fast, path, body, headers)
        plain_reply = await call(plain, path, body, headers)
        assert fast_reply == plain_reply, (path, body[:80], headers)
        assert 400 <= fast_reply[0] < 500, (path, body[:80], fast_reply)
        assert dict(fast_reply[1])[b"content-type"] == b"application/problem+json"
        assert stored_since(platform, position) == [], (path, body[:80], headers)


async def test_a_body_that_never_arrives_is_answered_408_by_both(
    platform: Platform, apps: tuple[CasestreamApi, CasestreamApi],
) -> None:
    fast, plain = apps
    headers = json_headers(platform)
    body = orjson.dumps({"definition_key": "claim", "title": "t", "data": {"amount": 1}})
    await call(plain, "/api/cases", body, headers)  # the token verified once
    position = platform.store.max_position()
    fast_reply = await call(fast, "/api/cases", body, headers, fast_only=True, stalled=True)
    assert fast_reply == await call(plain, "/api/cases", body, headers, stalled=True)
    assert fast_reply[0] == 408 and b"body-timeout" in fast_reply[2]
    assert (b"connection", b"close") in fast_reply[1]
    assert stored_since(platform, position) == []


async def test_every_command_route_is_matched_to_its_own_command(apps: tuple[CasestreamApi, CasestreamApi]) -> None:
    from fastapi.routing import APIRoute, iter_route_contexts

    from api.routes_commands import COMMAND_ROUTES

    fast = apps[0].fast_commands
    assert fast is not None
    seen = 0
    for context in iter_route_contexts(apps[0].router.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.endpoint in COMMAND_ROUTES:
            path = context.path_format.replace("{", "").replace("}", "")  # each parameter named by itself
            matched = fast.match(scope_of(path, b"", {}))
            assert matched is not None, path
            assert matched[0].route is COMMAND_ROUTES[route.endpoint]
            assert matched[1] == {name: name for name in context.param_convertors}
            seen += 1
    assert seen == len(COMMAND_ROUTES)
    for other in ["/api/cases/", "/api/commands", "/api/cases/x/messages", "/auth/token", "/api/cases/x/y/data"]:
        assert fast.match(scope_of(other, b"", {})) is None, other


def test_the_command_routes_are_worked_out_at_start_up_not_at_the_first_command(platform: Platform) -> None:
    from fastapi.testclient import TestClient

    app = create_app(platform)
    assert app.fast_commands is not None and not app.fast_commands.ready
    with TestClient(app) as client:  # runs the lifespan: start-up, then the first request
        assert app.fast_commands.ready
        assert client.get("/healthz").status_code == 200
