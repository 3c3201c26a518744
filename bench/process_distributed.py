"""Processes in the distributed mode: how long a job and a step take when the BPMN engine runs in `casestream
process-worker` over the PostgreSQL event store, beside the same flow in embedded mode in the same run.

Distributed: real subprocesses on infra's PostgreSQL, Kafka and FerretDB (started if needed, left running), as
`casestream up --distributed` composes them: `casestream relay`, two `casestream worker`s, one `casestream
process-worker` (the engine and process manager, its read models in its own folder) and one `casestream serve
--distributed` (the API: commands into PostgreSQL, no engine). The bench deploys a lifecycle process through
`POST /api/processes`, publishes a case definition naming it, then opens cases through the API at a steady rate
(open loop: each open has a scheduled time), and completes each case's user task through the API as soon as the
task's `TaskCreated` is in the log (the bench reads the log itself). The lifecycle:

    start -> Check (service task `case.update-data`) -> Review (user task) -> File (service task `case.set-queue`)
          -> end

Every figure is a difference of two events' stored timestamps (`occurred_at`: taken when the command that stored
the event was decided, just before it was appended), read from the event store after the run:

- job: the step that made the job available (`ProcessStarted` for Check, `ProcessAdvanced` user-task-completed for
  File) -> the worker's command for it stored (`CaseDataChanged`, `CaseQueued`): activation and completion;
- job, end to end: the API's command that led to it (`CaseOpened`, `TaskCompleted`) -> the job's command stored:
  what a person waits for, with the process worker noticing the other process's event;
- step: an API command stored -> the next element reached (`CaseOpened` -> `ProcessStarted`, `TaskCompleted` ->
  `ProcessAdvanced`), the process worker following the log.

Baseline (same run, same rate, same flow): `casestream serve` in embedded mode (SQLite, processes on), where the
engine runs in the process that stores the API's commands.

    python bench/process_distributed.py --quick   # 10 instances/s for 10 s each
    python bench/process_distributed.py           # 10 instances/s for 30 s each (target: job p99 < 250 ms)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from common import (
    ROOT,
    RawHttp,
    banner,
    casestream_serve,
    fresh_postgres_db,
    machine_line,
    ms,
    percentile,
    process_tree_cpu_seconds,
    table,
    temp_dir,
    verdict,
)

TARGET_P99_MS = 250.0  # Camunda's processing-latency SLO (issue #15)
PROCESS = "bench-distributed"
CONNECTIONS = 8  # keep-alive connections of the load client
LOG_POLL_S = 0.02  # how often the bench reads the log for new user tasks
DRAIN_S = 60.0  # after the last open, how long the unfinished instances may take
MODEL = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="Defs" targetNamespace="http://bench">
  <bpmn:process id="{PROCESS}" name="Distributed bench" isExecutable="true">
    <bpmn:startEvent id="Begin"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="Begin" targetRef="Check" />
    <bpmn:serviceTask id="Check" name="Check">
      <bpmn:extensionElements>
        <zeebe:taskDefinition type="case.update-data" />
        <zeebe:taskHeaders><zeebe:header key="data" value="{{&quot;checked&quot;: true}}" /></zeebe:taskHeaders>
      </bpmn:extensionElements>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="F2" sourceRef="Check" targetRef="Review" />
    <bpmn:userTask id="Review" name="Review">
      <bpmn:extensionElements><zeebe:assignmentDefinition candidateGroups="caseworker" /></bpmn:extensionElements>
      <bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="F3" sourceRef="Review" targetRef="File" />
    <bpmn:serviceTask id="File" name="File">
      <bpmn:extensionElements>
        <zeebe:taskDefinition type="case.set-queue" />
        <zeebe:taskHeaders><zeebe:header key="queue" value="filed" /></zeebe:taskHeaders>
      </bpmn:extensionElements>
      <bpmn:incoming>F3</bpmn:incoming><bpmn:outgoing>F4</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="F4" sourceRef="File" targetRef="Finish" />
    <bpmn:endEvent id="Finish"><bpmn:incoming>F4</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""
DEFINITION: dict[str, Any] = {
    "key": "pbench", "name": "Process bench", "schema": {"type": "object"},
    "stages": [{"key": "open", "name": "Open", "transitions": []}], "queues": ["filed"],
    "lifecycle_process": PROCESS,
}
# what each figure measures: (row name, the event that starts it, the event that ends it)
MEASURES = (
    ("job Check: ready -> done", "started", "checked"),
    ("job File: ready -> done", "advanced", "filed"),
    ("job Check: case opened -> done", "opened", "checked"),
    ("job File: task completed -> done", "completed", "filed"),
    ("step: case opened -> instance started", "opened", "started"),
    ("step: task completed -> next element", "completed", "advanced"),
)
HEADLINE = ("job Check: case opened -> done", "job File: task completed -> done")
EVENT_TYPES = frozenset({"CaseOpened", "CaseDataChanged", "CaseQueued", "TaskCreated", "TaskCompleted",
                         "ProcessStarted", "ProcessAdvanced", "ProcessCompleted"})


@dataclass
class Run:
    """One mode's run: what was sent, and the stamps (Unix seconds) of each case's events."""

    name: str
    sent: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    cases: dict[str, dict[str, float]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds of each server process over the timed phase
    load: str = ""
    completed: int = 0  # instances seen finishing while the bench drove them
    answered: list[float] = field(default_factory=list)  # seconds from each open's scheduled time to its 201

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def samples(self, start: str, end: str) -> list[float]:
        return [stamps[end] - stamps[start] for stamps in self.cases.values() if start in stamps and end in stamps]

    def finished(self) -> int:
        return sum(1 for stamps in self.cases.values() if "finished" in stamps)


def stamp(at: datetime) -> float:
    return at.timestamp()


def note(cases: dict[str, dict[str, float]], positioned: Any) -> None:
    """Put one event's timestamp on its case's timeline (the first of each kind counts)."""
    event = positioned.event
    name = type(event).__name__
    case_id = str(getattr(event, "case_id", None) or event.aggregate_id)
    kind = {"CaseOpened": "opened", "CaseDataChanged": "checked", "CaseQueued": "filed", "TaskCreated": "created",
            "TaskCompleted": "completed", "ProcessStarted": "started", "ProcessCompleted": "finished"}.get(name)
    if name == "ProcessAdvanced" and event.cause == "user-task-completed":
        kind = "advanced"
    if kind is None:
        return
    cases.setdefault(case_id, {}).setdefault(kind, stamp(event.occurred_at))


def timelines(store: Any, after: int) -> dict[str, dict[str, float]]:
    """Every case's event stamps in the log past `after` (the set-up's events lie before it)."""
    cases: dict[str, dict[str, float]] = {}
    while True:
        batch, last = store.read_batch(after, 5000, EVENT_TYPES)
        for positioned in batch:
            note(cases, positioned)
        if last <= after:
            return cases
        after = last


def admin_token(url: str) -> str:
    """A bearer token of `admin` (admin: deploys, publishes, opens cases and completes any task) from the API's
    own issuer (the dev password)."""
    reply = httpx.post(f"{url}/auth/token", data={"grant_type": "password", "username": "admin",
                                                  "password": "casestream", "tenant": "acme"}, timeout=10)
    reply.raise_for_status()
    return str(reply.json()["access_token"])


def set_up(url: str, token: str) -> None:
    """Deploy the lifecycle and publish the definition naming it (a refusal stops the bench, with its answer)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        deployed = client.post("/api/processes", json={"files": [{"name": "bench.bpmn", "content": MODEL}]})
        if deployed.status_code != 200:
            raise RuntimeError(f"deploy refused: {deployed.status_code} {deployed.text}")
        deadline = time.monotonic() + 60
        while True:  # the definition names the process: it is refused until the deployment is known
            published = client.post("/api/definitions", json=DEFINITION)
            if published.status_code == 200:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"publishing the definition refused: {published.status_code} {published.text}")
            time.sleep(0.2)


