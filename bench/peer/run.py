"""bench/peer: casestream beside the HTTP floor and any other case API, one request per operation, same load
generator, same run.

Measured in one run, interleaved per round: a bare FastAPI floor (one route, a small pydantic body, on the server
`casestream serve` uses); casestream create / read / list with processes off; casestream create with the claim
lifecycle process on, while checking that the process manager keeps up (its lag from /readyz sampled every 0.5 s
stays < 1 s; at the end every case opened has left `intake`); an open loop of creates at a fixed rate (p99 from
each request's scheduled time). Every `--target FILE` (bench/peer/target.py says the format) is measured the same
way: create, read, list and the open loop.

    python bench/peer/run.py --quick
    python bench/peer/run.py --target my-api.toml --workers 2 --server uvicorn
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common

import httpx
from common import (
    ROOT,
    banner,
    casestream_serve,
    free_port,
    process_tree_cpu_seconds,
    table,
    temp_dir,
    verdict,
)
from load import Run, closed_loop, open_loop
from spy import per_thread, process_tree, profiled, summary, thread_cpu, thread_names
from target import Target, Template, load_target

TARGET_CREATE = 2_000.0
TARGET_FLOOR_RATIO = 0.3
TARGET_CREATE_PROCESSES = 1_000.0
TARGET_OPEN_P99_MS = 100.0
CLAIM_BODY = ('{"definition_key": "claim", "title": "Claim {n}", "data": {"policy_number": "POL-1234567", '
              '"claimant_name": "Jan Smit", "incident_date": "2026-09-01", "amount": 1200, "currency": "EUR", '
              '"category": "storm"}}')


def casestream_target(url: str, token: str, pid: int) -> Target:
    return Target("casestream", url, {
        "create": Template("POST", "/api/cases", CLAIM_BODY),
        "read": Template("GET", "/api/cases/{id}"),
        "list": Template("GET", "/api/cases?limit=50"),
    }, {"Authorization": f"Bearer {token}"}, pid)


@contextlib.contextmanager
def floor_server(server: str) -> Iterator[Target]:
    """The one-route FastAPI app in a subprocess, on the given server."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(Path(__file__).parent / "floor.py"), "--port", str(port),
                                "--server", server], cwd=str(ROOT), start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/docs", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the floor server did not start")
            time.sleep(0.05)
        body = '{"title": "Claim {n}", "amount": 1200.5, "category": "storm", "tags": ["a", "b"]}'
        yield Target("floor", url, {"create": Template("POST", "/items", body)}, {}, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)


def publish_claim(url: str, admin: str) -> None:
    """The demo's claim definition (bound to the claim-case lifecycle process) and the record types it uses."""
    from casestream import demo_data as d

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=30) as client:
        for record_type in d.PROCESS_RECORD_TYPES:
            reply = client.post("/api/record-types", json=record_type)
            reply.raise_for_status()
        client.post("/api/definitions", json=d.CLAIM_LIVE).raise_for_status()


