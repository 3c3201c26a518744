"""`casestream up --distributed` as a person tries it: servers, API replicas on PostgreSQL, Traefik in front."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from casestream.stack import Stack, start

EDGE = "http://127.0.0.1:38000"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    lines: list[str] = []
    running = start(2, lines.append)
    try:
        yield running
    finally:
        running.stop(lines.append)


def test_commands_through_the_edge_reach_postgres_and_both_replicas(stack: Stack) -> None:
    token = httpx.post(f"{EDGE}/auth/token", data={
        "grant_type": "password", "username": "admin", "password": "casestream", "tenant": f"t{uuid.uuid4().hex[:8]}",
    })
    assert token.status_code == 200, token.text
    auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
    definition = {
        "key": "incident", "name": "Incident", "schema": {"type": "object"},
        "stages": [{"key": "open", "transitions": ["fixed"]}, {"key": "fixed"}],
    }
    assert httpx.post(f"{EDGE}/api/definitions", json=definition, headers=auth).status_code == 200
    opened = httpx.post(f"{EDGE}/api/cases", json={"definition_key": "incident", "title": "Printer on fire",
                                                   "data": {}}, headers=auth)
    assert opened.status_code == 201, opened.text
    body = opened.json()
    # each replica folds the shared PostgreSQL log into its own read models: both answer with wait_for
    urls = [f"http://127.0.0.1:{8101 + i}" for i in range(len(stack.replicas))]
    for url in urls:
        detail = httpx.get(f"{url}/api/cases/{body['id']}", params={"wait_for": body["position"]}, headers=auth)
        assert detail.status_code == 200, detail.text
        assert detail.json()["title"] == "Printer on fire"
    ready = httpx.get(f"{EDGE}/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert httpx.get(f"{EDGE}/").status_code == 200  # the UI through the edge
