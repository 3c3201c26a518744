"""Processes as open work piles up: starting claim lifecycles must not slow down, memory must stay flat, a restart
with every instance open must be ready in seconds.

Opens claims through the command bus on an embedded platform with processes on (the shipped `claim-case` BPMN:
each claim's process moves it to triage and waits on the triage user task and its 8-hour SLA timer, so every
instance stays open). Per window of instances it prints the start rate (claims opened and their process started,
per second of the window), the engine's time per start (`EmbeddedEngine.start_many`, which runs a window's
lifecycles until they wait and saves their first steps as one batch: batch time / instances) and the memory
growth; each beside the first window, this run's baseline. Then it restarts the platform with all instances
open and prints the time until the processes are running and until a new claim's process has started.
The CPU of each window is split by thread (from /proc): the bench thread that opens the claims (what the API
would do), the runner folding the read models, and the process side (manager, engine workers, timers). Before the
first window and after the last, the manager's own throughput: claims opened with the manager stopped, then the
manager started and timed until every lifecycle waits on its triage task (instances/s, process-side CPU ms each).
Targets (issue #13): last window's rate within 20% of the first; memory growth < 50 MB per 10,000 open
instances; restart ready and processing a new command < 10 s.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import banner, percentile, table, temp_dir

from casestream import demo_data as d
from casestream.bootstrap import EmbeddedPlatform, bootstrap
from casestream.settings import Settings
from commands import messages as m
from commands.bus import Actor
from processes.manager import lifecycle_key

TENANT = "acme"
ALICE = Actor("alice", TENANT, ("caseworker",))
ADMIN = Actor("admin", TENANT, ("admin",))
CLAIM = {"policy_number": "POL-1234567", "claimant_name": "Jan Smit", "incident_date": "2025-09-01",
         "amount": 1200.0, "currency": "EUR", "category": "storm"}
BATCH = 250


def rss_mb() -> float:
    """Resident memory of this process (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROCESS_THREADS = ("casestream-process-manager", "bpmn-")


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of this process's threads, grouped: bench (opens claims), runner (read models), process
    side (manager, engine workers, timers, recovery), other."""
    groups = {"bench": 0.0, "runner": 0.0, "process": 0.0, "other": 0.0}
    for thread in threading.enumerate():
        try:
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        except (OSError, TypeError):
            continue  # ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
        name = thread.name
        group = ("bench" if thread is threading.main_thread() else "runner" if name == "casestream-runner"
                 else "process" if name.startswith(PROCESS_THREADS) else "other")
        groups[group] += seconds
    return groups


def cpu_ms(before: dict[str, float], after: dict[str, float], group: str, count: int) -> float:
    return (after[group] - before[group]) / count * 1000


def start(folder: Path) -> EmbeddedPlatform:
    platform = bootstrap(Settings(data_dir=folder, processes="on"))
    assert platform.processes is not None
    if not platform.processes.wait_ready(120):
        raise RuntimeError(f"processes did not start: {platform.processes.status()}")
    return platform


def settle(platform: EmbeddedPlatform, timeout: float = 600) -> None:
    """Wait until the process manager has handled everything stored and the log stops growing (jobs done)."""
    assert platform.processes is not None
    manager = platform.processes.manager
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        head = platform.store.max_position()
        manager.wait(head, max(0.0, deadline - time.monotonic()))
        time.sleep(0.05)
        if platform.store.max_position() == head and manager.position >= head:
            return
    raise RuntimeError("the process manager did not catch up")


def time_starts(platform: EmbeddedPlatform, into: list[float]) -> None:
    """Record the engine's time per instance started (measurement only): the process manager hands the engine a
    window's lifecycle starts together (`start_many`), so each instance of a batch counts the batch's time / its
    size."""
    assert platform.processes is not None
    engine = platform.processes.engine
    inner: Callable[..., list[Any]] = engine.start_many

    def timed(requests: Any) -> list[Any]:
        t0 = time.perf_counter()
        try:
            return inner(requests)
        finally:
            into.extend([(time.perf_counter() - t0) / max(1, len(requests))] * len(requests))

    engine.start_many = timed  # type: ignore[method-assign]


def open_claims(platform: EmbeddedPlatform, count: int, first: int) -> list[str]:
    ids = []
    for n in range(first, first + count, BATCH):
        for i in range(n, min(n + BATCH, first + count)):
            ids.append(platform.bus.dispatch(m.OpenCase(definition_key="claim", title=f"Claim {i}", data=CLAIM),
                                             ALICE).id)
        settle(platform)
    return ids


def manager_throughput(platform: EmbeddedPlatform, count: int, first: int) -> tuple[float, float, float]:
    """Claims opened with the process manager stopped, then the manager started: lifecycles started per second
    until it caught up, and CPU ms per lifecycle of the process side and of the runner meanwhile."""
    assert platform.processes is not None
    manager = platform.processes.manager
    manager.stop()
    for i in range(first, first + count):
        platform.bus.dispatch(m.OpenCase(definition_key="claim", title=f"Claim {i}", data=CLAIM), ALICE)
    platform.runner.wait(platform.store.max_position(), 120)
    cpu, t0 = thread_cpu(), time.perf_counter()
    manager.start()
    settle(platform)
    elapsed, after = time.perf_counter() - t0, thread_cpu()
    return count / elapsed, cpu_ms(cpu, after, "process", count), cpu_ms(cpu, after, "runner", count)


def drive_lifecycles(platform: EmbeddedPlatform, count: int, first: int, profiler: cProfile.Profile | None) -> float:
    """Open count claims with the manager and the engine's workers stopped, then in this one thread let the manager
    catch up (the lifecycles start) and run the queued jobs in worker-sized batches until every lifecycle waits on
    its triage task; the CPU seconds of this thread meanwhile."""
    assert platform.processes is not None
    manager, engine = platform.processes.manager, platform.processes.engine
    for i in range(first, first + count):
        platform.bus.dispatch(m.OpenCase(definition_key="claim", title=f"Profiled {i}", data=CLAIM), ALICE)
    cpu = 0.0
    while True:
        platform.runner.wait(platform.store.max_position(), 120)
        t0 = time.thread_time()
        if profiler is not None:
            profiler.enable()
        moved = manager.step()
        ran = 0
        while batch := engine._take_jobs(64):
            engine._run_job_batch(batch)
            ran += len(batch)
        if profiler is not None:
            profiler.disable()
        cpu += time.thread_time() - t0
        if not moved and not ran and manager.position >= platform.store.max_position():
            return cpu


def profile_lifecycles(platform: EmbeddedPlatform, count: int) -> None:
    """Process-side CPU per lifecycle measured in one thread: plain, then under cProfile (deterministic call
    counts), with the top of the cumulative profile."""
    assert platform.processes is not None
    platform.processes.manager.stop()
    platform.processes.engine.stop()  # the workers and timers end; queued jobs stay for this thread
    plain = drive_lifecycles(platform, count, 10_000, None)
    profiler = cProfile.Profile()
    profiled = drive_lifecycles(platform, count, 20_000, profiler)
    stats = pstats.Stats(profiler, stream=(out := io.StringIO()))
    calls = stats.total_calls  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    print(out.getvalue())
    print(f"PROFILE {count} lifecycles in one thread: {plain / count * 1000:.2f} ms CPU per lifecycle "
          f"({profiled / count * 1000:.2f} under cProfile), {calls / count:,.0f} Python calls per lifecycle")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=50_000, help="claims (lifecycle processes) to open")
    parser.add_argument("--window", type=int, default=10_000, help="instances per measured window")
    parser.add_argument("--burst", type=int, default=2_000, help="claims of each manager-throughput run")
    parser.add_argument("--quick", action="store_true", help="3,000 instances in windows of 1,000, bursts of 500")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="only cProfile N lifecycles in one thread (process-side CPU and calls per lifecycle)")
    args = parser.parse_args()
    if args.quick:
        args.instances, args.window, args.burst = 3_000, 1_000, 500
    windows = max(1, args.instances // args.window)
    banner("bench/process_scale.py: claim lifecycles piling up (embedded, SQLite, processes on)",
           f"{windows * args.window:,} instances in windows of {args.window:,}; every instance stays open "
           "(triage user task + 8 h SLA timer)")
    with temp_dir("casestream-bench-process-scale") as folder:
        platform = start(folder)
        try:
            for record_type in d.PROCESS_RECORD_TYPES:
                platform.bus.dispatch(m.DefineRecordType(**record_type), ADMIN)
            platform.bus.dispatch(m.PublishCaseDefinition(**d.CLAIM_LIVE), ADMIN)
            steps: list[float] = []
            time_starts(platform, steps)
            open_claims(platform, 200, 0)  # warm-up
            if args.profile:
                profile_lifecycles(platform, args.profile)
                return
            opened = 200
            bursts = [manager_throughput(platform, args.burst, opened)]
            opened += args.burst
            print(f"manager throughput, {opened:,} open: {bursts[0][0]:.0f} instances/s", flush=True)
            rows, rates, memory = [], [], [rss_mb()]
            for w in range(windows):
                steps.clear()
                t0, cpu = time.perf_counter(), thread_cpu()
                open_claims(platform, args.window, opened)
                opened += args.window
                elapsed, after = time.perf_counter() - t0, thread_cpu()
                rate = args.window / elapsed
                rates.append(rate)
                memory.append(rss_mb())
                growth = (memory[-1] - memory[-2]) * 10_000 / args.window
                assert platform.processes is not None
                engine = platform.processes.engine
                rows.append([f"{opened - args.window:,}-{opened:,}", f"{rate:.0f}", f"{rate / rates[0]:.2f}",
                             f"{percentile(steps, 50) * 1000:.1f} / {percentile(steps, 99) * 1000:.1f}",
                             f"{sum(after.values()) - sum(cpu.values()):.0f}",
                             " / ".join(f"{cpu_ms(cpu, after, g, args.window):.2f}"
                                        for g in ("bench", "runner", "process")),
                             f"{memory[-1]:.0f}", f"{growth:+.1f}",
                             f"{engine.open_instances():,} / {engine.loaded_instances():,}"])
                print(f"window {w + 1}/{windows}: {rate:.0f} instances/s, rss {memory[-1]:.0f} MB", flush=True)
            bursts.append(manager_throughput(platform, args.burst, opened))
            opened += args.burst
            table(["open instances", "starts/s", "vs first", "start p50 / p99 ms", "CPU s",
                   "CPU ms/instance: create / read models / process", "RSS MB", "MB per 10k", "open / loaded"],
                  rows)
            table(["manager throughput (manager stopped, claims opened, manager started)", "instances/s",
                   "process CPU ms/instance", "read-model CPU ms/instance"],
                  [[f"{args.burst:,} claims with {before:,} open", f"{rate:.0f}", f"{proc:.2f}", f"{run:.2f}"]
                   for before, (rate, proc, run) in zip((200, opened - args.burst), bursts, strict=True)])
            open_before = platform.processes.engine.open_instances() if platform.processes else 0
            rss_before = rss_mb()
        finally:
            platform.close()

        t0 = time.perf_counter()
        second = start(folder)
        ready = time.perf_counter() - t0
        try:
            assert second.processes is not None
            engine = second.processes.engine
            case_id = second.bus.dispatch(m.OpenCase(definition_key="claim", title="after restart", data=CLAIM),
                                          ALICE).id
            key = lifecycle_key(case_id, "claim-case")
            while not engine.open_user_tasks(key, TENANT):
                time.sleep(0.01)
            processed = time.perf_counter() - t0
            recovering_then = engine.recovering
            rss_ready = rss_mb()
            while engine.recovering:
                time.sleep(0.1)
            indexed = time.perf_counter() - t0
            table(["restart with all instances open", "seconds / MB", "target"], [
                [f"ready (processes running; {open_before:,} open, {recovering_then:,} still to index then)",
                 f"{ready:.2f}", "-"],
                ["a new claim's process started (its triage task announced)", f"{processed:.2f}", "< 10"],
                ["every recovered instance indexed (background)", f"{indexed:.2f}", "-"],
                ["RSS before the restart (first run), MB", f"{rss_before:.0f}", "-"],
                ["RSS when ready (restarted run), MB", f"{rss_ready:.0f}", "-"],
                ["RSS after indexing, MB", f"{rss_mb():.0f}", "close to before"],
            ])
        finally:
            second.close()
    later = (memory[-1] - memory[1]) * 10_000 / max(1, (windows - 1) * args.window)
    print(f"RATIO starts/s last window / first window = {rates[-1] / rates[0]:.2f} (target >= 0.80); memory growth "
          f"per 10k open instances after the first window = {later:.1f} MB (target < 50); restart: a new claim's "
          f"process started {processed:.2f} s after the start (target < 10); manager alone: "
          f"{bursts[0][0]:.0f} -> {bursts[-1][0]:.0f} instances/s, {bursts[0][1]:.2f} -> {bursts[-1][1]:.2f} "
          "process CPU ms/instance")


if __name__ == "__main__":
    main()
