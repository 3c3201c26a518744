"""Case list: query latency over 100,000 cases, and how long `casestream serve` takes to answer /readyz.

The data set (100,000 cases opened, plus assigns / comments / data changes / stage moves) is generated with
the domain classes and cached under ~/.cache/casestream/bench/ (the same log as bench/rebuild.py), and its
read models are built once and cached beside it. Each run works on copies in a temp folder.

Per query (50 rows, one filter or a text search), p50/p99 over up to --queries runs (and a time bound):
  * baseline: the same SQL as the document store's, as a plain sqlite3 select on the same file (no decoding);
  * direct: `projections.queries.list_cases(documents, ...)`;
  * HTTP: GET /api/cases on `casestream serve` (a subprocess), one keep-alive client.
Target printed beside the figures: p99 < 20 ms.   Also: /readyz after start, target < 3 s, beside the
time the bare interpreter and the app's imports take (the floor of any start).

    python bench/case_list.py --quick     # < 1 min (2,000 cases)
    python bench/case_list.py             # 100,000 cases (first run generates the data: minutes)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import common
from common import LogShape, banner, cached_log, casestream_serve, percentile, table, temp_dir, verdict

TARGET_P99_MS = 20.0
TARGET_READY_S = 3.0
LIMIT = 50

# (label, filters, text)
QUERIES: list[tuple[str, dict[str, str], str | None]] = [
    ("stage=review", {"stage": "review"}, None),
    ("status=open", {"status": "open"}, None),
    ("assignee=alice", {"assignee": "alice"}, None),
    ("definition_key=complaint", {"definition_key": "complaint"}, None),
    ("q=lyon (common word)", {}, "lyon"),
    ("q=claim-000123 (one case)", {}, "claim-000123"),
    ("q=zzzz (no match)", {}, "zzzz"),
]


def cached_views(shape: LogShape, events: Path) -> Path:
    """Read models of the cached log, built once by the embedded runner and cached beside it."""
    from adapters.embedded_runner import EmbeddedRunner
    from adapters.event_store import sqlite_event_store
    from adapters.sqlite_documents import SqliteDocumentStore
    from processes.manager import NAME as MANAGER_NAME
    from projections.catalog import ALL

    # v2: built with the current folds, and the process manager's position at the head of the log
    path = common.cache_root() / f"{shape.key}.views-v3.sqlite"  # v3: indexed fields in columns
    if path.exists():
        return path
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    for stale in tmp.parent.glob(tmp.name + "*"):
        stale.unlink()
    print(f"building read models for {shape} into {path} (cached for next runs)...", flush=True)
    started = time.perf_counter()
    store = sqlite_event_store(events, synchronous="NORMAL")
    documents = SqliteDocumentStore(tmp, ALL)
    runner = EmbeddedRunner(store, documents, ALL, batch_size=5000)
    n = runner.catch_up()
    # the generated history predates processes (as `casestream demo` does with ProcessManager.skip_to): without
    # this, the server's process manager reads the whole log at start and every timed request shares the CPU
    documents.write([], (MANAGER_NAME, runner.position))
    documents.close()
    store.close()
    # a self-contained copy (the store's per-thread reader connections may still hold the WAL file open)
    source, target = sqlite3.connect(str(tmp)), sqlite3.connect(str(path))
    source.backup(target)
    target.execute("PRAGMA journal_mode=DELETE")
    source.close()
    target.close()
    for stale in tmp.parent.glob(tmp.name + "*"):
        stale.unlink()
    print(f"built read models ({n:,} events folded) in {time.perf_counter() - started:.1f}s", flush=True)
    return path


def sql_for(filters: dict[str, str], text: str | None) -> tuple[str, list[Any]]:
    """The select SqliteDocumentStore.find issues for list_cases (sort updated_at desc, limit+1)."""
    clauses = ["tenant = ?", "doc IS NOT NULL"]
    params: list[Any] = [common.TENANT]
    for name, value in filters.items():
        clauses.append(f"f_{name} = ?")  # the indexed fields' columns (adapters/sqlite_documents.py)
        params.append(value)
    if text:
        clauses.append("json_extract(doc, '$.search') LIKE ? ESCAPE '\\'")
        params.append(f"%{text.lower()}%")
    order = "f_updated_at"
    sql = f"SELECT position, doc FROM cases WHERE {' AND '.join(clauses)} ORDER BY {order} DESC, key DESC LIMIT ?"
    return sql, [*params, LIMIT + 1]


def measure(run: Callable[[], int], count: int, budget_s: float) -> tuple[list[float], int]:
    """Latencies of up to count runs within budget_s (after one warm-up run); rows of the last run."""
    rows = run()
    latencies: list[float] = []
    deadline = time.perf_counter() + budget_s
    for _ in range(count):
        t0 = time.perf_counter()
        rows = run()
        latencies.append(time.perf_counter() - t0)
        if time.perf_counter() > deadline:
            break
    return latencies, rows


def startup_floor() -> tuple[float, float]:
    """Seconds for a bare `python -c pass` and for `python -c 'import api.app, casestream.bootstrap'`."""
    def once(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=str(common.ROOT))
        return time.perf_counter() - t0

    return once("pass"), once("import api.app, casestream.bootstrap, casestream.cli")


def open_case_cost(events: Path, tries: int) -> tuple[float, int]:
    """Median seconds of one OpenCase through the in-process bus on a copy of the big log (sequence replay)."""
    from adapters.event_store import sqlite_event_store
    from commands import messages as m
    from commands.bus import Actor, CommandBus
    from domain.numbering import sequence_id

    store = sqlite_event_store(events, synchronous="NORMAL")
    bus = CommandBus(store)
    actor = Actor("alice", common.TENANT, ("caseworker",))
    times = []
    for i in range(tries):
        t0 = time.perf_counter()
        bus.dispatch(m.OpenCase(definition_key="claim", title=f"bench {i}", data={"claimant": "x"}), actor)
        times.append(time.perf_counter() - t0)
    n = len(store.events_of(sequence_id(common.TENANT, "claim")))
    store.close()
    return sorted(times)[len(times) // 2], n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 cases, fewer queries (< 1 min)")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--commands-per-case", type=float, default=4.0)
    parser.add_argument("--queries", type=int, default=500, help="runs per query and mode")
    parser.add_argument("--budget", type=float, default=10.0, help="seconds per query and mode at most")
    parser.add_argument("--starts", type=int, default=3, help="serve starts timed per data set")
    args = parser.parse_args()
    if args.quick:
        args.cases, args.queries, args.budget, args.starts = 2_000, 50, 1.5, 1

    import httpx

    from adapters.sqlite_documents import SqliteDocumentStore
    from projections.catalog import ALL
    from projections.queries import list_cases

    shape = LogShape(args.cases, args.commands_per_case)
    banner("case list: query latency, and serve start to /readyz",
           f"data: {shape}; {LIMIT} rows per query, sort updated_at desc; up to {args.queries} runs and "
           f"{args.budget:g}s per query and mode")
    events_cached, _ = cached_log(shape)
    views_cached = cached_views(shape, events_cached)
    rows: list[list[Any]] = []
    notes: list[str] = []
    worst: dict[str, float] = {}
    with temp_dir("case-list") as tmp:
        data = tmp / "data"
        data.mkdir()
        shutil.copyfile(events_cached, data / "events.sqlite")
        shutil.copyfile(views_cached, data / "views.sqlite")
        documents = SqliteDocumentStore(data / "views.sqlite", ALL)
        n_cases = documents._reader().execute("SELECT COUNT(*) FROM cases").fetchone()[0]
        notes.append(f"cases in the read model: {n_cases:,}")
        raw = sqlite3.connect(str(data / "views.sqlite"))
        with casestream_serve(data) as served:
            token = served.token("alice")
            http = httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
            for label, filters, text in QUERIES:
                sql, params = sql_for(filters, text)
                plan = " / ".join(r[3] for r in raw.execute("EXPLAIN QUERY PLAN " + sql, params))
                notes.append(f"plan {label}: {plan}")
                url_params = {**filters, "limit": str(LIMIT), **({"q": text} if text else {})}

                def by_sql(sql: str = sql, params: list[Any] = params) -> int:
                    return len(raw.execute(sql, params).fetchall())

                def direct(filters: dict[str, str] = filters, text: str | None = text) -> int:
                    return len(list_cases(documents, common.TENANT, filters=filters, text=text, limit=LIMIT).items)

                def over_http(url_params: dict[str, str] = url_params) -> int:
                    resp = http.get("/api/cases", params=url_params)
                    resp.raise_for_status()
                    return len(resp.json()["items"])

                for mode, run in (("baseline SQL", by_sql), ("list_cases", direct), ("HTTP", over_http)):
                    latencies, got = measure(run, args.queries, args.budget)
                    p99 = common.ms(percentile(latencies, 99))
                    worst[mode] = max(worst.get(mode, 0.0), p99)
                    target = "" if mode == "baseline SQL" else (
                        f"p99 < {TARGET_P99_MS:.0f} ms: {verdict(p99, TARGET_P99_MS, higher_is_better=False)}"
                    )
                    rows.append([label, mode, len(latencies), min(got, LIMIT), common.ms(percentile(latencies, 50)),
                                 p99, target])
            http.close()
        raw.close()
        documents.close()

        python_s, imports_s = startup_floor()
        starts: list[list[Any]] = [["baseline: python -c pass", python_s, ""],
                                   ["baseline: python -c 'import api.app, casestream.bootstrap, ...'", imports_s, ""]]
        ready: dict[str, float] = {}
        for label, folder in (("serve, empty data folder", tmp / "empty"), (f"serve, {n_cases:,} cases", data)):
            times = []
            for _ in range(args.starts):
                with casestream_serve(folder) as served:
                    times.append(served.ready_seconds)
            ready[label] = sorted(times)[len(times) // 2]
            starts.append([f"{label} -> /readyz 200 (median of {len(times)})", ready[label],
                           f"< {TARGET_READY_S:g} s: {verdict(ready[label], TARGET_READY_S, higher_is_better=False)}"])
        open_s, seq_events = open_case_cost(data / "events.sqlite", 3 if args.quick else 5)

    table(["query", "mode", "runs", "rows", "p50 ms", "p99 ms", "target"], rows)
    table(["start", "seconds", "target"], starts)
    print(f"OpenCase through the in-process bus on this log (its number sequence has {seq_events:,} events to "
          f"replay): median {open_s * 1000:,.1f} ms per command")
    for note in notes:
        print(note)
    print(common.machine_line())
    print(f"RATIO worst p99 list_cases / baseline SQL = {worst['list_cases']:,.1f} / {worst['baseline SQL']:,.1f} ms "
          f"= {worst['list_cases'] / worst['baseline SQL']:.2f}x; HTTP / baseline SQL = "
          f"{worst['HTTP'] / worst['baseline SQL']:.2f}x; worst HTTP p99 {worst['HTTP']:,.1f} ms (target < "
          f"{TARGET_P99_MS:g}); serve ready {max(ready.values()):.2f}s (target < {TARGET_READY_S:g}) vs bare imports "
          f"{imports_s:.2f}s")


if __name__ == "__main__":
    main()
