"""Write path: commands/s through the HTTP API (`casestream serve` in a subprocess) on SQLite and PostgreSQL.

Per backend:
  * baseline: a raw `eventsourcing` Application saving a trivial aggregate in a single-client loop (saves/s),
    on the same backend (a separate file / database), measured in this run;
  * closed loop: N concurrent keep-alive clients (default 32) send a mix of AssignCase / UpdateCaseData /
    AddComment on pre-opened cases each client owns, plus ~10% OpenCase; throughput and p50/p99 latency;
  * open loop: a fixed rate (default 1,000 commands/s for 15 s); latency counted from each command's
    scheduled send time (so a stalled server shows up as latency, not as a lower rate); p50/p99.

Targets printed beside the figures: PostgreSQL >= 2,000 commands/s with 32 clients; p99 < 50 ms at 1,000/s.

    python bench/write_path.py --quick          # < 1 min
    python bench/write_path.py                  # defaults (a few minutes)
    python bench/write_path.py --backend postgres --profile   # also cProfile the in-process bus
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import itertools
import os
import pstats
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common
from common import RawHttp, banner, casestream_serve, percentile, table, temp_dir, verdict
from eventsourcing.domain import Aggregate, event

TARGET_PG_THROUGHPUT = 2_000.0
TARGET_P99_MS = 50.0
CASES_PER_CLIENT = 32  # open cases each client works on (--cases-per-client)


# ----------------------------------------------------------------------------------------------------------------
# baseline: raw eventsourcing


class Counter_(Aggregate):
    """The trivial aggregate of the baseline: one small event per save."""

    def __init__(self) -> None:
        self.n = 0

    @event("Incremented")
    def inc(self) -> None:
        self.n += 1


def raw_eventsourcing_rate(backend: str, where: Path | dict[str, str], seconds: float) -> tuple[int, float, float]:
    """(saves, saves/s, CPU seconds of this process per save) of a single-client loop on a trivial
    eventsourcing aggregate (one new event per save)."""
    from eventsourcing.application import Application

    if backend == "sqlite":
        assert isinstance(where, Path)
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(where), "SQLITE_LOCK_TIMEOUT": "30"}
    else:
        assert isinstance(where, dict)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": where["dbname"],
            "POSTGRES_HOST": where["host"], "POSTGRES_PORT": where["port"], "POSTGRES_USER": where["user"],
            "POSTGRES_PASSWORD": where["password"],
        }
    app: Application[Any] = Application(env=env)
    if backend == "sqlite":
        # the same durability as casestream's default (WAL + synchronous=NORMAL), for a like-for-like baseline
        from adapters.event_store import _SyncModePool

        datastore = app.recorder.datastore  # type: ignore[attr-defined]
        datastore.pool.close()
        pool = _SyncModePool(db_name=str(where), lock_timeout=30, pool_size=5)
        pool.synchronous = "NORMAL"
        datastore.pool = pool
    aggregates = [Counter_() for _ in range(32)]
    app.save(*aggregates)
    saves = 0
    cpu0 = time.process_time()
    started = time.perf_counter()
    deadline = started + seconds
    for aggregate in itertools.cycle(aggregates):
        aggregate.inc()
        app.save(aggregate)
        saves += 1
        if saves % 50 == 0 and time.perf_counter() > deadline:
            break
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    app.close()
    return saves, saves / elapsed, cpu / saves


# ----------------------------------------------------------------------------------------------------------------
# HTTP load


@dataclass
class OwnedCase:
    id: str
    assignee: str | None = None
    updates: int = 0


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    ops: Counter[str] = field(default_factory=Counter)
    shed: int = 0


def definition_body() -> dict[str, Any]:
    spec: dict[str, Any] = common.claim_spec().to_dict()
    spec["stages"] = [{"key": s["key"], "name": s["name"], "transitions": s["transitions"]} for s in spec["stages"]]
    return spec


def open_body(rng: random.Random) -> dict[str, Any]:
    city = rng.choice(common.CITIES)
    return {
        "definition_key": "claim", "title": f"Claim in {city}",
        "data": {"claimant": f"ana {rng.randint(1, 99_999)}", "city": city, "amount": rng.randint(50, 20_000)},
    }


def next_request(rng: random.Random, case: OwnedCase, seq: int) -> tuple[str, str, dict[str, Any]]:
    """(operation, path, body) for one command of the mix."""
    roll = rng.random()
    if roll < 0.10:
        return "OpenCase", "/api/cases", open_body(rng)
    if roll < 0.40:
        choices = [u for u in common.USERS if u != case.assignee]
        case.assignee = choices[seq % len(choices)]
        return "AssignCase", f"/api/cases/{case.id}/assign", {"assignee": case.assignee}
    if roll < 0.70:
        case.updates += 1
        return "UpdateCaseData", f"/api/cases/{case.id}/data", {"patch": {"priority": case.updates % 1000 + 1,
                                                                          "notes": f"update {seq}"}}
    return "AddComment", f"/api/cases/{case.id}/comments", {"body": f"comment {seq}: waiting for documents"}


async def prepare(client: Any, supervisor: str, worker: str, n_cases: int, publish: bool = True) -> list[OwnedCase]:
    """Publish the definition (unless already done) and open n_cases cases (not measured)."""
    if publish:
        r = await client.post("/api/definitions", json=definition_body(),
                              headers={"Authorization": f"Bearer {supervisor}"})
        if r.status_code >= 300:
            raise RuntimeError(f"publishing the definition failed: {r.status_code} {r.text}")
    rng = random.Random(1)
    sem = asyncio.Semaphore(16)

    async def one() -> OwnedCase:
        async with sem:
            resp = await client.post("/api/cases", json=open_body(rng), headers={"Authorization": f"Bearer {worker}"})
            if resp.status_code != 201:
                raise RuntimeError(f"opening a case failed: {resp.status_code} {resp.text}")
            return OwnedCase(resp.json()["id"])

    return list(await asyncio.gather(*(one() for _ in range(n_cases))))


async def closed_loop(
    url: str, token: str, cases: list[OwnedCase], clients: int, seconds: float, max_commands: int,
    per_client: int = CASES_PER_CLIENT, batch: int = 1,
) -> tuple[Tally, float, float]:
    """N clients (one connection each), each sending its next command (or, with batch > 1, its next `batch`
    commands as one POST /api/commands) as soon as the previous one is answered."""
    tally = Tally()
    counter = itertools.count()
    conns = [RawHttp(url, token) for _ in range(clients)]
    cpu0 = time.process_time()
    started = time.perf_counter()
    deadline = started + seconds

    async def worker(index: int) -> None:
        rng = random.Random(index)
        mine = cases[index * per_client:(index + 1) * per_client]
        turn = 0
        while time.perf_counter() <= deadline:
            picked: list[tuple[OwnedCase, str, str, dict[str, Any]]] = []
            for _ in range(batch):
                seq = next(counter)
                if seq >= max_commands:
                    break
                case = mine[turn % len(mine)]
                turn += 1
                picked.append((case, *next_request(rng, case, seq)))
            if not picked:
                return
            t0 = time.perf_counter()
            if batch > 1:
                items = [batch_item(op, body, case) for case, op, _path, body in picked]
                await send_batch(conns[index], items, tally, [t0] * len(items))
                continue
            _case, op, path, body = picked[0]
            status = await conns[index].post(path, body)
            tally.latencies.append(time.perf_counter() - t0)
            tally.statuses[status] += 1
            tally.ops[op] += 1

    await asyncio.gather(*(worker(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    for conn in conns:
        await conn.close()
    return tally, elapsed, cpu


async def open_loop(
    url: str, token: str, cases: list[OwnedCase], rate: float, seconds: float, drain: float,
    connections: int = 128, max_queued: int = 1000,
) -> tuple[Tally, float, float]:
    """Send at a fixed rate regardless of answers; latency from each command's scheduled time.

    Commands are queued at their scheduled times and sent by `connections` keep-alive connections; when more
    than max_queued wait, the newest is shed (counted). Stragglers get `drain` seconds after the last one.
    """
    tally = Tally()
    rng = random.Random(99)
    queue: asyncio.Queue[tuple[float, str, str, dict[str, Any]]] = asyncio.Queue(maxsize=max_queued)

    async def sender(conn: RawHttp) -> None:
        while True:
            scheduled, op, path, body = await queue.get()
            try:
                status = await conn.post(path, body)
                tally.latencies.append(time.perf_counter() - scheduled)
                tally.statuses[status] += 1
                tally.ops[op] += 1
            finally:
                queue.task_done()

    conns = [RawHttp(url, token) for _ in range(connections)]
    senders = [asyncio.create_task(sender(c)) for c in conns]
    total = int(rate * seconds)
    cpu0 = time.process_time()
    started = time.perf_counter()
    for i in range(total):
        scheduled = started + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif i % 50 == 0:
            await asyncio.sleep(0)  # behind schedule: still let the senders run
        op, path, body = next_request(rng, cases[i % len(cases)], i)
        try:
            queue.put_nowait((scheduled, op, path, body))
        except asyncio.QueueFull:
            tally.shed += 1
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(queue.join(), timeout=drain)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    unfinished = total - tally.shed - len(tally.latencies)
    if unfinished:
        tally.statuses["unfinished"] += unfinished
    for task in senders:
        task.cancel()
    await asyncio.gather(*senders, return_exceptions=True)
    for conn in conns:
        await conn.close()
    return tally, elapsed, cpu


async def settle(url: str, token: str, case: OwnedCase) -> float:
    """Wait until the server has folded everything sent so far (so that one run's backlog does not land in the
    next run's figures): one more command, then a query waiting for its position. Returns the seconds waited."""
    import httpx

    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=120, headers=headers) as client:
        reply = await client.post(f"/api/cases/{case.id}/comments", json={"body": "settle"})
        position = reply.json()["position"]
        while (await client.get("/api/cases", params={"limit": 1, "wait_for": position, "wait_timeout": 60})
               ).status_code == 504:
            pass
    await asyncio.sleep(0.5)  # the process manager follows the read models
    return time.perf_counter() - started


