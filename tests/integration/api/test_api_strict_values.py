"""Values of the wrong JSON type are refused, not coerced (`true` is not the integer 1) (#12)."""

from __future__ import annotations

import httpx
import pytest

from tests.http_server import LiveServer
from tests.integration.api.conftest import open_claim


@pytest.mark.parametrize("value", [True, "5", 5.0])
def test_task_priority_must_be_an_integer(server: LiveServer, alice: httpx.Client, value: object) -> None:
    case = open_claim(alice)
    before = server.platform.store.max_position()
    reply = alice.post(f"/api/cases/{case['id']}/tasks", json={"title": "call back", "priority": value})
    assert reply.status_code == 422, reply.text
    assert [e["path"] for e in reply.json()["errors"]] == ["priority"]
    assert server.platform.store.max_position() == before


def test_expected_version_must_be_an_integer(server: LiveServer, alice: httpx.Client) -> None:
    case = open_claim(alice)
    reply = alice.post(f"/api/cases/{case['id']}/comments", json={"body": "x", "expected_version": True})
    assert reply.status_code == 422, reply.text
    assert [e["path"] for e in reply.json()["errors"]] == ["expected_version"]
