"""Lag over HTTP (embedded): /metrics and /readyz report it, and commands get 429 while it is above the limit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from casestream.settings import Settings
from tests.http_server import LiveServer, live_server
from tests.integration.api.conftest import CLAIM

LIMIT = 5


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path, backpressure_lag_events=LIMIT, lag_refresh_seconds=0.1)
    with live_server(settings) as live:
        yield live


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def _until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_commands_get_429_while_read_models_lag_and_queries_keep_working(limited: LiveServer) -> None:
    designer = limited.client("sam", ("supervisor",))
    alice = limited.client()
    assert designer.post("/api/definitions", json=CLAIM).status_code == 200
    metrics = httpx.get(f"{limited.url}/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")

    limited.platform.runner.stop()  # real lag: events are stored, nobody folds them
    try:
        opened = []
        first_refusal = None
        for i in range(500):
            reply = alice.post("/api/cases", json={"definition_key": "claim", "title": f"c{i}", "data": {"amount": i}})
            if reply.status_code == 429:
                first_refusal = reply
                break
            assert reply.status_code == 201, reply.text
            opened.append(reply.json())
        assert first_refusal is not None and opened
        behind = limited.platform.store.max_position() - limited.platform.runner.position
        assert behind > LIMIT  # refused only once the lag really was above the limit
        refused = alice.post(f"/api/cases/{opened[0]['id']}/comments", json={"body": "hello"})
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["type"].endswith("/read-models-behind")
        assert f"limit {LIMIT}" in refused.json()["detail"]

        assert alice.get("/api/cases").status_code == 200  # queries are never refused
        text = httpx.get(f"{limited.url}/metrics").text
        assert _metric(text, "casestream_backpressure_refusing") == 1
        assert _metric(text, "casestream_backpressure_refused_total") >= 2
        # the lag is sampled once a second: a command that passed the check while a sample was being taken may
        # have been stored after it, so the sample that first said "refuse" can be a few events short; nothing is
        # stored now (runner stopped, commands refused), so the next sample shows all of it
        _until(lambda: _metric(httpx.get(f"{limited.url}/metrics").text, "casestream_projection_lag_events") >= behind)
        text = httpx.get(f"{limited.url}/metrics").text
        assert _metric(text, "casestream_projection_lag_seconds") > 0
        ready = httpx.get(f"{limited.url}/readyz").json()
        assert ready["lag"]["events_behind"] >= behind
        assert ready["lag"]["read_models"]["cases"][0]["events"] >= behind
    finally:
        limited.platform.runner.start()

    _until(lambda: alice.post("/api/cases", json={"definition_key": "claim", "title": "after", "data": {
        "amount": 2}}).status_code == 201)
    last = opened[-1]
    assert alice.get(f"/api/cases/{last['id']}", params={"wait_for": last["position"]}).status_code == 200
    assert _metric(httpx.get(f"{limited.url}/metrics").text, "casestream_backpressure_refusing") == 0
