"""schemathesis over every operation of the served OpenAPI, as a caseworker and as a supervisor, every check on:
no server error, every status documented, every reply of its documented media type and schema.

CASESTREAM_SCHEMATHESIS_EXAMPLES sets the examples per operation and phase (the suite's default keeps the whole run
within a few minutes on two cores; a nightly run sets hundreds).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, negative_data_rejection
from schemathesis.config._checks import NegativeDataRejectionConfig, PositiveDataAcceptanceConfig

from casestream.settings import Settings
from tests.http_server import LiveServer, live_server
from tests.integration.api.conftest import CLAIM

EXAMPLES = int(os.environ.get("CASESTREAM_SCHEMATHESIS_EXAMPLES", "40"))
ROLES = {"alice": ("caseworker",), "sue": ("supervisor",)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(Settings(data_dir=tmp_path_factory.mktemp("schemathesis"), max_body_bytes=65_536)) as live:
        yield live


@pytest.fixture(scope="module")
def known(server: LiveServer) -> dict[str, list[str]]:
    """Real ids for path parameters: a definition, a record type, cases with comments and tasks."""
    ids: dict[str, list[str]] = {"case_id": [], "task_id": [], "comment_id": [], "definition_key": ["claim"],
                                 "key": ["claim", "v1"], "type_key": ["vendor"]}
    with server.client("admin", ("admin",)) as admin, server.client("alice", ("caseworker",)) as alice:
        assert admin.post("/api/definitions", json=CLAIM).status_code == 200
        assert admin.post("/api/queues", json={"key": "claims-team", "name": "Claims"}).status_code == 200
        assert admin.post("/api/record-types", json={"key": "vendor", "name": "Vendor",
                                                     "schema": {"type": "object"}}).status_code == 200
        assert admin.post("/api/record-types/vendor/records", json={"key": "v1", "data": {}}).status_code == 200
        for number in range(3):
            case = alice.post("/api/cases", json={"definition_key": "claim", "title": f"Case {number}",
                                                  "data": {"amount": number}}).json()["id"]
            ids["case_id"].append(case)
            comment = alice.post(f"/api/cases/{case}/comments", json={"body": "hi"}).json()
            ids["comment_id"].append(comment["comment_id"])
            ids["task_id"].append(alice.post(f"/api/cases/{case}/tasks", json={"title": "Check"}).json()["id"])
    return ids


@pytest.fixture(scope="module")
def api_schema(server: LiveServer) -> Any:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    # a check that sends the SSE feed again (200, never ends) fails after this long instead of holding the suite
    schema.config.update(base_url=server.url, request_timeout=30)
    checks = schema.config.checks
    # schema-valid is not always valid: data checked against a definition's schema, a case's state, a cursor or a
    # position from this API, a grant's credentials are refused with a documented 4xx that JSON Schema cannot express
    checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=["2xx", "400", "401", "403", "404", "409", "413", "422", "429"])
    # invalid data refused before validation (too large a body) is still refused
    checks.negative_data_rejection = NegativeDataRejectionConfig(
        expected_statuses=["400", "401", "403", "404", "405", "409", "413", "422", "429", "431"])
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's lazy loader renames the test node through `_nodeid`, which pytest 9 no longer sets."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def _real_ids(case: Any, known: dict[str, list[str]]) -> None:
    """Point two thirds of the positive cases' path parameters at things that exist (deterministically per case);
    a negative case keeps the invalid value it was made with."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    for name, value in list((case.path_parameters or {}).items()):
        choices = known.get(name)
        pick = zlib.crc32(repr(value).encode())
        if choices and pick % 3:
            case.path_parameters[name] = choices[pick % len(choices)]


def _send(case: Any, server: LiveServer, headers: dict[str, str]) -> Any:
    if case.operation.path != "/api/events":
        return case.call(headers=headers, timeout=30)
    # the feed answers 200 and never ends: its status and headers are the reply to check
    request = case.as_transport_kwargs(base_url=server.url, headers=headers)
    with httpx.Client(timeout=30) as client, client.stream(
            request["method"], request["url"], params=request.get("params"), headers=request.get("headers")) as reply:
        content = b"" if reply.status_code == 200 else reply.read()
    response = httpx.Response(reply.status_code, headers=reply.headers, content=content, request=reply.request)
    response._elapsed = reply.elapsed  # what httpx sets when a response it received is closed
    return response


def _not_negative(case: Any) -> list[Any]:
    """A "negative" case whose fault is a query parameter the operation does not declare (an empty name included)
    or a scalar parameter given several times is valid here: unknown query parameters are ignored and the last of
    repeated ones counts (docs/api.md)."""
    query = case.query or {}
    repeated = any(isinstance(value, list) for value in query.values())
    unknown = set(query) - {parameter.name for parameter in case.operation.query}
    return [negative_data_rejection] if unknown or repeated else []


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_conforms(case: Any, server: LiveServer, known: dict[str, list[str]]) -> None:
    _real_ids(case, known)
    for user, roles in ROLES.items():
        headers = {"Authorization": f"Bearer {server.token(user, roles)}"}
        reply = _send(case, server, headers)
        case.validate_response(reply, checks=CHECKS.get_all(), headers=headers, excluded_checks=_not_negative(case))
