"""The distributed mode end to end, every part its own process: HTTP command -> PostgreSQL -> relay -> Kafka ->
workers -> MongoDB -> the query API (with wait_for), the live feed over SSE, the Novu publisher -> the Novu
stand-in (no Novu server can run here; tests/standins/novu.py checks Novu's trigger contract); and command
backpressure while the workers are stopped."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.event_store import postgres_event_store
from infra.postgres import PostgresServer
from infra.server import Server
from tests.e2e.distributed import Deployment, Service, drop_deployment, metric, services_tail, token, wait_for
from tests.integration.api.conftest import CLAIM
from tests.standins.novu import NovuStandIn, novu_standin

pytestmark = pytest.mark.integration
LAG_LIMIT = 40


@pytest.fixture(scope="module")
def deployment(
    postgres_server: Server, kafka_server: Server, ferretdb_server: Server, opa_server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    """The whole distributed stack: `serve --distributed` asks OPA for every decision, so OPA runs too."""
    assert isinstance(postgres_server, PostgresServer)
    dbname = f"e2e_{uuid.uuid4().hex[:8]}"
    postgres_server.create_database(dbname)
    log_dir: Path = tmp_path_factory.mktemp("distributed")
    (log_dir / "data").mkdir()
    deployment = Deployment(postgres_server.info(), dbname, kafka_server.info()["bootstrap"],
                            ferretdb_server.info()["uri"], log_dir, opa_url=opa_server.info()["url"])
    try:
        yield deployment
    finally:
        deployment.stop_all()
        drop_deployment(postgres_server, deployment)


@pytest.fixture(scope="module")
def novu() -> Iterator[NovuStandIn]:
    with novu_standin("e2e-novu-key") as standin:
        yield standin


@pytest.fixture(scope="module")
def stack(deployment: Deployment, novu: NovuStandIn) -> dict[str, Any]:
    """Relay, two workers, the Novu publisher and one API replica (backpressure above LAG_LIMIT events)."""
    relay = deployment.start_relay()
    wait_for(lambda: "starts after position" in relay.output(), 60, "the relay to create its topics", [relay])
    workers = [deployment.start_worker("w1"), deployment.start_worker("w2")]
    # a new group from the beginning: the deployment's topics are fresh, and no event is missed while it joins
    notify = deployment.start("notify", ["notify", "--from-beginning"], {
        "CASESTREAM_NOVU_URL": novu.url, "CASESTREAM_NOVU_API_KEY": novu.api_key})
    api, url = deployment.start_api(extra={"CASESTREAM_BACKPRESSURE_LAG_EVENTS": str(LAG_LIMIT),
                                           "CASESTREAM_LAG_REFRESH_SECONDS": "0.3"})
    return {"relay": relay, "workers": workers, "notify": notify, "api": api, "url": url}


class SseListener:
    """Reads /api/events in a thread and keeps every message."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.messages: list[dict[str, Any]] = []
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, headers), daemon=True)
        self._thread.start()

    def _run(self, url: str, headers: dict[str, str]) -> None:
        with httpx.Client(timeout=httpx.Timeout(30, read=60)) as client, \
                client.stream("GET", f"{url}/api/events", headers=headers) as reply:
            self.connected.set()
            current: dict[str, Any] = {}
            for line in reply.iter_lines():
                if self._stop.is_set():
                    return
                if not line:
                    if "data" in current:
                        self.messages.append(current)
                    current = {}
                elif ":" in line and not line.startswith(":"):
                    name, _, value = line.partition(":")
                    current[name] = value.strip()

    def stop(self) -> None:
        self._stop.set()


def _all_services(stack: dict[str, Any]) -> list[Service]:
    return [stack["relay"], *stack["workers"], stack["notify"], stack["api"]]


