"""Task inbox: how soon a task created by a process is in the inbox read model, and inbox query latency.

Embedded platform pieces on SQLite (event store synchronous=NORMAL, read models, the in-process runner in its
background thread). `--clients` threads each dispatch CreateTask as a process actor (what the engine sends for
a ready user task) and time it from the dispatch until the runner has folded its position (`runner.wait`, the
read-your-writes mechanism), then check the inbox document is there. Baseline in the same run: AddComment on
a case until the `cases` read model has it (the same path with the core's own projection).

Query latency: `list_tasks` for the groups view (one text-match query per role, merged), mine, and unassigned
over the inbox built above, beside `list_cases` (one indexed query) on the same store.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections.abc import Callable
from uuid import UUID

from common import banner, percentile, table, temp_dir

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import sqlite_event_store
from adapters.sqlite_documents import SqliteDocumentStore
from commands import messages as m
from commands.bus import Actor, CommandBus
from projections.catalog import ALL
from projections.queries import list_cases
from projections.task_queries import list_tasks

TENANT = "acme"
ADMIN = Actor("admin", TENANT, ("admin",))
PROCESS = Actor("process:bench", TENANT, ("process",))
GROUPS = ("claims", "fraud", "underwriting", "intake", "legal")


def timed_visibility(
    runner: EmbeddedRunner, send: Callable[[int], int], count: int, clients: int,
) -> tuple[list[float], float]:
    """Run send(i) -> position from `clients` threads; per call the seconds until the read model has it."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = count // clients

    def client(offset: int) -> None:
        mine = []
        for i in range(offset * per_client, (offset + 1) * per_client):
            t0 = time.perf_counter()
            position = send(i)
            if not runner.wait(position, 10):
                raise RuntimeError(f"read model did not reach {position} in 10 s")
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, (per_client * clients) / (time.perf_counter() - started)


def query_times(run: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (well under a minute)")
    parser.add_argument("--tasks", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    count = 400 if args.quick else args.tasks
    banner("bench/task_inbox.py: task created -> in the inbox read model (embedded, SQLite)",
           f"{count} tasks and {count} comments, {args.clients} client threads, runner in the background")
    with temp_dir("task-inbox") as folder:
        store = sqlite_event_store(folder / "events.db", synchronous="NORMAL")
        documents = SqliteDocumentStore(folder / "views.db", ALL)
        runner = EmbeddedRunner(store, documents, ALL)
        bus = CommandBus(store)
        runner.start()
        try:
            bus.dispatch(m.PublishCaseDefinition(key="claim", name="Claim", schema={"type": "object"},
                                                 stages=[m.StageIn(key="new")]), ADMIN)
            cases = [UUID(bus.dispatch(m.OpenCase(definition_key="claim", title=f"case {n}", data={}), ADMIN).id)
                     for n in range(50)]

            def create(i: int) -> int:
                command = m.CreateTask(
                    case_id=cases[i % len(cases)], task_id=uuid.uuid4(), title=f"review {i}",
                    candidate_groups=[GROUPS[i % len(GROUPS)]], priority=i % 101,
                    assignee="alice" if i % 7 == 0 else None, process_instance_key=f"pi-{i}", element_id="review",
                )
                return bus.dispatch(command, PROCESS).position

            def comment(i: int) -> int:
                return bus.dispatch(m.AddComment(case_id=cases[i % len(cases)], body=f"note {i}"), ADMIN).position

            timed_visibility(runner, create, 40, 1)  # warm-up
            task_lat, task_rate = timed_visibility(runner, create, count, args.clients)
            comment_lat, comment_rate = timed_visibility(runner, comment, count, args.clients)
            found = list_tasks(documents, TENANT, "admin", (), view="all", limit=1)
            if not found.items:
                raise RuntimeError("no task reached the inbox")
            roles = ("claims", "fraud", "caseworker")
            repeat = 100 if args.quick else 300
            groups_q = query_times(lambda: list_tasks(documents, TENANT, "dan", roles, view="groups",
                                                      sort="priority"), repeat)
            mine_q = query_times(lambda: list_tasks(documents, TENANT, "alice", (), view="mine"), repeat)
            unassigned_q = query_times(lambda: list_tasks(documents, TENANT, "x", (), view="unassigned",
                                                          sort="priority"), repeat)
            cases_q = query_times(lambda: list_cases(documents, TENANT), repeat)
        finally:
            runner.stop()
            documents.close()
            store.close()

    def p(values: list[float]) -> str:
        return f"{percentile(values, 50) * 1000:.1f} / {percentile(values, 99) * 1000:.1f}"

    table(
        ["what", "p50 / p99 ms", "per second", "target"],
        [
            ["CreateTask (process) -> in the inbox", p(task_lat), f"{task_rate:.0f}", "p99 < 1000"],
            ["baseline: AddComment -> in the cases read model", p(comment_lat), f"{comment_rate:.0f}", "-"],
            [f"inbox query: groups view, {len(roles)} roles merged, 50 rows", p(groups_q), "-", "-"],
            ["inbox query: mine, 50 rows", p(mine_q), "-", "-"],
            ["inbox query: unassigned by priority, 50 rows", p(unassigned_q), "-", "-"],
            ["baseline: list_cases, 50 rows", p(cases_q), "-", "-"],
        ],
    )
    print(f"RATIO inbox visibility p99 task/comment = {percentile(task_lat, 99) / percentile(comment_lat, 99):.2f}; "
          f"groups query p50 / list_cases p50 = {percentile(groups_q, 50) / percentile(cases_q, 50):.2f}")


if __name__ == "__main__":
    main()