def batch_item(op: str, body: dict[str, Any], case: OwnedCase) -> dict[str, Any]:
    """One command of the mix as an item of POST /api/commands."""
    return {"type": op, **body} if op == "OpenCase" else {"type": op, "case_id": case.id, **body}


async def send_batch(conn: RawHttp, items: list[dict[str, Any]], tally: Tally, started: list[float]) -> None:
    """POST items as one batch; each command's latency runs from its own start time to the batch's answer."""
    import orjson

    status, content = await conn.exchange("/api/commands", {"commands": items})
    answered = time.perf_counter()
    if status != "200":
        tally.statuses[f"batch {status}"] += len(items)
        return
    for item, result, t0 in zip(items, orjson.loads(content)["results"], started, strict=True):
        tally.latencies.append(answered - t0)
        status = str(result["status"])
        refused = result["status"] >= 300
        tally.statuses[f"{status} {result['type'].rsplit('/', 1)[-1]}" if refused else status] += 1
        tally.ops[item["type"]] += 1


async def open_loop_batched(
    url: str, token: str, cases: list[OwnedCase], rate: float, seconds: float, drain: float, window: float,
    connections: int = 32,
) -> tuple[Tally, float, float]:
    """Commands scheduled at a fixed rate, as in `open_loop`, but sent as a batch every `window` seconds (all the
    commands due by then, as an ingestion gateway would group them); latency from each command's scheduled time."""
    tally = Tally()
    rng = random.Random(99)
    idle: asyncio.Queue[RawHttp] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(RawHttp(url, token))
    in_flight: set[asyncio.Task[None]] = set()

    async def flush(items: list[dict[str, Any]], times: list[float]) -> None:
        conn = await idle.get()
        try:
            await send_batch(conn, items, tally, times)
        finally:
            idle.put_nowait(conn)

    total = int(rate * seconds)
    cpu0 = time.process_time()
    started = time.perf_counter()
    sent = 0
    while sent < total:
        await asyncio.sleep(window)
        due = min(total, int((time.perf_counter() - started) * rate) + 1)
        if due <= sent:
            continue
        items, times = [], []
        for i in range(sent, due):
            op, _path, body = next_request(rng, cases[i % len(cases)], i)
            items.append(batch_item(op, body, cases[i % len(cases)]))
            times.append(started + i / rate)
        sent = due
        for start in range(0, len(items), 500):
            task = asyncio.create_task(flush(items[start:start + 500], times[start:start + 500]))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*in_flight), timeout=drain)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    unfinished = total - len(tally.latencies) - sum(v for k, v in tally.statuses.items() if k.startswith("batch"))
    if unfinished:
        tally.statuses["unfinished"] += unfinished
    for task in list(in_flight):
        task.cancel()
    while not idle.empty():
        await idle.get_nowait().close()
    return tally, elapsed, cpu