def test_a_command_reaches_the_read_models_the_query_api_the_live_feed_and_novu(
    stack: dict[str, Any], deployment: Deployment, novu: NovuStandIn,
) -> None:
    url = stack["url"]
    auth = token(url)
    listener = SseListener(url, auth)
    assert listener.connected.wait(10)
    try:
        assert httpx.post(f"{url}/api/definitions", json=CLAIM, headers=auth, timeout=30).status_code == 200
        opened = httpx.post(f"{url}/api/cases", headers=auth, timeout=30, json={
            "definition_key": "claim", "title": "Hail on the roof", "data": {"amount": 900}})
        assert opened.status_code == 201, opened.text
        case = opened.json()

        # the event is in PostgreSQL, at the position the command answered with
        store = postgres_event_store(
            host=deployment.postgres["host"], port=int(deployment.postgres["port"]), dbname=deployment.dbname,
            user=deployment.postgres["user"], password=deployment.postgres["password"], pool_size=1)
        try:
            events = store.events_of(uuid.UUID(case["id"]))
            assert events[0].type_name() == "CaseOpened"
            assert store.position_of(events[0].aggregate_id, events[0].version) <= case["position"]
        finally:
            store.close()

        # the query API answers from MongoDB once the workers have folded it
        detail = httpx.get(f"{url}/api/cases/{case['id']}", params={"wait_for": case["position"],
                                                                    "wait_timeout": 30}, headers=auth, timeout=40)
        assert detail.status_code == 200, f"{detail.text}\n{services_tail(_all_services(stack))}"
        assert detail.json()["title"] == "Hail on the roof"
        assert detail.json()["stage"] == "intake"

        moved = httpx.post(f"{url}/api/cases/{case['id']}/stage", json={"stage": "assessment"}, headers=auth,
                           timeout=30)
        assert moved.status_code == 200, moved.text
        assigned = httpx.post(f"{url}/api/cases/{case['id']}/assign", json={"assignee": "bob"}, headers=auth,
                              timeout=30)
        assert assigned.status_code == 200, assigned.text
        # read-your-writes: with wait_for the query never shows the state before the command
        after = httpx.get(f"{url}/api/cases/{case['id']}", params={"wait_for": moved.json()["position"],
                                                                   "wait_timeout": 30}, headers=auth, timeout=40)
        assert after.status_code == 200 and after.json()["stage"] == "assessment"
        listed = httpx.get(f"{url}/api/cases", headers=auth, timeout=30).json()["items"]
        assert [item["id"] for item in listed] == [case["id"]]

        wait_for(lambda: sum(case["id"] in m["data"] for m in listener.messages) >= 2, 30,
                 "the live feed to push the case's events", _all_services(stack))
        mine = [m for m in listener.messages if case["id"] in m["data"]]
        assert [m["event"] for m in mine[:2]] == ["CaseOpened", "CaseMovedToStage"]
        assert [int(m["id"]) for m in mine] == sorted(int(m["id"]) for m in mine)
        assert json.loads(mine[0]["data"])["case_id"] == case["id"]
    finally:
        listener.stop()

    # the Novu publisher sent the assignment to the stand-in exactly once (transactionId = the event's id)
    store = postgres_event_store(
        host=deployment.postgres["host"], port=int(deployment.postgres["port"]), dbname=deployment.dbname,
        user=deployment.postgres["user"], password=deployment.postgres["password"], pool_size=1)
    try:
        [assignment] = [e for e in store.events_of(uuid.UUID(case["id"])) if e.type_name() == "CaseAssigned"]
    finally:
        store.close()
    wait_for(lambda: str(assignment.event_id) in novu.by_transaction(), 60, "the Novu trigger",
             _all_services(stack))
    time.sleep(2)  # a repeat would arrive about now
    bodies = [b for b in novu.received if b["transactionId"] == str(assignment.event_id)]
    assert len(bodies) == 1 and str(assignment.event_id) not in novu.duplicates
    assert not novu.refused, novu.refused
    to = bodies[0]["to"]
    recipients = [to] if not isinstance(to, list) else to
    assert any("bob" in json.dumps(r) for r in recipients)

    ready = httpx.get(f"{url}/readyz", timeout=10).json()
    assert ready["status"] == "ready"
    assert ready["lag"]["mode"] == "distributed"
    assert set(ready["lag"]["read_models"]) >= {"cases", "timeline"}


def test_commands_get_429_while_the_workers_are_stopped_and_are_admitted_again_after(
    stack: dict[str, Any], deployment: Deployment,
) -> None:
    url = stack["url"]
    auth = token(url, tenant="globex")  # a tenant of its own (the demo admin is a member of acme and globex)
    published = httpx.post(f"{url}/api/definitions", json=CLAIM, headers=auth, timeout=30)
    assert published.status_code == 200
    # the definition is applied before the workers stop, so every unapplied event below is one opened case
    applied = httpx.get(f"{url}/api/cases", headers=auth, timeout=40,
                        params={"wait_for": published.json()["position"], "wait_timeout": 30})
    assert applied.status_code == 200, applied.text
    for worker in stack["workers"]:
        worker.stop()
    opened: list[dict[str, Any]] = []
    refusals = 0
    while len(opened) <= LAG_LIMIT:  # each opened case is one more event no worker applies
        reply = httpx.post(f"{url}/api/cases", headers=auth, timeout=30, json={
            "definition_key": "claim", "title": f"burst {len(opened)}", "data": {"amount": 1}})
        if reply.status_code == 429:  # a well-behaved client backs off (the relay may be behind for a moment)
            refusals += 1
            assert refusals < 200, reply.text
            time.sleep(0.3)
            continue
        assert reply.status_code == 201, reply.text
        opened.append(reply.json())
    refused = httpx.post(f"{url}/api/cases", headers=auth, timeout=30, json={
        "definition_key": "claim", "title": "one too many", "data": {"amount": 1}})
    deadline = time.monotonic() + 15
    while refused.status_code != 429 and time.monotonic() < deadline:  # until the monitor has measured the lag
        assert refused.status_code == 201, refused.text
        time.sleep(0.3)
        refused = httpx.post(f"{url}/api/cases", headers=auth, timeout=30, json={
            "definition_key": "claim", "title": "one too many", "data": {"amount": 1}})
    assert refused.status_code == 429, "commands were never refused"
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["type"].endswith("/read-models-behind")
    text = httpx.get(f"{url}/metrics", timeout=10).text
    assert metric(text, "casestream_projection_lag_events") > LAG_LIMIT  # summed over read models and partitions
    assert metric(text, "casestream_backpressure_refusing") == 1
    assert metric(text, "casestream_projection_lag_seconds") > 0  # the oldest unapplied record's age, from Kafka
    assert httpx.get(f"{url}/api/cases", headers=auth, timeout=30).status_code == 200  # queries still served

    stack["workers"] = [deployment.start_worker("w3"), deployment.start_worker("w4")]
    wait_for(lambda: httpx.post(f"{url}/api/cases", headers=auth, timeout=30, json={
        "definition_key": "claim", "title": "after the burst", "data": {"amount": 1}}).status_code == 201,
        120, "commands to be admitted again", _all_services(stack))
    last = opened[-1]
    detail = httpx.get(f"{url}/api/cases/{last['id']}", params={"wait_for": last["position"], "wait_timeout": 30},
                       headers=auth, timeout=40)
    assert detail.status_code == 200 and detail.json()["title"] == f"burst {len(opened) - 1}"
    assert metric(httpx.get(f"{url}/metrics", timeout=10).text, "casestream_backpressure_refusing") == 0
