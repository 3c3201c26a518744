"""No request of any shape gets a 500: random bodies, paths, query strings and headers against every route; a
refusal is problem+json and stores nothing."""

from __future__ import annotations

import re
import string
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.http_server import LiveServer
from tests.integration.api.conftest import open_claim

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
FIELDS = ["definition_key", "title", "data", "patch", "stage", "assignee", "queue", "body", "parent_id", "reason",
          "resolution", "command_id", "expected_version", "key", "name", "schema", "stages", "description"]
bodies = st.one_of(json_values, st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6))
ACTIONS = ["data", "title", "stage", "assign", "unassign", "queue", "comments", "close", "reopen", "archive"]


def _paths(server: LiveServer) -> list[str]:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    return [p for p, ops in spec["paths"].items() if "post" in ops]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.sampled_from(ACTIONS), body=bodies)
def test_random_case_commands_never_500(alice: httpx.Client, action: str, body: Any) -> None:
    case_id = _case(alice)
    reply = alice.post(f"/api/cases/{case_id}/{action}", json=body)
    assert reply.status_code < 500, reply.text
    if reply.status_code >= 400:
        assert reply.headers["content-type"].startswith("application/problem+json")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(min_value=0, max_value=100), body=bodies,
       segment=st.text(alphabet=string.ascii_letters + string.digits + "-_.~", max_size=12))
def test_random_bodies_on_every_post_route_never_500(server: LiveServer, index: int, body: Any, segment: str) -> None:
    paths = _paths(server)
    path = paths[index % len(paths)]
    path = path.replace("{case_id}", str(uuid.uuid4())).replace("{comment_id}", segment or "x")
    path = path.replace("{type_key}", segment or "x").replace("{key}", segment or "x")
    with server.client("admin", ("admin",)) as admin:
        reply = admin.post(path, json=body)
    assert reply.status_code < 500, (path, body, reply.text)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(
    st.sampled_from(["definition_key", "status", "stage", "queue", "assignee", "q", "sort", "order", "limit",
                     "cursor", "wait_for", "wait_timeout"]),
    st.text(max_size=30), max_size=5))
def test_random_list_queries_never_500(alice: httpx.Client, params: dict[str, str]) -> None:
    reply = alice.get("/api/cases", params=params)
    assert reply.status_code < 500, (params, reply.text)


_CASES: list[str] = []


def _case(client: httpx.Client) -> str:
    if not _CASES:
        _CASES.append(open_claim(client, 1, "fuzz target")["id"])
    return _CASES[0]


# header values as a client may send them: any visible byte (latin-1 included), spaces inside
_HEADER_BYTES = [*range(0x21, 0x7F), *range(0x80, 0x100)]
header_values = st.one_of(
    st.lists(st.sampled_from(_HEADER_BYTES), max_size=40).map(bytes),
    st.lists(st.sampled_from([*_HEADER_BYTES, 0x20]), min_size=1, max_size=300).map(lambda b: bytes(b).strip() or b"x"),
    st.sampled_from([b"", b"0", b"-1", b"1" * 19, b"\xd9\xa3", b"Bearer", b"Bearer  x", b"bearer x.y.z", b"Basic YTpi",
                     b"application/json; charset=utf-16", b"text/plain", b"*/*", b"application/xml", b"9" * 2000]),
)
HEADERS = ["Authorization", "X-Correlation-ID", "X-Causation-ID", "Last-Event-ID", "Content-Type", "Accept",
           "Accept-Encoding", "Content-Encoding", "If-None-Match", "X-Forwarded-For"]
query_values = st.one_of(st.text(max_size=30), st.integers().map(str), st.floats().map(str),
                         st.sampled_from(["", "-1", "0", "1e309", "nan", "9" * 40, "true", "null", "٣", "2026-01-01"]))


def _get_routes(server: LiveServer) -> list[tuple[str, list[str]]]:
    """Every GET route of the OpenAPI with the names of its query parameters."""
    spec = httpx.get(f"{server.url}/openapi.json").json()
    return [(path, [p["name"] for p in ops["get"].get("parameters", []) if p["in"] == "query"])
            for path, ops in spec["paths"].items() if "get" in ops]


def _concrete(path: str, case_id: str, segment: str) -> str:
    for name in ("{case_id}", "{task_id}"):
        path = path.replace(name, case_id)
    return re.sub(r"\{[^}]+\}", segment or "claim", path)


def _send(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """The reply (for the SSE feed: its status and headers, and the body of a refusal)."""
    with client.stream(method, path, **kwargs) as reply:
        if reply.status_code != 200 or not reply.headers.get("content-type", "").startswith("text/event-stream"):
            reply.read()
        return reply


def _refused_as_problem(reply: httpx.Response, what: Any) -> None:
    assert reply.status_code < 500, (what, reply.status_code, reply.text)
    if reply.status_code >= 400:
        assert reply.headers["content-type"].startswith("application/problem+json"), (what, reply.text)
        assert reply.json()["status"] == reply.status_code


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(min_value=0, max_value=100), data=st.data(),
       segment=st.text(alphabet=string.ascii_letters + string.digits + "-_.~", max_size=12))
def test_random_query_parameters_on_every_get_route_never_500(
    alice: httpx.Client, server: LiveServer, index: int, data: st.DataObject, segment: str,
) -> None:
    routes = _get_routes(server)
    path, names = routes[index % len(routes)]
    keys = st.sampled_from(names) | st.text(max_size=8) if names else st.text(max_size=8)
    params = data.draw(st.dictionaries(keys, query_values, max_size=5), label="params")
    reply = _send(alice, "GET", _concrete(path, _case(alice), segment), params=params)
    _refused_as_problem(reply, (path, params))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(min_value=0, max_value=100), post=st.booleans(),
       headers=st.dictionaries(st.sampled_from(HEADERS), header_values, min_size=1, max_size=4))
def test_random_headers_never_500_and_a_refused_command_stores_nothing(
    alice: httpx.Client, server: LiveServer, index: int, post: bool, headers: dict[str, bytes],
) -> None:
    case_id = _case(alice)
    token = alice.headers["Authorization"]
    sent = {"Authorization": token, **headers}  # a garbage Authorization replaces the good one
    before = server.platform.store.max_position()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        if post:
            reply = _send(client, "POST", f"/api/cases/{case_id}/comments", headers=sent,
                          content=b'{"body": "fuzzed header"}')
        else:
            path, _ = _get_routes(server)[index % len(_get_routes(server))]
            reply = _send(client, "GET", _concrete(path, case_id, "claim"), headers=sent)
    _refused_as_problem(reply, headers)
    if reply.status_code >= 400:
        assert server.platform.store.max_position() == before, (headers, reply.text)
