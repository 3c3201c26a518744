"""Inbox latency: how soon a task created by a process is in the inbox read model (embedded platform, SQLite).

One in-process platform with processes on (the shipped BPMN deployed, process manager and engine running).
At a fixed pace, the script opens a claim under a definition whose lifecycle (`claim-case`) moves it to
triage and creates the *Triage the claim* user task, and, as the same-run baseline, sends a `CreateTask`
command directly (an ad-hoc task on a case without processes). A runner subscriber, called right after each
batch of events is committed to the read models, notes when each `TaskCreated` became visible:

  * process task, stored -> inbox: `TaskCreated` stored (its `occurred_at`) until visible in the inbox;
  * process task, case opened -> inbox: `OpenCase` sent until its process's task is visible (manager wake-up,
    engine start, the `case.move-stage` job and its command, the user task's `CreateTask`, the fold);
  * baseline, stored -> inbox: the same for a `CreateTask` sent directly.

Target (issue #5): a task created by a process appears in the inbox within 1 s p99.

    python bench/inbox_latency.py --quick      # ~10 s
    python bench/inbox_latency.py              # 300 of each at 20/s
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from common import banner, ms, percentile, table, temp_dir, verdict

from casestream import demo_data as d
from casestream.bootstrap import bootstrap
from casestream.settings import Settings
from commands import messages as m
from commands.bus import Actor
from domain.events import Positioned
from domain.task import TaskCreated

TARGET_P99_SECONDS = 1.0
TENANT = "acme"
ALICE = Actor("alice", TENANT, ("caseworker",))
ADMIN = Actor("admin", TENANT, ("admin",))
CLAIM = {"policy_number": "POL-1234567", "claimant_name": "Jan Smit", "incident_date": "2025-09-01",
         "amount": 1200.0, "currency": "EUR", "category": "storm"}


class Watcher:
    """Runner subscriber: when each TaskCreated became visible in the read models."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stored_to_inbox: dict[str, float] = {}  # task id -> seconds
        self.visible_at: dict[str, datetime] = {}  # case id -> when its first process task was visible
        self.process_tasks: set[str] = set()

    def __call__(self, batch: Sequence[Positioned]) -> None:
        now = datetime.now(UTC)
        with self.lock:
            for positioned in batch:
                event = positioned.event
                if not isinstance(event, TaskCreated):
                    continue
                task_id = str(event.aggregate_id)
                self.stored_to_inbox[task_id] = (now - event.occurred_at).total_seconds()
                if event.process_instance_key:
                    self.process_tasks.add(task_id)
                    self.visible_at.setdefault(event.case_id, now)


def run(count: int, rate: float) -> None:
    with temp_dir("inbox") as tmp:
        platform = bootstrap(Settings(data_dir=Path(tmp), processes="on"))
        try:
            if platform.processes is None or not platform.processes.wait_ready(120):
                raise SystemExit("processes did not start")
            bus = platform.bus
            bus.dispatch(m.PublishCaseDefinition(**d.CLAIM_LIVE), ADMIN)
            plain = {**d.CLAIM, "key": "claim-plain", "number_prefix": "CLP"}
            bus.dispatch(m.PublishCaseDefinition(**plain), ADMIN)
            # the baseline's cases exist before timing starts (only its CreateTask is timed)
            plain_cases = [bus.dispatch(m.OpenCase(definition_key="claim-plain", title=f"plain {i}", data=CLAIM),
                                        ALICE).id for i in range(count)]
            watcher = Watcher()
            platform.runner.subscribe(watcher)
            opened_at: dict[str, datetime] = {}
            baseline_ids: set[str] = set()
            interval = 1.0 / rate
            started = time.perf_counter()
            for i in range(count):
                sent = datetime.now(UTC)
                case_id = bus.dispatch(m.OpenCase(definition_key="claim", title=f"timed {i}", data=CLAIM), ALICE).id
                opened_at[case_id] = sent
                result = bus.dispatch(m.CreateTask(case_id=UUID(plain_cases[i]), title="Call the claimant"), ALICE)
                baseline_ids.add(result.id)
                time.sleep(max(0.0, started + (i + 1) * interval - time.perf_counter()))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with watcher.lock:
                    if len(watcher.process_tasks) >= count and baseline_ids <= set(watcher.stored_to_inbox):
                        break
                time.sleep(0.05)
        finally:
            platform.close()

    with watcher.lock:
        process = [watcher.stored_to_inbox[t] for t in watcher.process_tasks]
        opened = [(watcher.visible_at[c] - opened_at[c]).total_seconds() for c in opened_at if c in watcher.visible_at]
        baseline = [watcher.stored_to_inbox[t] for t in baseline_ids if t in watcher.stored_to_inbox]

    def row(name: str, values: list[float], expected: int) -> list[object]:
        return [name, len(values), expected - len(values), ms(percentile(values, 50)), ms(percentile(values, 99)),
                ms(max(values)) if values else float("nan")]

    table(["what", "tasks", "missing", "p50 ms", "p99 ms", "max ms"], [
        row("process task: TaskCreated stored -> inbox", process, count),
        row("process task: case opened -> inbox", opened, count),
        row("baseline: CreateTask sent directly, stored -> inbox", baseline, count),
    ])
    p99 = percentile(opened, 99)
    print(f"case opened -> process task in inbox p99 {ms(p99):.0f} ms vs target < {TARGET_P99_SECONDS * 1000:.0f} ms: "
          f"{verdict(p99, TARGET_P99_SECONDS, higher_is_better=False)}")
    print(f"RATIO process task stored->inbox p99 / baseline p99 = "
          f"{percentile(process, 99) / max(percentile(baseline, 99), 1e-9):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="40 of each at 10/s")
    parser.add_argument("--count", type=int, default=300, help="process cases (and baseline tasks)")
    parser.add_argument("--rate", type=float, default=20.0, help="process cases opened per second")
    args = parser.parse_args()
    count, rate = (40, 10.0) if args.quick else (args.count, args.rate)
    banner("inbox latency: process-created tasks in the inbox read model",
           f"{count} claims opened at {rate:g}/s (lifecycle claim-case), {count} direct CreateTask as baseline")
    run(count, rate)


if __name__ == "__main__":
    main()