def errors_text(tally: Tally) -> str:
    bad = {k: v for k, v in tally.statuses.items() if k not in ("200", "201")}
    return ", ".join(f"{k}:{v}" for k, v in sorted(bad.items())) or "none"


# ----------------------------------------------------------------------------------------------------------------
# in-process profile of the bus (hotspots)


def bus_run(
    backend: str, where: Path | dict[str, str], commands: int, seconds: float, profile: bool, batch: int = 1
) -> tuple[int, float, float, str]:
    """The in-process CommandBus, one thread, on the same command mix (no HTTP), one command per `dispatch` or
    `batch` per `dispatch_many`: (commands, seconds, CPU seconds, top of the cProfile when profile)."""
    from adapters.event_store import postgres_event_store, sqlite_event_store
    from commands import messages as m
    from commands.bus import Actor, CommandBus
    from domain.definition import DefinitionSpec

    if backend == "sqlite":
        assert isinstance(where, Path)
        store = sqlite_event_store(where, synchronous="NORMAL")
    else:
        assert isinstance(where, dict)
        store = postgres_event_store(host=where["host"], port=int(where["port"]), dbname=where["dbname"],
                                     user=where["user"], password=where["password"])
    bus = CommandBus(store)
    body = definition_body()
    spec = DefinitionSpec.from_dict(body)
    bus.dispatch(m.PublishCaseDefinition(
        key=spec.key, name=spec.name, schema=spec.schema, stages=body["stages"], queues=list(spec.queues),
        number_prefix=spec.number_prefix,
    ), Actor("bob", common.TENANT, ("supervisor",)))
    actor = Actor("alice", common.TENANT, ("caseworker",))
    rng = random.Random(3)
    cases = [OwnedCase(bus.dispatch(m.OpenCase(**open_body(rng)), actor).id) for _ in range(32)]
    kinds = {"OpenCase": m.OpenCase, "AssignCase": m.AssignCase, "UpdateCaseData": m.UpdateCaseData,
             "AddComment": m.AddComment}

    deadline = time.perf_counter() + seconds

    def command(i: int) -> m.Command:
        case = cases[i % len(cases)]
        op, _path, payload = next_request(rng, case, i)
        if op != "OpenCase":
            payload = {**payload, "case_id": uuid.UUID(case.id)}
        return kinds[op](**payload)  # type: ignore[no-any-return]

    def run() -> int:
        for start in range(0, commands, batch):
            chunk = [command(i) for i in range(start, min(start + batch, commands))]
            if batch == 1:
                bus.dispatch(chunk[0], actor)
            else:
                refused = [r for r in bus.dispatch_many(chunk, actor) if isinstance(r, Exception)]
                if refused:
                    raise RuntimeError(f"the bench's commands were refused: {refused[:3]}")
            if time.perf_counter() > deadline:
                return start + len(chunk)
        return commands

    profiler = cProfile.Profile() if profile else None
    cpu0 = time.process_time()
    started = time.perf_counter()
    done = profiler.runcall(run) if profiler else run()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    store.close()
    if profiler is None:
        return done, elapsed, cpu, ""
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(22)
    return done, elapsed, cpu, (f"in-process bus under cProfile: {done} commands in {elapsed:.2f}s "
                                f"({done / elapsed:,.0f}/s with profiler overhead)\n" + out.getvalue())