async def drive(run: Run, url: str, token: str, store: Any, rate: float, seconds: float,
                cpu: Callable[[], dict[str, float]]) -> None:
    """Open cases at `rate`/s for `seconds` (open loop), complete every user task as it appears, until every
    instance finished or DRAIN_S passed after the last open."""
    pool: asyncio.Queue[RawHttp] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        pool.put_nowait(RawHttp(url, token))
    opened: set[str] = set()
    finished: set[str] = set()
    completions: set[asyncio.Future[bytes | None]] = set()
    after = await asyncio.to_thread(store.max_position)
    total = int(rate * seconds)

    async def post(path: str, body: dict[str, Any], ok: str) -> bytes | None:
        client = await pool.get()
        try:
            status, content = await client.exchange(path, body)
        finally:
            pool.put_nowait(client)
        if status != ok:
            run.error(f"{path.split('/')[2]} {status}")
            return None
        return content

    async def open_case(n: int, due: float) -> None:
        content = await post("/api/cases", {"definition_key": "pbench", "title": f"bench {n}", "data": {}}, "201")
        if content is not None:
            run.answered.append(time.monotonic() - due)
            opened.add(str(json.loads(content)["id"]))

    async def follow(stop: asyncio.Event) -> None:
        nonlocal after
        while not stop.is_set():
            batch, last = await asyncio.to_thread(store.read_batch, after, 2000,
                                                  frozenset({"TaskCreated", "ProcessCompleted"}))
            after = max(after, last)
            for positioned in batch:
                event = positioned.event
                if type(event).__name__ == "ProcessCompleted":
                    finished.add(str(event.case_id))
                elif getattr(event, "process_instance_key", None):
                    done = asyncio.ensure_future(post(f"/api/tasks/{event.aggregate_id}/complete", {"data": {}}, "200"))
                    completions.add(done)
                    done.add_done_callback(completions.discard)
            if not batch:
                await asyncio.sleep(LOG_POLL_S)

    stop = asyncio.Event()
    follower = asyncio.ensure_future(follow(stop))
    cpu_before = cpu()
    start = time.monotonic() + 0.1
    sends = []
    for n in range(total):
        due = start + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sends.append(asyncio.ensure_future(open_case(n, due)))
    await asyncio.gather(*sends)
    run.sent = total
    deadline = time.monotonic() + DRAIN_S
    while time.monotonic() < deadline and not opened <= finished:
        await asyncio.sleep(0.1)
    run.elapsed = time.monotonic() - start
    run.completed = len(opened & finished)
    run.cpu = {name: used - cpu_before.get(name, 0.0) for name, used in cpu().items()}
    run.load = machine_line()
    stop.set()
    await follower
    while not pool.empty():
        await pool.get_nowait().close()


