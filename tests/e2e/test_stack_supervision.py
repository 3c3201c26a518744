"""`casestream up --distributed` under load while each kind of child is killed with `kill -9`, one at a time: the
supervisor restarts it, fewer than 1% of requests fail, and every accepted command is in the read models exactly
once. Then the stack is stopped and started again (the data is still there), and `--fresh` empties it; a Ctrl-C
during start-up leaves nothing running."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from infra.server import Server
from tests.e2e.stack_process import EDGE, RunningStack, casestream, edge_token, stack_env
from tests.standins.novu import NovuStandIn, novu_standin

CASES = 24
LOAD_THREADS = 4
RETRYABLE = {502, 503, 504}
KILLED = ("relay", "worker-0", "notify", "process-worker", "api-0")
DEFINITION = {"key": "drill", "name": "Drill", "schema": {"type": "object"},
              "stages": [{"key": "open", "transitions": ["done"]}, {"key": "done"}]}


@dataclass
class Load:
    """Comments sent through the edge, each with its own command_id; a failed attempt is retried with the same id
    (the command is idempotent), after Retry-After when the edge or a replica says so."""

    auth: dict[str, str]
    cases: list[str]
    stop: threading.Event = field(default_factory=threading.Event)
    attempts: int = 0
    failed: list[str] = field(default_factory=list)
    accepted: Counter[str] = field(default_factory=Counter)
    last_position: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, seed: int) -> None:
        with httpx.Client(base_url=EDGE, headers=self.auth, timeout=30) as client:
            n = 0
            while not self.stop.is_set():
                case = self.cases[(seed + n) % len(self.cases)]
                n += 1
                self.send(client, case, {"body": f"drill {seed}-{n}", "command_id": f"drill-{seed}-{n}-{uuid.uuid4()}"})

    def send(self, client: httpx.Client, case: str, body: dict[str, str]) -> None:
        for _ in range(30):
            with self.lock:
                self.attempts += 1
            try:
                reply = client.post(f"/api/cases/{case}/comments", json=body)
            except httpx.TransportError as exc:
                self.note_failure(f"{exc.__class__.__name__}")
                time.sleep(0.2)
                continue
            if reply.status_code in (200, 201):
                with self.lock:
                    self.accepted[case] += 1
                    self.last_position = max(self.last_position, reply.json()["position"])
                return
            self.note_failure(f"{reply.status_code} {reply.text[:120]}")
            if reply.status_code not in RETRYABLE and reply.status_code != 429:
                raise AssertionError(f"a comment was refused: {reply.status_code} {reply.text}")
            time.sleep(min(float(reply.headers.get("retry-after", "0.2")), 2.0))
        raise AssertionError(f"a comment on {case} was not accepted after 30 attempts: {self.failed[-5:]}")

    def note_failure(self, why: str) -> None:
        with self.lock:
            self.failed.append(why)


@pytest.fixture(scope="module")
def novu() -> Iterator[NovuStandIn]:
    with novu_standin() as standin:
        yield standin


@pytest.fixture(scope="module")
def servers(postgres_server: Server, kafka_server: Server, ferretdb_server: Server, opa_server: Server,
            keycloak_server: Server, s3_server: Server, mail_server: Server) -> None:
    """The backing servers run already (the stack joins them, as it joins `casestream infra` servers, instead of
    starting and stopping each for every start of the stack)."""


def test_killed_children_are_restarted_under_load_and_no_command_is_lost_or_doubled(
        servers: None, novu: NovuStandIn, tmp_path: Path) -> None:
    env = stack_env({"CASESTREAM_NOVU_API_KEY": novu.api_key, "CASESTREAM_NOVU_URL": novu.url})
    stack = RunningStack.launch(tmp_path / "stack", tmp_path / "up.log", env=env)
    try:
        stack.wait_up()
        auth = edge_token()
        assert httpx.post(f"{EDGE}/api/definitions", json=DEFINITION, headers=auth, timeout=30).status_code == 200
        cases = []
        for i in range(CASES):
            opened = httpx.post(f"{EDGE}/api/cases", json={"definition_key": "drill", "title": f"drill {i}",
                                                          "data": {}}, headers=auth, timeout=30)
            assert opened.status_code == 201, opened.text
            cases.append(opened.json()["id"])
        load = Load(auth, cases)
        threads = [threading.Thread(target=load.run, args=(seed,), daemon=True) for seed in range(LOAD_THREADS)]
        for thread in threads:
            thread.start()
        time.sleep(3)
        # one of each kind of child: the relay, a worker, the publisher, the process worker, an API replica
        for name in KILLED:
            child = stack.children()[name]
            os.kill(child["pid"], signal.SIGKILL)
            stack.wait_restarted(name, child["restarts"] + 1)
            time.sleep(3)  # load goes on against the restarted child
        load.stop.set()
        for thread in threads:
            thread.join(timeout=60)
        print(f"load during the kills: {load.attempts} requests, {len(load.failed)} failed "
              f"({Counter(load.failed)}), {sum(load.accepted.values())} comments accepted")
        assert sum(load.accepted.values()) > 100, load.accepted
        assert len(load.failed) < 0.01 * load.attempts, (len(load.failed), load.attempts, Counter(load.failed))

        # every accepted comment is in the read model exactly once (a lost one or a doubled one shows in the count)
        for case in cases:
            detail = httpx.get(f"{EDGE}/api/cases/{case}", params={"wait_for": load.last_position,
                                                                   "wait_timeout": 30}, headers=auth, timeout=40)
            assert detail.status_code == 200, detail.text
            assert detail.json()["comment_count"] == load.accepted[case], (case, detail.json()["comment_count"])

        shown = casestream("status", "--data-dir", str(stack.data_dir), env=env)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        for name in (*KILLED, "worker-1", "api-1"):
            assert any(line.startswith(name) for line in shown.stdout.splitlines()), shown.stdout
        assert f"front door: {EDGE}" in shown.stdout
        assert "lag (distributed): " in shown.stdout and "  cases " in shown.stdout, shown.stdout  # per read model
        assert "killed by SIGKILL" in shown.stdout
        for name in KILLED:
            assert f"{name} (" in stack.output() and "killed by SIGKILL; restarting in" in stack.output()
    finally:
        stack.interrupt()
    assert stack.process.returncode in (0, 130), stack.output()[-3000:]
    assert stack.own_processes() == []
    shown = casestream("status", "--data-dir", str(stack.data_dir), env=env)
    assert shown.returncode == 1 and "no distributed stack runs" in shown.stdout
    casestream("down", "--wipe", "--yes", "--data-dir", str(stack.data_dir), env=env)  # its database and topics


def test_data_survives_a_restart_and_fresh_erases_it(servers: None, tmp_path: Path) -> None:
    data_dir = tmp_path / "stack"
    first = RunningStack.launch(data_dir, tmp_path / "up-1.log")  # --no-demo (the tour test sees the demo load)
    try:
        first.wait_up()
        auth = edge_token()
        assert httpx.post(f"{EDGE}/api/definitions", json=DEFINITION, headers=auth, timeout=30).status_code == 200
        opened = httpx.post(f"{EDGE}/api/cases", headers=auth, timeout=30, json={
            "definition_key": "drill", "title": "Kept across restarts", "data": {}})
        assert opened.status_code == 201, opened.text
        case = opened.json()
        assert httpx.get(f"{EDGE}/api/cases/{case['id']}", params={"wait_for": case["position"]}, headers=auth,
                         timeout=30).status_code == 200
    finally:
        stopped = casestream("down", "--data-dir", str(data_dir), env=first.env, timeout=200)
    assert stopped.returncode == 0 and "stopping the stack" in stopped.stdout, stopped.stdout + stopped.stderr
    assert first.process.wait(timeout=30) in (0, 130)
    assert first.own_processes() == []

    second = RunningStack.launch(data_dir, tmp_path / "up-2.log", flags=())
    try:
        second.wait_up()
        assert "demo: the event store already has events; nothing loaded" in second.output()
        again = httpx.get(f"{EDGE}/api/cases/{case['id']}", headers=edge_token(), timeout=30)
        assert again.status_code == 200 and again.json()["title"] == "Kept across restarts", again.text
    finally:
        second.interrupt()

    third = RunningStack.launch(data_dir, tmp_path / "up-3.log", flags=("--fresh", "--yes", "--no-demo"))
    try:
        third.wait_up()
        auth = edge_token()
        assert httpx.get(f"{EDGE}/api/cases/{case['id']}", headers=auth, timeout=30).status_code == 404
        assert httpx.get(f"{EDGE}/api/cases", headers=auth, timeout=30).json()["items"] == []
    finally:
        third.interrupt()
    wiped = casestream("down", "--wipe", "--yes", "--data-dir", str(data_dir), env=third.env, timeout=200)
    assert wiped.returncode == 0 and "erased" in wiped.stdout, wiped.stdout + wiped.stderr


def test_fresh_asks_before_erasing(tmp_path: Path) -> None:
    refused = casestream("up", "--distributed", "--fresh", "--data-dir", str(tmp_path / "stack"), env=stack_env())
    assert refused.returncode == 1
    assert "Erase every event" in refused.stdout and "nothing erased; not started" in refused.stdout


def test_ctrl_c_during_start_up_leaves_nothing_running(servers: None, tmp_path: Path) -> None:
    stack = RunningStack.launch(tmp_path / "stack", tmp_path / "up.log")
    deadline = time.monotonic() + 180
    while "worker-0: Kafka -> MongoDB" not in stack.output():  # the relay and workers run, the replicas start
        assert time.monotonic() < deadline and stack.process.poll() is None, stack.output()[-3000:]
        time.sleep(0.1)
    assert stack.own_processes(), "the stack's children should be running by now"
    stack.interrupt()
    assert stack.own_processes() == [], stack.output()[-3000:]
    assert "stopping: KeyboardInterrupt" in stack.output()
    casestream("down", "--wipe", "--yes", "--data-dir", str(stack.data_dir), env=stack.env)
