"""Rebuild: events/s folding the SQLite event log into the embedded read models from scratch.

The log (default: 100,000 cases, ~1.1 million events: case events, case-number events and command-log
entries, as the command bus stores them) is generated with the domain classes and cached under
~/.cache/casestream/bench/ keyed by its size, so re-runs skip generation.

Measured in this run, on the same file:
  * baseline 1: raw notification-log read, undecoded (`store.read_raw(after, 5000)` loop);
  * baseline 2: raw read + decode into domain events (`store.read(after, 5000)` loop);
  * the live runner's path: `documents.reset(); runner.position = 0; runner.catch_up()` (batch by batch:
    load, fold, upsert; time-bounded), what a rebuild did before `adapters.bulk_rebuild`;
  * the rebuild: `EmbeddedRunner.rebuild(processes=1 and 2)` (`casestream rebuild`): the log folded into
    documents in memory, written once into a fresh file (no journal) that is swapped in, indexes built; with 2,
    the log is split by aggregate: a spawned helper process folds the per-aggregate read models (cases,
    timeline) for half of the aggregates into its own file, whose rows this process appends before building
    every index (not time-bounded; the CPU column adds the helper's, which this process waits for).

Target printed beside the figure: >= 50,000 events/s.

    python bench/rebuild.py --quick       # < 1 min (small log)
    python bench/rebuild.py               # >= 1,000,000 events (first run generates the log: minutes)
    python bench/rebuild.py --profile     # also cProfile a rebuild
    python bench/rebuild.py --phases      # also CPU seconds per phase of a rebuild (read, decode, fold, write, index)
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import os
import pstats
import time
from typing import Any

import common
from common import LogShape, banner, cached_log, table, temp_dir, verdict

TARGET_EVENTS_PER_S = 50_000.0
READ_BATCH = 5000


def timed_read(store: Any, raw: bool, deadline_s: float) -> tuple[int, float, float]:
    """(events, seconds, CPU seconds) for reading the whole log in READ_BATCH pages."""
    after, n = 0, 0
    cpu0 = time.process_time()
    started = time.perf_counter()
    while True:
        if raw:
            page = store.read_raw(after, READ_BATCH)
            if not page:
                break
            after = page[-1].id
        else:
            page = store.read(after, READ_BATCH)
            if not page:
                break
            after = page[-1].position
        n += len(page)
        if time.perf_counter() - started > deadline_s:
            break
    return n, time.perf_counter() - started, time.process_time() - cpu0


def timed_rebuild(runner: Any, documents: Any, deadline_s: float, limit: int | None = None) -> tuple[int, float, float]:
    """(events, seconds, CPU seconds) for what `casestream rebuild` does (EmbeddedRunner.rebuild: reset with
    deferred indexes, catch_up, build the indexes), done stepwise here so it can be bounded in time.

    Events are counted by the runner's log position (every event read, folded or skipped), not by what
    `step()` returns (the events some projection folds). The index build at the end is inside the timing.
    """
    from projections.catalog import VERSION, VERSION_MARK

    documents.reset(defer_indexes=True)
    documents.write([], (VERSION_MARK, VERSION))  # as the runner's rebuild writes it: the digests compare alike
    runner.position = 0
    cpu0 = time.process_time()
    started = time.perf_counter()
    while runner.step():
        if time.perf_counter() - started > deadline_s or (limit is not None and runner.position >= limit):
            break
    documents.ensure_indexes()
    return runner.position, time.perf_counter() - started, time.process_time() - cpu0


def timed_bulk_rebuild(runner: Any, processes: int) -> tuple[int, float, float]:
    """(events, seconds, CPU seconds of this process and of the children it waited for) for runner.rebuild()."""
    before = os.times()
    started = time.perf_counter()
    runner.rebuild(processes=processes)
    seconds = time.perf_counter() - started
    after = os.times()
    cpu = sum(after[:4]) - sum(before[:4])  # user + system, self + waited-for children
    return runner.position, seconds, cpu


def phases(store: Any, documents: Any, projections: Any) -> list[list[Any]]:
    """CPU seconds per phase of one in-memory rebuild, done step by step the way `adapters.bulk_rebuild` does it
    (read rows of the folded types, decode, fold into dicts, write each collection into a fresh file, build its
    indexes); the fresh file is then thrown away."""
    from adapters import bulk_rebuild
    from adapters.codec import decoder_for

    spent: dict[str, float] = {"read rows": 0.0, "decode": 0.0, "fold": 0.0}

    def timed(label: str, work: Any, *args: Any) -> Any:
        cpu0 = time.process_time()
        result = work(*args)
        spent[label] = spent.get(label, 0.0) + time.process_time() - cpu0
        return result

    def decode(rows: Any) -> list[Any]:
        return [(row[0], decoder_for(row[3])(row[4], row[1], row[2]), routes[row[3]]) for row in rows]

    def fold(events: Any) -> None:
        for at, event, targets in events:
            for key_of, fold_one, docs, _collection in targets:
                key = key_of(event)
                doc, stored = docs.get(key, (None, 0))
                if at > stored:
                    docs[key] = (fold_one(doc, event), at)

    gc.disable()
    fresh = documents.fresh_file()
    try:
        memory: dict[str, dict[str, Any]] = {p.collection: {} for p in projections}
        routes = bulk_rebuild._routes(projections, memory)
        types = frozenset(routes)
        stop, position = store.max_position(), 0
        while position < stop:
            rows, position = timed("read rows", store.read_rows, position, min(50_000, stop - position), types)
            timed("fold", fold, timed("decode", decode, rows))
        for collection, docs in sorted(memory.items(), key=lambda item: -len(item[1])):
            if docs:
                timed(f"write {collection} ({len(docs):,} documents)", fresh.bulk_write, {collection: docs})
                timed(f"indexes of {collection}", fresh.ensure_indexes, [collection])
        memory.clear()
    finally:
        fresh.close()
        for name in (fresh.path, f"{fresh.path}-wal", f"{fresh.path}-shm"):
            if os.path.exists(name):
                os.remove(name)
        gc.enable()
    total = sum(spent.values())
    return [[label, seconds, 100 * seconds / total] for label, seconds in spent.items()] + [["total", total, 100.0]]


def digest(documents: Any) -> str:
    """A digest of every stored row (key, tenant, position, document) and the tracking positions."""
    sha = hashlib.sha256()
    conn = documents._reader()
    for name in [*documents.projections, "tracking"]:
        for row in conn.execute(f"SELECT * FROM {name} ORDER BY 1"):
            sha.update(repr(tuple(row)).encode())
    return sha.hexdigest()[:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small log (< 1 min)")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--commands-per-case", type=float, default=4.0)
    parser.add_argument("--batch-size", type=int, default=None, help="runner batch (default: Settings)")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="bound on each timed pass")
    parser.add_argument("--profile", action="store_true", help="cProfile a rebuild (1 process)")
    parser.add_argument("--phases", action="store_true", help="CPU seconds per phase of a rebuild (1 process)")
    parser.add_argument("--processes", type=int, nargs="+", choices=(1, 2), default=[1, 2],
                        help="rebuild passes: 1 process, 2 (a helper folds every other read model), or both")
    parser.add_argument("--no-live", dest="live", action="store_false",
                        help="skip the live runner's batch-by-batch pass (the slow 'before' reference)")
    args = parser.parse_args()
    if args.quick:
        args.cases, args.max_seconds = 2_000, 40.0

    from adapters.embedded_runner import EmbeddedRunner, freeze_startup_objects
    from adapters.event_store import sqlite_event_store
    from adapters.sqlite_documents import SqliteDocumentStore
    from casestream.settings import Settings
    from projections.catalog import ALL

    freeze_startup_objects()  # as EmbeddedRunner.rebuild and start do; before the baselines too, like for like

    batch_size = args.batch_size or Settings().runner_batch_size
    shape = LogShape(args.cases, args.commands_per_case)
    banner("rebuild: SQLite event log -> embedded read models",
           f"log: {shape} (cached); runner batch {batch_size}; read baselines page {READ_BATCH}")
    path, _generated = cached_log(shape)
    rows: list[list[Any]] = []
    with temp_dir("rebuild") as tmp:
        store = sqlite_event_store(path, synchronous="NORMAL")
        total = store.max_position()
        print(f"log: {path} ({path.stat().st_size / 1e6:,.0f} MB, {total:,} events)", flush=True)
        if total < 1_000_000 and not args.quick:
            print(f"note: the log holds {total:,} events (< 1,000,000); raise --cases", flush=True)
        results: dict[str, float] = {}
        for label, raw in (("baseline: read_raw, undecoded", True), ("baseline: read + decode", False)):
            n, secs, cpu = timed_read(store, raw, args.max_seconds)
            results[label] = n / secs
            rows.append([label, n, secs, n / secs, cpu, n / cpu if cpu else float("nan"), ""])
        documents = SqliteDocumentStore(tmp / "views.sqlite", ALL)
        runner = EmbeddedRunner(store, documents, ALL, batch_size=batch_size)
        digests: dict[str, str] = {}
        if args.live:
            n, secs, cpu = timed_rebuild(runner, documents, args.max_seconds)
            complete = "" if n >= total else f" (stopped at {args.max_seconds:g}s)"
            rows.append([f"live path: reset + catch_up{complete}", n, secs, n / secs, cpu,
                         n / cpu if cpu else float("nan"), ""])
            results["live path"] = n / secs
            digests["live path"] = digest(documents) if n >= total else "(stopped)"
        rate = 0.0
        for processes in args.processes:
            n, secs, cpu = timed_bulk_rebuild(runner, processes)
            rows.append([f"rebuild: EmbeddedRunner.rebuild, {processes} process{'es' if processes > 1 else ''}",
                         n, secs, n / secs, cpu, n / cpu if cpu else float("nan"),
                         f">= {TARGET_EVENTS_PER_S:,.0f}/s: "
                         f"{verdict(n / secs, TARGET_EVENTS_PER_S, higher_is_better=True)}"])
            rate = max(rate, n / secs)
            digests[f"{processes} process{'es' if processes > 1 else ''}"] = digest(documents)
        sizes = {c: documents._reader().execute(f"SELECT COUNT(*) FROM {c}").fetchone()[0]
                 for c in documents.projections}
        views_mb = sum(p.stat().st_size for p in tmp.glob("views.sqlite*")) / 1e6
        phase_rows = phases(store, documents, ALL) if args.phases else []
        profile_text = ""
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(runner.rebuild, processes=1)
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(28)
            profile_text = out.getvalue()
        documents.close()
        store.close()
    table(["pass", "events", "seconds", "events/s", "CPU s", "events/CPU-s", "target"], rows)
    print(f"read models after rebuild: {sizes}; views file {views_mb:,.0f} MB")
    same = len(set(d for d in digests.values() if d != "(stopped)")) == 1
    print(f"digest of every stored row per pass: {digests} -> {'identical' if same else 'DIFFERENT'}")
    if phase_rows:
        print(f"CPU seconds per phase of a rebuild ({total:,} events):")
        table(["phase", "CPU s", "%"], phase_rows)
    if profile_text:
        print("cProfile of EmbeddedRunner.rebuild (this process only):\n" + profile_text)
    print(common.machine_line())
    decoded = results["baseline: read + decode"]
    live = f"/ live path events/s = {rate / results['live path']:.2f}x; " if "live path" in results else ""
    print(f"RATIO best rebuild events/s / read+decode events/s = {rate:,.0f} / {decoded:,.0f} = {rate / decoded:.2f}x; "
          f"/ raw read events/s = {rate / results['baseline: read_raw, undecoded']:.3f}x; {live}"
          f"target >= {TARGET_EVENTS_PER_S:,.0f}/s: {verdict(rate, TARGET_EVENTS_PER_S, higher_is_better=True)}")


if __name__ == "__main__":
    main()