def processes_ready(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = httpx.get(f"{url}/readyz", timeout=5).json()
        if (report.get("processes") or {}).get("running"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"processes did not start: {report.get('processes')}")


class Row:
    """One printed figure line."""

    def __init__(self, rows: list[list[Any]], floor: dict[str, float]) -> None:
        self.rows = rows
        self.floor = floor

    def add(self, name: str, op: str, loop: str, run: Run, server_cpu: float | None, note: str = "") -> None:
        closed = loop.startswith("closed")
        ratio = run.rate / self.floor["create"] if self.floor.get("create") and op == "create" and closed else None
        self.rows.append([
            name, op, loop, f"{run.rate:,.0f}", f"{run.p(50):.1f}", f"{run.p(99):.1f}", run.errors,
            "-" if server_cpu is None else f"{server_cpu / max(1, run.ok) * 1000:.2f}",
            f"{run.client_ms():.3f}", "-" if ratio is None else f"{ratio:.2f}x", note,
        ])


@contextlib.contextmanager
def profiling(args: argparse.Namespace, target: Target, label: str) -> Iterator[list[Run]]:
    """With --profile DIR: the CPU of each of the target server's threads per request of the run the block appends
    to the yielded list, and py-spy samples of the block (summary and raw samples into DIR)."""
    runs: list[Run] = []
    if args.profile is None or target.server_pid is None:
        yield runs
        return
    name = f"{target.name}-{label}-{time.strftime('%H%M%S')}".replace(" ", "-")
    names = thread_names(target.server_pid)
    before = thread_cpu(target.server_pid)
    with profiled(target.server_pid, args.profile, name) as raw:
        yield runs
    names.update(thread_names(target.server_pid))  # threads started during the loop (more bus threads)
    threads = per_thread(before, thread_cpu(target.server_pid), names, runs[0].answered if runs else 0)
    text = summary(raw)
    (args.profile / f"{name}.txt").write_text(f"CPU ms per request by thread: {threads}\n{text}\n")
    print(f"profile {name}: CPU ms per request by thread: {threads}; py-spy {text.splitlines()[1]}"
          f" (top functions in {args.profile / name}.txt)", flush=True)


async def measure(target: Target, args: argparse.Namespace, row: Row, ops: tuple[str, ...] = ("create", "read",
                  "list"), open_loop_rate: float | None = None) -> dict[str, Run]:
    """Closed loops for ops (the creates' ids feed read), then the open loop of creates; rows added."""
    runs: dict[str, Run] = {}
    ids: list[str] = []
    for op in ops:
        if op not in target.templates or (op == "read" and not ids):
            continue
        cpu0 = process_tree_cpu_seconds(target.server_pid) if target.server_pid else None
        with profiling(args, target, op) as profiled_runs:
            run = await closed_loop(target, op, args.clients, args.seconds, ids)
            profiled_runs.append(run)
        cpu = process_tree_cpu_seconds(target.server_pid) - cpu0 if cpu0 is not None and target.server_pid else None
        ids.extend(run.created)
        runs[op] = run
        row.add(target.name, op, f"closed {args.clients}", run, cpu)
    if open_loop_rate:
        cpu0 = process_tree_cpu_seconds(target.server_pid) if target.server_pid else None
        run = await open_loop(target, "create", open_loop_rate, args.open_seconds, ids)
        cpu = process_tree_cpu_seconds(target.server_pid) - cpu0 if cpu0 is not None and target.server_pid else None
        runs["open"] = run
        row.add(target.name, "create", f"open {open_loop_rate:g}/s", run, cpu)
    return runs


async def lag_sampler(url: str, into: list[float], stop: asyncio.Event) -> None:
    """The process manager's lag (seconds) from /metrics (any worker measures it), every 0.5 s until stop."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError, ValueError):
                for line in (await client.get("/metrics")).text.splitlines():
                    if line.startswith("casestream_process_manager_lag_seconds "):
                        into.append(float(line.split()[1]))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)


async def left_intake(url: str, token: str) -> tuple[int, int]:
    """(claims in intake, claims in all) from /api/counts."""
    async with httpx.AsyncClient(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        counts = (await client.get("/api/counts", params={"definition_key": "claim"})).json()
    total = sum(counts["status"].values())
    stages = counts["stage"]
    return int(stages.get("intake", 0)), int(total)


def listening(pid: int, port: int) -> bool:
    """Whether process pid holds a socket listening on port (from /proc: its fds' socket inodes, the kernel's table
    of TCP sockets)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    for sockets in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(sockets).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                    return True
    return False


def all_listening(pid: int, url: str, workers: int, timeout: float = 120) -> None:
    """Until `workers` processes below pid listen on url's port: `serve --workers N` starts the followers after the
    runner answers, and a loop measured before they bind would time their start-up."""
    if workers < 2:
        return
    port = int(url.rsplit(":", 1)[1])
    deadline = time.monotonic() + timeout
    while sum(listening(p, port) for p in process_tree(pid) if p != pid) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all {workers} processes listen on {port} after {timeout:g}s")
        time.sleep(0.2)
    time.sleep(1.0)  # the last one bound: its first requests are answered; let its start-up work settle


def serve_args(args: argparse.Namespace) -> list[str]:
    return ["--server", args.server, *(["--workers", str(args.workers)] if args.workers > 1 else [])]


async def with_processes(args: argparse.Namespace, row: Row, notes: list[str], tmp: Path) -> None:
    """Creates with the claim lifecycle on: rate, and whether the manager kept up."""
    env = {"CASESTREAM_PROCESSES": "on", "CASESTREAM_POLICY_ENGINE": "embedded"}
    with casestream_serve(tmp / "on", env, args=serve_args(args)) as served:
        all_listening(served.process.pid, served.url, args.workers)
        publish_claim(served.url, served.token("admin", ("admin",)))
        processes_ready(served.url)
        token = served.token("alice", ("caseworker",))
        target = casestream_target(served.url, token, served.process.pid)
        lags: list[float] = []
        stop = asyncio.Event()
        sampler = asyncio.create_task(lag_sampler(served.url, lags, stop))
        cpu0 = process_tree_cpu_seconds(served.process.pid)
        with profiling(args, target, "create-processes-on") as profiled_runs:
            run = await closed_loop(target, "create", args.clients, args.seconds)
            profiled_runs.append(run)
        cpu = process_tree_cpu_seconds(served.process.pid) - cpu0
        stop.set()
        await sampler
        intake, total = await left_intake(served.url, token)
        drained = time.perf_counter()
        while intake and time.perf_counter() - drained < 120:
            await asyncio.sleep(0.5)
            intake, _ = await left_intake(served.url, token)
        drain = time.perf_counter() - drained
        worst = max(lags, default=float("nan"))
        note = (f"manager lag max {worst:.2f}s; at the end {run.ok:,} opened, "
                f"{'all left intake' if drain < 0.5 else f'intake drained {drain:.1f}s after the end'}")
        row.add("casestream", "create", f"closed {args.clients}, processes on", run, cpu, note)
        notes.append(f"processes on: {note} (target: lag < 1 s: {verdict(worst, 1.0, higher_is_better=False)}; "
                     f"{total:,} claims counted)")


async def scenario(args: argparse.Namespace) -> None:
    rows: list[list[Any]] = []
    floor: dict[str, float] = {}
    row = Row(rows, floor)
    notes: list[str] = []
    peers = [load_target(Path(p)) for p in args.target]
    with temp_dir("peer") as tmp:
        for round_ in range(args.rounds):
            with floor_server(args.server) as target:
                floor_runs = await measure(target, args, row, ("create",))
                floor["create"] = floor_runs["create"].rate
            env = {"CASESTREAM_PROCESSES": "off", "CASESTREAM_POLICY_ENGINE": "embedded"}
            with casestream_serve(tmp / f"off{round_}", env, args=serve_args(args)) as served:
                all_listening(served.process.pid, served.url, args.workers)
                publish_claim(served.url, served.token("admin", ("admin",)))
                target = casestream_target(served.url, served.token("alice", ("caseworker",)), served.process.pid)
                runs = await measure(target, args, row, open_loop_rate=args.rate)
            for peer in peers:
                await measure(peer, args, row, open_loop_rate=args.rate)
            if not args.no_processes:
                await with_processes(args, row, notes, tmp / f"r{round_}")
            creates = [r for r in rows if r[0] == "casestream" and r[1] == "create" and r[2].startswith("closed")
                       and "processes" not in r[2]]
            if creates:
                print(f"round {round_ + 1}: casestream create {creates[-1][3]}/s ({creates[-1][9]} of the floor)",
                      flush=True)
    table(["api", "op", "loop", "ok/s", "p50 ms", "p99 ms", "errors", "server CPU ms/req", "client CPU ms/req",
           "vs floor", "note"], rows)
    for note in notes:
        print(note)
    create = runs["create"].rate
    ratio = create / floor["create"]
    print(f"RATIO casestream create (processes off) / floor: {ratio:.2f}x (target >= {TARGET_FLOOR_RATIO}x: "
          f"{verdict(ratio, TARGET_FLOOR_RATIO, higher_is_better=True)}); {create:,.0f}/s (target >= "
          f"{TARGET_CREATE:,.0f}: {verdict(create, TARGET_CREATE, higher_is_better=True)})")
    if "open" in runs:
        p99 = runs["open"].p(99)
        print(f"open loop {args.rate:g}/s: p99 {p99:.1f} ms (target < {TARGET_OPEN_P99_MS:g}: "
              f"{verdict(p99, TARGET_OPEN_P99_MS, higher_is_better=False)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", default=[], help="a peer API file (TOML or JSON); repeatable")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each closed loop")
    parser.add_argument("--rate", type=float, default=500.0, help="open loop: creates per second offered")
    parser.add_argument("--open-seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1, help="rounds (floor, casestream, peers, processes on)")
    parser.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    parser.add_argument("--workers", type=int, default=1, help="`casestream serve --workers`")
    parser.add_argument("--no-processes", action="store_true", help="skip the processes-on run")
    parser.add_argument("--quick", action="store_true", help="4 s loops, one round")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="py-spy each closed loop's server; raw samples and summaries into DIR")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.open_seconds, args.rounds = 4.0, 4.0, 1
    banner("bench/peer: one request per operation, casestream beside the HTTP floor and peers",
           f"{args.clients} clients closed loop {args.seconds:g}s; open loop {args.rate:g}/s for "
           f"{args.open_seconds:g}s; server {args.server}, {args.workers} worker(s)")
    import uvloop  # the client's own CPU per request: uvloop's is well below asyncio's

    uvloop.run(scenario(args))


if __name__ == "__main__":
    main()
