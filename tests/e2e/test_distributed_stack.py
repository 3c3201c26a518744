"""`casestream up --distributed` as a person tries it: servers, relay, workers, API replicas (`serve --distributed`:
PostgreSQL commands, MongoDB queries), Traefik in front."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from casestream.stack import Stack, StackConfig, start
from infra.keycloak import KeycloakServer, demo_password
from infra.server import Server
from tests.postgres_store import scratch_database

EDGE = "http://127.0.0.1:28000"


@pytest.fixture(scope="module")
def stack(postgres_server: Server, keycloak_server: Server, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Stack]:
    """A stack of its own: log database, topics, consumer group and read-model database that no earlier run used
    (the relay's stored partition heads must describe the topics and read models the workers fill)."""
    lines: list[str] = []
    suffix = uuid.uuid4().hex[:8]
    with scratch_database(postgres_server, "stack") as db, pytest.MonkeyPatch.context() as env:
        env.setenv("CASESTREAM_POSTGRES_DB", db)
        env.setenv("CASESTREAM_KAFKA_TOPIC_PREFIX", f"stack{suffix}")
        env.setenv("CASESTREAM_WORKER_GROUP", f"stack-{suffix}")
        env.setenv("CASESTREAM_MONGO_DATABASE", f"stack_{suffix}")
        running = start(StackConfig(tmp_path_factory.mktemp("stack"), 2, demo=False), lines.append)
        try:
            yield running
        finally:
            running.stop(lines.append)


def test_commands_through_the_edge_reach_postgres_and_both_replicas(stack: Stack, keycloak_server: Server) -> None:
    # the distributed mode trusts the infra Keycloak (the built-in issuer is off): acme's admin from its realm
    assert isinstance(keycloak_server, KeycloakServer)
    token = httpx.post(keycloak_server.token_endpoint("acme"), data={
        "grant_type": "password", "client_id": "casestream-test", "username": "admin",
        "password": demo_password("acme", "admin"),
    })
    assert token.status_code == 200, token.text
    assert httpx.post(f"{EDGE}/auth/token", data={"grant_type": "password", "username": "admin",
                                                  "password": "casestream"}).status_code == 404
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
    assert {"relay", "worker-0", "worker-1"} <= set(stack.processes)
    # the relay and the workers fill the MongoDB read models that both replicas read: both answer with wait_for
    urls = [f"http://127.0.0.1:{8101 + i}" for i in range(stack.config.replicas)]
    deadline = time.monotonic() + 180  # fresh workers first join their group: slow on a loaded 2-core machine
    for url in urls:
        while True:
            detail = httpx.get(f"{url}/api/cases/{body['id']}",
                               params={"wait_for": body["position"], "wait_timeout": 30}, headers=auth, timeout=40)
            if detail.status_code != 504 or time.monotonic() > deadline:
                break  # a 504 names the read model's position: asked again until the deadline
        assert detail.status_code == 200, detail.text
        assert detail.json()["title"] == "Printer on fire"
    ready = httpx.get(f"{EDGE}/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["lag"]["mode"] == "distributed"
    assert httpx.get(f"{EDGE}/").status_code == 200  # the UI through the edge
