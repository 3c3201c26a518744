"""End-to-end lag of the distributed mode: a command accepted (stored in PostgreSQL) until the MongoDB read models
include it, at a fixed command rate, with the time each stage of the event's trip took, beside the embedded
runner's lag on the same rate in the same run.

Distributed: `casestream relay` and two `casestream worker` processes (`--workers N`; real subprocesses) on the private
PostgreSQL, Kafka and FerretDB servers of infra/ (started if needed, left running). Commands go through the
in-process CommandBus on PostgreSQL from client threads, open loop (each command has a scheduled send time; a
late send counts its delay). A command is *visible* when the read models include its position, as `wait_for`
decides it (relay partition heads + worker tracking, adapters/read_progress.py), polled every 50 ms (each poll
costs FerretDB a scan of the tracking collection).

Stages: the relay stamps each record with when it read the event from the store (header
`casestream-relay-read-at`), Kafka's record timestamp says when it was sent, and the worker's tracking document
of each partition carries, for the last event it applied there, when it was received, taken into a batch and
written (docs/topics.md). Every tracking document state the poller sees is one sample (the last event of a
partition in a batch): stored (command accepted) -> read by the relay -> sent -> received by a worker ->
batched -> written -> visible.

The same snapshots are also judged by the read-progress rule of contract 1.0.0 (relay heads without the spans
of 1.2.0, docs/topics.md), printed as a second distributed row: what the spans change, in the same run.

Baseline (same run, same rate, same PostgreSQL): the embedded runner (adapters/embedded_runner.py) folding the
log into SQLite read models in this process; visible when `runner.position` reaches the command's position.

    python bench/e2e_lag.py --quick      # 200 commands/s for 15 s
    python bench/e2e_lag.py              # 200 commands/s for 60 s (the target: p99 < 1 s)
    python bench/e2e_lag.py --quick --workers 1 --rate 50 --no-baseline
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common
from common import banner, fresh_postgres_db, ms, percentile, table, temp_dir, verdict

TARGET_P99_MS = 1000.0
POLL_S = 0.05  # each poll is a scan of the tracking collection on FerretDB (~10-15 ms under load)
# the trip of an event, in order: (stage name, its start stamp, its end stamp)
STAGES = (("stored -> relay read", "stored", "read"), ("relay read -> sent", "read", "sent"),
          ("sent -> worker received", "sent", "received"), ("received -> batched", "received", "batched"),
          ("batched -> written", "batched", "written"), ("written -> visible", "written", "visible"))
CLIENTS = 8
CASES = 400


@dataclass
class Run:
    """One measured phase: when each command was scheduled / accepted and its log position."""

    name: str
    scheduled: list[float] = field(default_factory=list)
    accepted: list[float] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    visible: dict[int, float] = field(default_factory=dict)  # position -> first time seen included
    # the same snapshots judged by the rule before contract 1.2.0 (relay heads without spans), same run
    visible_heads_only: dict[int, float] = field(default_factory=dict)
    samples: dict[int, dict[str, float]] = field(default_factory=dict)  # position -> stage stamps (Unix s)
    errors: int = 0
    elapsed: float = 0.0
    floor: int = 0  # the log's head before the run: samples at or below it are the set-up's
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process during the timed phase
    cpu_wall: float = 0.0  # seconds of that phase (sending and draining)


def _bus_and_cases(store: object) -> tuple[object, list[uuid.UUID]]:
    from commands import messages as m
    from commands.bus import Actor, CommandBus
    from tests.unit.conftest import claim_definition

    actor = Actor("bench", "acme", ("admin", "supervisor", "caseworker"))
    bus = CommandBus(store)  # type: ignore[arg-type]
    bus.dispatch(claim_definition(), actor)
    ids = [uuid.UUID(bus.dispatch(m.OpenCase(definition_key="claim", title=f"lag {i}", data={"amount": i}),
                                  actor).id) for i in range(CASES)]
    return bus, ids


def drive(run: Run, bus: object, cases: list[uuid.UUID], rate: float, seconds: float,
          watch: Callable[[Run, threading.Event], None]) -> None:
    """Send AddComment at `rate`/s for `seconds` from CLIENTS threads (open loop) while `watch` records visibility."""
    from commands import messages as m
    from commands.bus import Actor

    actor = Actor("bench", "acme", ("caseworker",))
    total = int(rate * seconds)
    start = time.time() + 0.2
    lock = threading.Lock()
    slots = iter(range(total))
    results: list[tuple[float, float, int]] = []
    stop = threading.Event()

    def client() -> None:
        while True:
            with lock:
                n = next(slots, None)
            if n is None:
                return
            due = start + n / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            try:
                result = bus.dispatch(m.AddComment(case_id=cases[n % len(cases)], body=f"c{n}"), actor)  # type: ignore[attr-defined]
            except Exception:
                with lock:
                    run.errors += 1
                continue
            done = time.time()
            with lock:
                results.append((due, done, result.position))

    watcher = threading.Thread(target=watch, args=(run, stop), daemon=True)
    watcher.start()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.elapsed = time.time() - start
    last = max((p for _d, _a, p in results), default=0)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p >= last for p in run.visible):
        time.sleep(0.05)
    stop.set()
    watcher.join(timeout=5)
    for due, done, position in sorted(results):
        run.scheduled.append(due)
        run.accepted.append(done)
        run.positions.append(position)


def watcher(read_position: Callable[[], int], interval: float = POLL_S) -> Callable[[Run, threading.Event], None]:
    """Poll the read models' position; note when each new position was first seen."""

    def watch(run: Run, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                position = read_position()
            except Exception:
                position = -1
            now = time.time()
            if position >= 0 and position not in run.visible:
                run.visible[position] = now
            time.sleep(interval)

    return watch


def staged_watcher(load_spans: Callable[[], tuple[int, Any, Any]], tracking: Any,
                   interval: float = POLL_S) -> Callable[[Run, threading.Event], None]:
    """Poll relay heads and the workers' tracking documents (with their stage stamps): note when each read-model
    position was first seen and every new tracking state as a sample of its event's stages."""
    from adapters.read_progress import TRACKING_PREFIX, Snapshot

    def watch(run: Run, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                relay_position, heads, spans = load_spans()
                docs = list(tracking.find({"_id": {"$regex": f"^{TRACKING_PREFIX}"}}, {"position": 1, "stages": 1}))
            except Exception:
                time.sleep(interval)
                continue
            now = time.time()
            applied: dict[tuple[str, int], int] = {}
            for doc in docs:
                topic, _, partition = str(doc["_id"])[len(TRACKING_PREFIX):].rpartition(":")
                position = int(doc["position"])
                applied[(topic, int(partition))] = position
                if position > run.floor and position not in run.samples and doc.get("stages"):
                    run.samples[position] = {name: float(at) for name, at in doc["stages"].items()}
            position = Snapshot(relay_position, heads, applied, spans).position
            if position not in run.visible:
                run.visible[position] = now
            old = Snapshot(relay_position, heads, applied).position
            if old not in run.visible_heads_only:
                run.visible_heads_only[old] = now
            time.sleep(interval)

    return watch


def stage_times(run: Run) -> tuple[dict[str, list[float]], list[float]]:
    """Seconds per stage over the samples, and the samples' whole trip (accepted -> visible)."""
    commands = sorted(zip(run.positions, run.accepted, strict=True))
    ends = [p for p, _ in commands]
    seen = sorted(run.visible.items())
    seen_positions = [p for p, _ in seen]
    out: dict[str, list[float]] = {name: [] for name, _a, _b in STAGES}
    trips: list[float] = []
    for position, stamps in run.samples.items():
        i = bisect.bisect_left(ends, position)  # the command that stored it: the first ending at or after it
        if i == len(ends):
            continue
        at = dict(stamps, stored=commands[i][1])
        j = bisect.bisect_left(seen_positions, position)
        if j < len(seen):
            at["visible"] = seen[j][1]
            trips.append(at["visible"] - at["stored"])
        for name, start, end in STAGES:
            if start in at and end in at:
                out[name].append(at[end] - at[start])
    return out, trips


def stage_table(run: Run) -> None:
    """Print p50/p99/max per stage of the sampled events' trip."""
    per_stage, trips = stage_times(run)
    rows: list[list[object]] = [[name, len(v), ms(percentile(v, 50)), ms(percentile(v, 99)),
                                 ms(max(v, default=float("nan")))] for name, v in per_stage.items()]
    rows.append(["whole trip (these samples)", len(trips), ms(percentile(trips, 50)), ms(percentile(trips, 99)),
                 ms(max(trips, default=float("nan")))])
    print("\nstages of the distributed trip (each sample: the last event of a partition in a worker batch; "
          "stamps in Unix time, one machine)")
    table(["stage", "samples", "p50 ms", "p99 ms", "max ms"], rows)


def lags(run: Run, heads_only: bool = False) -> list[float]:
    """Per command: first time a read-model position >= its position was seen, minus when it was accepted
    (`heads_only`: as the rule before contract 1.2.0 judged the same snapshots)."""
    seen = sorted((run.visible_heads_only if heads_only else run.visible).items())
    out: list[float] = []
    j = 0
    for position, accepted in sorted(zip(run.positions, run.accepted, strict=True)):
        while j < len(seen) and seen[j][0] < position:
            j += 1
        if j == len(seen):
            continue
        out.append(max(0.0, seen[j][1] - accepted))
    return out


def embedded_phase(pg: dict[str, str], rate: float, seconds: float, tmp: Path) -> Run:
    from adapters.embedded_runner import EmbeddedRunner
    from adapters.event_store import postgres_event_store
    from adapters.sqlite_documents import SqliteDocumentStore
    from projections.catalog import ALL

    store = postgres_event_store(host=pg["host"], port=int(pg["port"]), dbname=pg["dbname"], user=pg["user"],
                                 password=pg["password"], pool_size=CLIENTS + 2)
    documents = SqliteDocumentStore(tmp / "views.sqlite", ALL)
    runner = EmbeddedRunner(store, documents, ALL)
    try:
        bus, cases = _bus_and_cases(store)
        runner.start()
        runner.wait(store.max_position(), 60)
        run = Run("embedded runner (baseline)")
        drive(run, bus, cases, rate, seconds, watcher(lambda: runner.position))
        return run
    finally:
        runner.stop()
        documents.close()
        store.close()


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([*common.casestream_exe(), *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                cwd=str(common.ROOT), start_new_session=True)


def distributed_phase(pg: dict[str, str], rate: float, seconds: float, tmp: Path, workers: int = 2) -> Run:
    from pymongo import MongoClient

    from adapters.event_store import postgres_event_store
    from adapters.kafka_relay import HeadStore, positions_for
    from adapters.read_progress import KafkaReadProgress, mongo_tracking
    from infra import registry
    from infra.process import stop_children

    kafka = registry.get("kafka")
    ferret = registry.get("ferretdb")
    for server in (kafka, ferret):
        if server.up():
            print(f"(started {server.name}; it is left running)")
    bootstrap, mongo_url = kafka.info()["bootstrap"], ferret.info()["uri"]
    prefix, database, group = (f"lag{uuid.uuid4().hex[:8]}", f"bench_lag_{uuid.uuid4().hex[:6]}",
                               f"bench-lag-{uuid.uuid4().hex[:6]}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASESTREAM_")}
    env.update(common.postgres_env(pg))
    env.update({"CASESTREAM_KAFKA_BOOTSTRAP": bootstrap, "CASESTREAM_KAFKA_TOPIC_PREFIX": prefix,
                "CASESTREAM_MONGO_URL": mongo_url, "CASESTREAM_MONGO_DATABASE": database,
                "CASESTREAM_WORKER_GROUP": group, "CASESTREAM_WORKER_REBALANCE_TIMEOUT": "2",
                "CASESTREAM_RELAY_POLL_INTERVAL": "0.02", "CASESTREAM_WORKER_BATCH_WITHIN": "0.02",
                "CASESTREAM_DATA_DIR": str(tmp), "PYTHONUNBUFFERED": "1"})
    store = postgres_event_store(host=pg["host"], port=int(pg["port"]), dbname=pg["dbname"], user=pg["user"],
                                 password=pg["password"], pool_size=CLIENTS + 2)
    client: MongoClient[dict[str, object]] = MongoClient(mongo_url)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        bus, cases = _bus_and_cases(store)
        relay_log = tmp / "relay.log"
        procs.append(_spawn(["relay"], env, relay_log))
        _wait(lambda: "starts after position" in relay_log.read_text(errors="replace"), 90, "relay", relay_log)
        for i in range(workers):
            procs.append(_spawn(["worker", "--name", f"lag-w{i}"], env, tmp / f"worker-{i}.log"))
        positions = positions_for(store)
        assert isinstance(positions, HeadStore)
        progress = KafkaReadProgress(lambda: positions.load_spans("kafka"), mongo_tracking(client[database]))
        head = store.max_position()
        _wait(lambda: progress.snapshot(0).includes(head), 180, "workers to fold the set-up", tmp / "worker-0.log")
        run = Run(f"distributed (relay -> Kafka -> {workers} worker{'s' if workers > 1 else ''} -> MongoDB)",
                  floor=head)
        watched = {"relay": procs[0].pid, **{f"worker {i}": procs[1 + i].pid for i in range(workers)},
                   "FerretDB": ferret.pid(), "PostgreSQL (all of it)": registry.get("postgres").pid(),
                   "Kafka": kafka.pid(), "this bench (CommandBus, poller)": os.getpid()}
        before, started = cpu_seconds(watched), time.monotonic()
        drive(run, bus, cases, rate, seconds,
              staged_watcher(lambda: positions.load_spans("kafka"), client[database]["tracking"]))
        after = cpu_seconds(watched)
        run.cpu, run.cpu_wall = {name: after[name] - before[name] for name in watched}, time.monotonic() - started
        return run
    finally:
        stop_children(procs)
        for i in range(workers):  # how each worker's time went (its last progress line)
            lines = [line for line in (tmp / f"worker-{i}.log").read_text(errors="replace").splitlines()
                     if "seconds by phase" in line] if (tmp / f"worker-{i}.log").exists() else []
            print(f"worker {i}: {lines[-1].split('worker ', 1)[-1] if lines else '(no progress line)'}")
        client.drop_database(database)
        client.close()
        store.close()
        asyncio.run(_delete_topics(bootstrap, prefix))


def cpu_seconds(pids: dict[str, int | None]) -> dict[str, float]:
    """CPU seconds so far of each named process and everything below it (nan if unknown)."""
    return {name: common.process_tree_cpu_seconds(pid) if pid else float("nan") for name, pid in pids.items()}


def cpu_table(run: Run) -> None:
    """Print where the CPU went while the commands were sent and folded (2 cores: 2 CPU-s per second)."""
    wall = max(run.cpu_wall, 1e-9)
    rows: list[list[object]] = [[name, f"{s:.1f}", f"{s / wall:.2f}", f"{s * 1000 / max(len(run.accepted), 1):.2f}"]
                                for name, s in sorted(run.cpu.items(), key=lambda kv: -kv[1])]
    print(f"\nCPU during the distributed run ({wall:.0f} s of sending and draining)")
    table(["process", "CPU s", "cores", "CPU ms per command"], rows)


def _wait(check: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"{what} not ready in {timeout:.0f}s:\n{tail}")
        time.sleep(0.2)


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(f"{prefix}.")]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


def row(run: Run, heads_only: bool = False) -> list[object]:
    values = lags(run, heads_only)
    late = [a - s for s, a in zip(run.scheduled, run.accepted, strict=True)]
    achieved = len(run.accepted) / run.elapsed if run.elapsed else 0.0
    name = f"{run.name}, read by the rule before 1.2.0" if heads_only else run.name
    return [name, len(run.accepted), achieved, ms(percentile(late, 99)), ms(percentile(values, 50)),
            ms(percentile(values, 99)), ms(max(values, default=float("nan"))), run.errors,
            len(run.accepted) - len(values)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 commands/s for 15 s")
    parser.add_argument("--rate", type=float, help="commands per second (default 200)")
    parser.add_argument("--seconds", type=float, help="how long (default 60)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the embedded runner's run")
    parser.add_argument("--workers", type=int, default=2, help="stream workers (default 2)")
    args = parser.parse_args()
    rate = args.rate or 200.0
    seconds = args.seconds or (15.0 if args.quick else 60.0)
    if rate <= 0 or seconds <= 0 or args.workers < 1:
        parser.error("--rate and --seconds must be positive, --workers at least 1")
    banner("end-to-end lag: command accepted -> in the read models",
           f"AddComment at {rate:,.0f}/s for {seconds:.0f}s, {CLIENTS} client threads, CommandBus on PostgreSQL")
    sys.path.insert(0, str(common.ROOT))
    with temp_dir("e2e-lag") as tmp:
        baseline = None
        if not args.no_baseline:
            with fresh_postgres_db(f"bench_lag_emb_{os.getpid()}") as pg:
                (tmp / "emb").mkdir()
                baseline = embedded_phase(pg, rate, seconds, tmp / "emb")
        with fresh_postgres_db(f"bench_lag_dist_{os.getpid()}") as pg:
            (tmp / "dist").mkdir()
            distributed = distributed_phase(pg, rate, seconds, tmp / "dist", args.workers)
    runs = [r for r in (baseline, distributed) if r is not None]
    table(["pipeline", "commands", "sent/s", "send late p99 ms", "lag p50 ms", "lag p99 ms", "lag max ms",
           "errors", "never seen"], [*(row(r) for r in runs), row(distributed, heads_only=True)])
    stage_table(distributed)
    cpu_table(distributed)
    print(common.machine_line())
    p99 = percentile(lags(distributed), 99)
    print(f"target: distributed p99 < {TARGET_P99_MS:.0f} ms at 200 commands/s for 60 s -> "
          f"{verdict(ms(p99), TARGET_P99_MS, higher_is_better=False)} (at {rate:,.0f}/s for {seconds:.0f}s)")
    base = percentile(lags(baseline), 99) if baseline is not None else 0.0
    print(f"RATIO distributed/embedded lag p99: {p99 / base:.1f}x" if base > 0 else "RATIO n/a (no baseline)")

if __name__ == "__main__":
    main()
