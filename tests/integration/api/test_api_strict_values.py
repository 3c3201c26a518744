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


def test_history_of_a_version_the_case_never_had_is_refused(server: LiveServer, alice: httpx.Client) -> None:
    case = open_claim(alice)
    for version in (2, 10**30):
        reply = alice.get(f"/api/cases/{case['id']}/history", params={"version": version})
        assert reply.status_code == 422, reply.text
        assert [e["path"] for e in reply.json()["errors"]] == ["version"]
    assert alice.get(f"/api/cases/{case['id']}/history", params={"version": 1}).status_code == 200


def test_a_reversed_diff_is_refused(server: LiveServer, alice: httpx.Client) -> None:
    case = open_claim(alice)
    alice.post(f"/api/cases/{case['id']}/comments", json={"body": "second version"}).raise_for_status()
    reply = alice.get(f"/api/cases/{case['id']}/diff", params={"from": 2, "to": 1})
    assert reply.status_code == 422, reply.text
    assert [e["path"] for e in reply.json()["errors"]] == ["from"]
    assert alice.get(f"/api/cases/{case['id']}/diff", params={"from": 1, "to": 2}).status_code == 200


@pytest.mark.parametrize("how", ["header", "query"])
def test_resuming_the_feed_beyond_the_log_is_refused_not_left_hanging(
    server: LiveServer, alice: httpx.Client, how: str
) -> None:
    beyond = server.platform.store.max_position() + 1000
    if how == "header":
        reply = alice.get("/api/events", headers={"Last-Event-ID": str(beyond)}, timeout=10)
    else:
        reply = alice.get("/api/events", params={"last_event_id": beyond}, timeout=10)
    assert reply.status_code == 422, reply.text
    assert "beyond the log" in reply.json()["detail"]
