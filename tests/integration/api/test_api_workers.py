"""`casestream serve --workers 2`: two API processes over one embedded platform's SQLite files.

Real processes on a real port (SO_REUSEPORT spreads connections over them); a keep-alive connection stays with
the process that accepted it, and /readyz names that process's role, so each test knows which one it talks to.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.event_store import sqlite_event_store
from adapters.issuer import BuiltinIssuer
from domain.case import CaseOpened
from tests.http_server import free_port
from tests.integration.api.conftest import CLAIM

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Workers:
    """A running `casestream serve --workers 2`."""

    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]

    def token(self, user: str, roles: tuple[str, ...]) -> str:
        issuer = BuiltinIssuer(self.data_dir / "issuer-key.json", self.url, "casestream", 3600)
        return issuer.issue(user, "acme", roles)

    def client_of(self, role: str, user: str = "alice", roles: tuple[str, ...] = ("caseworker",)) -> httpx.Client:
        """A keep-alive client whose one connection was accepted by the process of `role`."""
        headers = {"Authorization": f"Bearer {self.token(user, roles)}"}
        for _ in range(200):
            client = httpx.Client(base_url=self.url, headers=headers, timeout=30,
                                  limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
            if client.get("/readyz").json()["runner"]["role"] == role:
                return client
            client.close()
        raise AssertionError(f"no connection reached the {role} process in 200 tries")


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    data = tmp_path_factory.mktemp("workers")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASESTREAM_")}
    env.update({"CASESTREAM_DATA_DIR": str(data), "CASESTREAM_PROCESSES": "off"})
    process = subprocess.Popen(
        [sys.executable, "-c", "from casestream.cli import main; main()", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "2"], env=env, cwd=str(ROOT), start_new_session=True)
    running = Workers(f"http://127.0.0.1:{port}", data, process)
    try:
        deadline = time.monotonic() + 90
        roles: set[str] = set()
        while roles != {"runner", "follower"}:
            assert process.poll() is None, f"serve --workers exited with {process.returncode}"
            assert time.monotonic() < deadline, f"both processes did not answer (saw {roles})"
            try:
                roles.add(httpx.get(f"{running.url}/readyz", timeout=2).json()["runner"]["role"])
            except (httpx.HTTPError, ValueError, KeyError):
                time.sleep(0.1)
        with closing(running.client_of("runner", "admin", ("admin",))) as admin:
            reply = admin.post("/api/definitions", json=CLAIM)
            assert reply.status_code == 200, reply.text
        yield running
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def open_claim(client: httpx.Client, title: str) -> dict[str, Any]:
    reply = client.post("/api/cases", json={"definition_key": "claim", "title": title, "data": {"amount": 10}})
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


@pytest.mark.parametrize(("writer", "reader"), [("follower", "runner"), ("runner", "follower")])
def test_a_command_through_one_process_is_read_through_the_other(workers: Workers, writer: str, reader: str) -> None:
    with closing(workers.client_of(writer)) as write, closing(workers.client_of(reader)) as read:
        for n in range(5):
            opened = open_claim(write, f"{writer} to {reader} {n}")
            reply = read.get(f"/api/cases/{opened['id']}", params={"wait_for": opened["position"]})
            assert reply.status_code == 200, reply.text
            assert reply.json()["title"] == f"{writer} to {reader} {n}"
            # the reply's own position: a later command on the case, through the reader, is read through the writer
            moved = read.post(f"/api/cases/{opened['id']}/comments", json={"body": f"seen by the {reader}"})
            assert moved.status_code == 200, moved.text
            case = write.get(f"/api/cases/{opened['id']}", params={"wait_for": moved.json()["position"]}).json()
            assert [c["body"] for c in case["comments"]] == [f"seen by the {reader}"]


def test_concurrent_writers_in_both_processes_neither_duplicate_nor_lose_events(workers: Workers) -> None:
    clients = [workers.client_of(role) for role in ("runner", "follower", "runner", "follower")]
    try:
        with ThreadPoolExecutor(len(clients)) as pool:
            opened = [o for batch in pool.map(lambda c: [open_claim(c, "race") for _ in range(25)], clients)
                      for o in batch]
        assert len({o["id"] for o in opened}) == 100
        numbers = sorted(o["number"] for o in opened)
        assert len(set(numbers)) == 100  # one sequence across both processes: no number issued twice
        last = max(o["position"] for o in opened)
        with closing(workers.client_of("follower")) as reader:
            counts = reader.get("/api/counts", params={"definition_key": "claim", "wait_for": last}).json()
        assert sum(counts["status"].values()) >= 100
    finally:
        for client in clients:
            client.close()
    with sqlite3.connect(workers.data_dir / "events.sqlite") as db:
        ids = [row[0] for row in db.execute("SELECT rowid FROM stored_events ORDER BY rowid")]
        pairs = db.execute("SELECT COUNT(*), COUNT(DISTINCT originator_id || ':' || originator_version) "
                           "FROM stored_events").fetchone()
    assert ids == list(range(1, len(ids) + 1))  # the log's positions are gap-free
    assert pairs[0] == pairs[1]  # no (aggregate, version) twice
    store = sqlite_event_store(workers.data_dir / "events.sqlite")
    try:
        stored = [p.event for p in store.read(0, len(ids))]
    finally:
        store.close()
    raced = [e for e in stored if isinstance(e, CaseOpened) and e.title == "race"]
    assert sorted(str(e.aggregate_id) for e in raced) == sorted(o["id"] for o in opened)


def test_the_follower_s_live_feed_carries_what_the_runner_process_stored(workers: Workers) -> None:
    with closing(workers.client_of("runner")) as write, closing(workers.client_of("follower")) as feed:
        before = open_claim(write, "before the feed")
        headers = {"Last-Event-ID": str(before["position"])}
        with feed.stream("GET", "/api/events", headers=headers, timeout=20) as stream:
            assert stream.status_code == 200
            opened = open_claim(write, "seen live through the follower")
            seen = False
            for line in stream.iter_lines():
                if opened["id"] in line:
                    seen = True
                    break
    assert seen