def warm_up(url: str, token: str, store: Any) -> None:
    """One instance through the whole flow before timing (the engine loads, the deployment is learned)."""
    scratch = Run("warm-up")
    asyncio.run(drive(scratch, url, token, store, 2.0, 1.0, dict))
    if scratch.completed < scratch.sent:
        raise RuntimeError(f"the warm-up instances did not run: {scratch.errors}")


def measure(run: Run, url: str, token: str, store: Any, rate: float, seconds: float,
            cpu: Callable[[], dict[str, float]]) -> None:
    set_up(url, token)
    warm_up(url, token, store)
    floor = store.max_position()
    asyncio.run(drive(run, url, token, store, rate, seconds, cpu))
    run.cases = timelines(store, floor)


# ----------------------------------------------------------------------------------------------------------------
# the two modes


@contextlib.contextmanager
def distributed(work: Path) -> Iterator[tuple[str, Any, Callable[[], dict[str, float]]]]:
    """Relay, two workers, the process worker and one API replica on a fresh database; (url, store, CPU reader)."""
    import sys

    sys.path.insert(0, str(ROOT))
    from adapters.event_store import postgres_event_store
    from infra import registry
    from tests.e2e.distributed import Deployment, drop_deployment, wait_ready

    for name in ("postgres", "kafka", "ferretdb", "opa"):
        server = registry.get(name)
        if not server.running():
            print(f"(starting {name}; it is left running)")
            server.up(keep_data=True)
    postgres = registry.get("postgres")
    dbname = f"bench_procdist_{uuid.uuid4().hex[:8]}"
    with fresh_postgres_db(dbname) as info:
        deployment = Deployment(info, dbname, registry.get("kafka").info()["bootstrap"],
                                registry.get("ferretdb").info()["uri"], work, opa_url=registry.get("opa").info()["url"])
        (work / "data").mkdir(parents=True, exist_ok=True)
        try:
            relay = deployment.start_relay()
            deadline = time.monotonic() + 60
            while "starts after position" not in relay.output():
                if time.monotonic() > deadline or not relay.alive():
                    raise RuntimeError(f"the relay did not start:\n{relay.output()[-3000:]}")
                time.sleep(0.2)
            workers = [deployment.start_worker(f"w{i}") for i in range(2)]
            # as casestream/stack.py starts it: its own folder for its read models and the manager's position
            engine = deployment.start("process-worker", ["process-worker"], {
                "CASESTREAM_POLICY_ENGINE": "embedded", "CASESTREAM_PROCESSES": "on",
                "CASESTREAM_DATA_DIR": str(work / "process-worker")})
            api, url = deployment.start_api()
            wait_ready(url, api)
            store = postgres_event_store(host=info["host"], port=int(info["port"]), dbname=dbname, user=info["user"],
                                         password=info["password"], pool_size=2)
            pids = {s.name: s.pid for s in (relay, *workers, engine, api)}
            try:
                yield url, store, lambda: {name: process_tree_cpu_seconds(pid) for name, pid in pids.items()}
            finally:
                store.close()
                if not engine.alive():
                    print(f"process-worker died:\n{engine.output()[-3000:]}")
        finally:
            deployment.stop_all()
            with contextlib.suppress(Exception):
                drop_deployment(postgres, deployment)