# ----------------------------------------------------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace, rows: list[list[Any]], notes: list[str]) -> dict[str, float]:
    figures: dict[str, float] = {}
    with temp_dir(f"write-{backend}") as tmp, contextlib.ExitStack() as stack:
        extra_env: dict[str, str] = {}
        if backend == "postgres":
            app_db = stack.enter_context(common.fresh_postgres_db(f"bench_write_{os.getpid()}"))
            raw_db = stack.enter_context(common.fresh_postgres_db(f"bench_raw_{os.getpid()}"))
            extra_env = common.postgres_env(app_db)
            raw_where: Path | dict[str, str] = raw_db
        else:
            raw_where = tmp / "raw-eventsourcing.sqlite"

        saves, rate, cpu_per_save = raw_eventsourcing_rate(backend, raw_where, args.baseline_seconds)
        figures["baseline"] = rate
        figures["baseline_cpu_ms"] = cpu_per_save * 1000
        rows.append([backend, f"baseline: raw eventsourcing save loop, 1 client, {args.baseline_seconds:g}s",
                     saves, rate, "", "", "", cpu_per_save * 1000, "", ""])

        bus_where: Path | dict[str, str] = tmp / "bus.sqlite"
        if backend == "postgres":
            bus_where = stack.enter_context(common.fresh_postgres_db(f"bench_bus_{os.getpid()}"))
        n, secs, cpu, _ = bus_run(backend, bus_where, args.max_commands, args.baseline_seconds, False)
        figures["bus_cpu_ms"] = cpu / n * 1000
        rows.append([backend, f"in-process CommandBus, 1 thread, same mix, {secs:.1f}s", n, n / secs, "", "", "",
                     cpu / n * 1000, "", ""])
        batch_where: Path | dict[str, str] = tmp / "bus-batch.sqlite"
        if backend == "postgres":
            batch_where = stack.enter_context(common.fresh_postgres_db(f"bench_batch_{os.getpid()}"))
        n, secs, cpu, _ = bus_run(backend, batch_where, args.max_commands, args.baseline_seconds, False, args.batch)
        figures["bus_batch_cpu_ms"] = cpu / n * 1000
        rows.append([backend, f"in-process dispatch_many, batches of {args.batch}, {secs:.1f}s", n, n / secs, "", "",
                     "", cpu / n * 1000, "", ""])

        served = stack.enter_context(casestream_serve(tmp / "data", extra_env))
        notes.append(f"{backend}: `casestream serve` answered /readyz {served.ready_seconds:.2f}s after start")
        supervisor = served.token("bob", ("supervisor",))
        worker = served.token("alice", ("caseworker",))
        pid = served.process.pid

        def record(run: str, figure: str, measured: tuple[Tally, float, float], server0: float, closed: bool) -> None:
            """A table row (and a figure) for one run: a closed loop against the throughput target (PostgreSQL),
            an open loop against the p99 target."""
            tally, elapsed, cpu = measured
            n = max(len(tally.latencies), 1)
            server_ms = (common.process_cpu_seconds(pid) - server0) / n * 1000
            thr = len(tally.latencies) / elapsed
            p99 = common.ms(percentile(tally.latencies, 99))
            if closed:
                figures[figure], figures[f"{figure}_cpu_ms"] = thr, server_ms
                target = "" if backend == "sqlite" else (
                    f">= {TARGET_PG_THROUGHPUT:,.0f}/s: {verdict(thr, TARGET_PG_THROUGHPUT, higher_is_better=True)}"
                )
            else:
                figures[figure] = p99
                target = f"p99 < {TARGET_P99_MS:.0f} ms: {verdict(p99, TARGET_P99_MS, higher_is_better=False)}"
            errs = errors_text(tally) + (f", shed:{tally.shed}" if tally.shed else "")
            rows.append([backend, run, len(tally.latencies), thr, common.ms(percentile(tally.latencies, 50)), p99,
                         errs, server_ms, cpu / n * 1000, target])

        async def scenario() -> None:
            import httpx

            async with httpx.AsyncClient(base_url=served.url, timeout=60) as client:
                cases = await prepare(client, supervisor, worker, args.clients * args.cases_per_client)
            server0 = common.process_cpu_seconds(pid)
            measured = await closed_loop(
                served.url, worker, cases, args.clients, args.duration, args.max_commands, args.cases_per_client
            )
            record(f"closed loop, {args.clients} clients, {measured[1]:.1f}s", "closed", measured, server0, True)
            notes.append(f"{backend} closed-loop mix: {dict(measured[0].ops)}")
            notes.append(f"{backend}: the server folded the closed loop's backlog in "
                         f"{await settle(served.url, worker, cases[0]):.1f}s before the next run")
            server0 = common.process_cpu_seconds(pid)
            measured = await open_loop(served.url, worker, cases, args.rate, args.rate_seconds, args.drain)
            record(f"open loop {args.rate:,.0f}/s for {args.rate_seconds:g}s", "open_p99", measured, server0, False)
            if args.batch > 1:
                await batched(cases)

        async def batched(earlier: list[OwnedCase]) -> None:
            """The same mix through POST /api/commands on fresh cases (the open loop above shed commands whose
            effects the client had already assumed): closed loop, then open loop grouped per window."""
            import httpx

            await settle(served.url, worker, earlier[0])
            async with httpx.AsyncClient(base_url=served.url, timeout=60) as client:
                cases = await prepare(client, supervisor, worker, args.clients * args.cases_per_client, publish=False)
            await settle(served.url, worker, cases[0])
            server0 = common.process_cpu_seconds(pid)
            measured = await closed_loop(
                served.url, worker, cases, args.clients, args.duration, args.max_commands, args.cases_per_client,
                args.batch,
            )
            record(f"closed loop, {args.clients} clients x batches of {args.batch}, {measured[1]:.1f}s", "batched",
                   measured, server0, True)
            notes.append(f"{backend}: the server folded the batched closed loop's backlog in "
                         f"{await settle(served.url, worker, cases[0]):.1f}s before the next run")
            server0 = common.process_cpu_seconds(pid)
            measured = await open_loop_batched(
                served.url, worker, cases, args.rate, args.rate_seconds, args.drain, args.batch_window
            )
            record(f"open loop {args.rate:,.0f}/s for {args.rate_seconds:g}s, sent every "
                   f"{args.batch_window * 1000:g} ms as one batch", "batched_open_p99", measured, server0, False)

        asyncio.run(scenario())
        if args.profile:
            where: Path | dict[str, str] = tmp / "profile.sqlite"
            if backend == "postgres":
                where = stack.enter_context(common.fresh_postgres_db(f"bench_prof_{os.getpid()}"))
            n, secs, cpu, text = bus_run(backend, where, args.profile_commands, 600.0, True)
            notes.append(f"--- {backend} ---\n" + text)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (< 1 min)")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20.0, help="closed-loop seconds")
    parser.add_argument("--max-commands", type=int, default=200_000, help="closed-loop command cap")
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop commands/s")
    parser.add_argument("--rate-seconds", type=float, default=15.0)
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument("--drain", type=float, default=30.0, help="open loop: seconds to wait for stragglers")
    parser.add_argument("--profile", action="store_true", help="also cProfile the in-process bus")
    parser.add_argument("--profile-commands", type=int, default=2000)
    parser.add_argument("--cases-per-client", type=int, default=CASES_PER_CLIENT,
                        help="open cases per client (the open loops spread over all of them); with few, every case "
                             "gathers hundreds of comments in a run and its growing document costs more per fold")
    parser.add_argument("--batch", type=int, default=32,
                        help="commands per request of the batched closed loop (POST /api/commands); 1: no batched runs")
    parser.add_argument("--batch-window", type=float, default=0.01,
                        help="batched open loop: seconds between batches (each carries the commands due by then)")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rate, args.rate_seconds, args.baseline_seconds, args.drain = 5.0, 200.0, 4.0, 2.0, 8.0
        args.max_commands, args.profile_commands = 20_000, 300
    banner("write path: commands/s through the HTTP API",
           f"clients={args.clients} duration={args.duration:g}s open-loop={args.rate:g}/s x {args.rate_seconds:g}s "
           f"(server: `casestream serve` subprocess; load: one asyncio process, raw HTTP/1.1 keep-alive connections)")
    rows: list[list[Any]] = []
    notes: list[str] = []
    results: dict[str, dict[str, float]] = {}
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    for backend in backends:
        results[backend] = run_backend(backend, args, rows, notes)
    table(["backend", "run", "commands", "per s", "p50 ms", "p99 ms", "errors", "server CPU ms/cmd",
           "client CPU ms/cmd", "target"], rows)
    for note in notes:
        print(note)
    print(common.machine_line())
    for backend, fig in results.items():
        ratio = fig["closed"] / fig["baseline"] if fig.get("baseline") else float("nan")
        cpu_ratio = fig["closed_cpu_ms"] / fig["baseline_cpu_ms"] if fig.get("baseline_cpu_ms") else float("nan")
        print(f"RATIO {backend}: HTTP commands/s ({args.clients} clients) / raw eventsourcing saves/s (1 client) = "
              f"{fig['closed']:,.0f} / {fig['baseline']:,.0f} = {ratio:.2f}x; CPU per command / CPU per raw save = "
              f"{fig['closed_cpu_ms']:.2f} / {fig['baseline_cpu_ms']:.2f} ms = {cpu_ratio:.1f}x "
              f"(in-process bus alone: {fig['bus_cpu_ms']:.2f} ms); "
              f"open-loop p99 {fig['open_p99']:,.1f} ms")

if __name__ == "__main__":
    main()
