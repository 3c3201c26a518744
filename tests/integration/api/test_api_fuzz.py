"""No request of any shape gets a 500: random bodies, paths and query strings against every route."""

from __future__ import annotations

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