@contextlib.contextmanager
def embedded(work: Path) -> Iterator[tuple[str, Any, Callable[[], dict[str, float]]]]:
    """`casestream serve` with processes on, SQLite; (url, store, CPU reader)."""
    from adapters.event_store import sqlite_event_store

    data = work / "embedded"
    with casestream_serve(data, {"CASESTREAM_PROCESSES": "on", "CASESTREAM_OIDC_ISSUERS": "{}"}) as served:
        store = sqlite_event_store(data / "events.sqlite")
        try:
            yield served.url, store, lambda: {"serve": process_tree_cpu_seconds(served.process.pid)}
        finally:
            store.close()


# ----------------------------------------------------------------------------------------------------------------


def report(runs: list[Run], rate: float) -> None:
    rows = []
    for run in runs:
        per = max(1, run.finished())
        rows.append([run.name, run.sent, run.finished(), run.sent / run.elapsed if run.elapsed else 0.0,
                     sum(run.cpu.values()) / per * 1000,
                     ", ".join(f"{k} {v / per * 1000:.1f}" for k, v in run.cpu.items()),
                     ", ".join(f"{k}: {v}" for k, v in run.errors.items()) or "none"])
    table(["mode", "instances sent", "finished", "instances/s (incl. drain)", "CPU ms/instance",
           "of which (ms/instance)", "errors"], rows)
    rows = []
    for name, start, end in MEASURES:
        for run in runs:
            values = run.samples(start, end)
            rows.append([name, run.name, len(values), ms(percentile(values, 50)), ms(percentile(values, 95)),
                         ms(percentile(values, 99)), ms(max(values, default=float("nan")))])
    for run in runs:  # the API's own share: its append is inside "case opened -> ..." (the stamp precedes it)
        rows.append(["API: POST /api/cases scheduled -> 201", run.name, len(run.answered),
                     ms(percentile(run.answered, 50)), ms(percentile(run.answered, 95)),
                     ms(percentile(run.answered, 99)), ms(max(run.answered, default=float("nan")))])
    table(["measure (stored timestamps)", "mode", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows)
    for run in runs:
        print(f"{run.name}: load at the end of its run: {run.load.split('load average ')[1].split(';')[0]}")
    distributed_run = next((r for r in runs if r.name == "distributed"), None)
    if distributed_run is not None:
        for name in HEADLINE:
            start, end = next((s, e) for n, s, e in MEASURES if n == name)
            p99 = ms(percentile(distributed_run.samples(start, end), 99))
            print(f"distributed {name}: p99 {p99:.1f} ms at {rate:g} instances/s, target < {TARGET_P99_MS:.0f} ms: "
                  f"{verdict(p99, TARGET_P99_MS, higher_is_better=False)}")
    embedded_run = next((r for r in runs if r.name == "embedded"), None)
    if distributed_run is not None and embedded_run is not None:
        start, end = next((s, e) for n, s, e in MEASURES if n == HEADLINE[0])
        ratio = percentile(distributed_run.samples(start, end), 99) / percentile(embedded_run.samples(start, end), 99)
        print(f"RATIO distributed / embedded, p99 of {HEADLINE[0]} = {ratio:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 s per mode")
    parser.add_argument("--rate", type=float, default=10.0, help="instances opened per second (default 10)")
    parser.add_argument("--seconds", type=float, help="how long each mode opens cases (default 30)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the embedded run")
    parser.add_argument("--servers-from", type=Path, metavar="DIR",
                        help="run the distributed mode's processes from another checkout (a `git worktree` of an "
                             "older commit: before/after comparisons with the same bench; use with --no-baseline)")
    args = parser.parse_args()
    if args.servers_from is not None:
        from tests.e2e import distributed as e2e

        # the deployment starts `python -m casestream` with this as working folder: its packages come first
        e2e.ROOT = args.servers_from.resolve()
        print(f"(the distributed processes run from {e2e.ROOT})")
    seconds = args.seconds or (10.0 if args.quick else 30.0)
    banner("processes in the distributed mode: job and step latency",
           f"{args.rate:g} instances/s opened through the API for {seconds:g} s per mode; lifecycle: service task, "
           "user task (completed through the API), service task")
    runs = []
    with temp_dir("procdist") as work:
        run = Run("distributed")
        with distributed(work / "distributed") as (url, store, cpu):
            measure(run, url, admin_token(url), store, args.rate, seconds, cpu)
        runs.append(run)
        if not args.no_baseline:
            run = Run("embedded")
            with embedded(work) as (url, store, cpu):
                measure(run, url, admin_token(url), store, args.rate, seconds, cpu)
            runs.append(run)
    report(runs, args.rate)
    print(machine_line())


if __name__ == "__main__":
    main()
