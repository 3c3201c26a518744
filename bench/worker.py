"""Worker: events/s one `casestream worker` (aiokafka group consumer) folds from Kafka into the MongoDB read models,
beside the MongoDB-wire server's own write floor, and both rebuilds.

A generated event log (the one bench/rebuild.py uses, smaller by default; cached under ~/.cache/casestream/bench/)
is copied to a temp folder and published to fresh Kafka topics by the real relay. Then, in this run:
  * baseline: the raw aiokafka consume rate of the same topics (no group, from the first offset to the end,
    `getmany` pages; values not decoded) — what Kafka and the client give before any work;
  * reference: decode + `fold_batch` of the same records into an in-memory dict (no database) — the worker's own
    CPU cost per event;
  * the database floor: the documents each batch of the worker writes (folded in memory first, untimed) stored
    with the same store calls into a fresh database — what the MongoDB-wire server allows any worker at best;
  * the worker's `BatchProcessor` in this process (no consumer group), with seconds per phase;
  * one `casestream worker` subprocess (a new consumer group, a fresh MongoDB database): events/s from the
    moment its group is Stable until every partition's tracking document reaches the end offset; its CPU/event;
  * `casestream worker rebuild --from kafka` and `--from store` (in-process, the same functions), events/s.

MongoDB is the FerretDB 1.24 of infra/ (PostgreSQL backend; the only MongoDB-wire server that may run here):
its per-statement cost bounds the write figures, see docs/read-models.md. Targets printed: the worker >= 0.8x the
database floor of the same run (issue #13), and >= 5,000 events/s (issue #4; not reachable on FerretDB here).

    python bench/worker.py --quick      # < 1-2 min
    python bench/worker.py              # 20,000 cases (~100,000 published events)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import common
from common import LogShape, banner, cached_log, copy_db, process_cpu_seconds, table, temp_dir, verdict

TARGET_EVENTS_PER_S = 5_000.0
TARGET_FLOOR_SHARE = 0.8  # the worker against the same run's database floor


def ensure_servers(mongo_url: str | None) -> tuple[str, str]:
    """Kafka and (unless a MongoDB URL is given) FerretDB from infra/, started if needed and then left running."""
    from infra.ferretdb import FerretDBServer
    from infra.kafka import KafkaServer
    from infra.server import Server

    servers: list[Server] = [KafkaServer()] if mongo_url else [KafkaServer(), FerretDBServer()]
    for server in servers:
        if server.up():
            print(f"(started {server.name}; it is left running)")
    return str(servers[0].info()["bootstrap"]), mongo_url or str(servers[1].info()["uri"])


async def publish(events_path: Path, bootstrap: str, prefix: str) -> tuple[int, float]:
    """Relay the whole log to fresh topics; (events published, seconds)."""
    from adapters.event_store import sqlite_event_store
    from adapters.kafka_relay import KafkaRelay, RelayConfig

    store = sqlite_event_store(events_path, synchronous="NORMAL")
    relay = KafkaRelay(store, RelayConfig(bootstrap=bootstrap, prefix=prefix, batch_size=5000))
    try:
        await relay.start()
        started = time.perf_counter()
        await relay.catch_up()
        return relay.published, time.perf_counter() - started
    finally:
        await relay.close()
        store.close()


async def raw_consume(bootstrap: str, prefix: str, decode: bool) -> tuple[int, float, float, list[Any]]:
    """Read every record of the event topics once, no group; (records, seconds, CPU seconds, records if decode)."""
    from aiokafka import AIOKafkaConsumer

    from adapters.stream_worker.app import event_topics
    from adapters.stream_worker.rebuild import _partitions

    partitions = await _partitions(bootstrap, event_topics(prefix))
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    kept: list[Any] = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if end[tp] > 0}
        cpu0 = time.process_time()
        started = time.perf_counter()
        n = 0
        while remaining:
            fetched = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for records in fetched.values():
                n += len(records)
                if decode:
                    kept.extend(records)
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        return n, time.perf_counter() - started, time.process_time() - cpu0, kept
    finally:
        await consumer.stop()


def fold_in_memory(records: Sequence[Any], batch: int) -> tuple[int, float, float]:
    """decode + fold_batch into a dict (no database); (events, seconds, CPU seconds)."""
    from adapters.stream_worker.parking import Delivery
    from adapters.stream_worker.processing import decode
    from projections.catalog import ALL
    from projections.folding import Stored, fold_batch

    state: dict[tuple[str, str], Stored] = {}

    def load(collection: str, keys: Sequence[str]) -> Mapping[str, Stored]:
        return {k: state[(collection, k)] for k in keys if (collection, k) in state}

    cpu0 = time.process_time()
    started = time.perf_counter()
    for start in range(0, len(records), batch):
        items = [decode(Delivery(r.topic, r.partition, r.offset, r.key, r.value)) for r in records[start:start + batch]]
        for w in fold_batch(ALL, items, load):
            state[(w.collection, w.key)] = (w.doc, w.position)
    return len(records), time.perf_counter() - started, time.process_time() - cpu0


def writes_only(records: Sequence[Any], mongo_url: str, database: str, batch: int) -> tuple[int, float, float]:
    """The database alone: the documents each batch of the worker writes (folded in memory first, untimed) stored
    with the same store call as the worker (insert_and_replace: documents not seen before inserted, the others
    replaced, at once) into a fresh database; (events, seconds of writing, CPU seconds). What MongoDB allows a
    worker at best."""
    from adapters.mongo_documents import MongoDocumentStore
    from adapters.stream_worker.parking import Delivery
    from adapters.stream_worker.processing import decode
    from projections.catalog import ALL
    from projections.folding import Stored, fold_batch
    from projections.ports import Write

    state: dict[tuple[str, str], Stored] = {}

    def load(collection: str, keys: Sequence[str]) -> Mapping[str, Stored]:
        return {k: state[(collection, k)] for k in keys if (collection, k) in state}

    batches: list[tuple[dict[str, list[Write]], dict[str, list[Write]]]] = []
    for start in range(0, len(records), batch):
        items = [decode(Delivery(r.topic, r.partition, r.offset, r.key, r.value)) for r in records[start:start + batch]]
        new: dict[str, list[Write]] = {}
        old: dict[str, list[Write]] = {}
        for w in fold_batch(ALL, items, load):
            (old if (w.collection, w.key) in state else new).setdefault(w.collection, []).append(w)
            state[(w.collection, w.key)] = (w.doc, w.position)
        batches.append((new, old))
    documents = MongoDocumentStore(mongo_url, database, ALL)
    try:
        cpu0 = time.process_time()
        started = time.perf_counter()
        for new, old in batches:
            documents.insert_and_replace(new, old)
        return len(records), time.perf_counter() - started, time.process_time() - cpu0
    finally:
        documents.client.drop_database(database)
        documents.close()


async def end_offsets(bootstrap: str, prefix: str) -> dict[str, int]:
    """tracking name -> the last offset of each non-empty partition."""
    from aiokafka import AIOKafkaConsumer

    from adapters.stream_worker.app import event_topics
    from adapters.stream_worker.processing import tracking_name
    from adapters.stream_worker.rebuild import _partitions

    partitions = await _partitions(bootstrap, event_topics(prefix))
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        end = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tracking_name(tp.topic, tp.partition): offset - 1 for tp, offset in end.items() if offset > 0}


def run_worker(bootstrap: str, prefix: str, mongo_url: str, database: str, batch: int, log_dir: Path,
               events: int, timeout: float) -> tuple[int, float, float]:
    """One `casestream worker` over the topics; (events, seconds from group Stable to done, worker CPU seconds)."""
    from pymongo import MongoClient

    sys.path.insert(0, str(common.ROOT))
    from tests.integration.kafka.support_worker import group_members, start_worker

    last = asyncio.run(end_offsets(bootstrap, prefix))
    group = f"{prefix}-bench"
    worker = start_worker(log_dir, bootstrap=bootstrap, prefix=prefix, mongo_url=mongo_url, database=database,
                          group=group, name="bench", batch_size=batch)
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url)
    tracking = client[database]["tracking"]
    try:
        deadline = time.monotonic() + 120
        while asyncio.run(group_members(bootstrap, group)) != ("Stable", 1):
            if not worker.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not join:\n{worker.output()[-3000:]}")
            time.sleep(0.1)
        started = time.perf_counter()
        cpu0 = process_cpu_seconds(worker.pid)
        deadline = time.monotonic() + timeout
        while True:
            done = {str(d["_id"]): int(d.get("offset", -1)) for d in tracking.find({"_id": {"$regex": "^worker:"}})}
            if all(done.get(name, -1) >= offset for name, offset in last.items()):
                break
            if not worker.alive() or time.monotonic() > deadline:
                handled = sum(done.get(name, -1) + 1 for name in last)
                print(f"(worker stopped or timed out after {handled:,} of {events:,} records)")
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        cpu = process_cpu_seconds(worker.pid) - cpu0
        return events, seconds, cpu
    finally:
        worker.stop()
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small log (< 2 min)")
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--commands-per-case", type=float, default=4.0)
    parser.add_argument("--batch-size", type=int, default=2000, help="worker batch (CASESTREAM_WORKER_BATCH_SIZE)")
    parser.add_argument("--timeout", type=float, default=600.0, help="bound on the worker pass (seconds)")
    parser.add_argument("--mongo-url", default=None, help="MongoDB to write to (default: infra's FerretDB)")
    args = parser.parse_args()
    cases = 2_000 if args.quick else args.cases

    banner("casestream worker: Kafka -> MongoDB read models",
           f"log: {cases:,} cases, {args.commands_per_case:g} follow-up commands per case; "
           f"worker batch {args.batch_size}")
    shape = LogShape(cases, args.commands_per_case)
    source, _ = cached_log(shape)
    bootstrap, mongo_url = ensure_servers(args.mongo_url)
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    database = f"bench_worker_{uuid.uuid4().hex[:8]}"
    rows: list[list[Any]] = []
    try:
        with temp_dir("worker") as tmp:
            events_path = copy_db(source, tmp / "events.sqlite")
            published, relay_s = asyncio.run(publish(events_path, bootstrap, prefix))
            print(f"relayed {published:,} events to Kafka in {relay_s:.1f}s ({published / relay_s:,.0f}/s)", flush=True)

            n, s, cpu, _ = asyncio.run(raw_consume(bootstrap, prefix, decode=False))
            add(rows, ["raw aiokafka consume (baseline)", n, s, n / s, cpu / n * 1e6, ""])
            _, _, _, records = asyncio.run(raw_consume(bootstrap, prefix, decode=True))
            n, s, cpu = fold_in_memory(records, args.batch_size)
            add(rows, ["decode + fold_batch, in memory (reference)", n, s, n / s, cpu / n * 1e6, ""])
            n, s, cpu = writes_only(records, mongo_url, f"{database}_writes", args.batch_size)
            add(rows, ["the same writes alone -> MongoDB (database floor)", n, s, n / s, cpu / n * 1e6, ""])
            n, s, cpu, phases = process_in_process(records, mongo_url, f"{database}_inproc", args.batch_size)
            add(rows, ["BatchProcessor in-process -> MongoDB, no group", n, s, n / s, cpu / n * 1e6, ""])
            print("  seconds by phase: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(phases.items())), flush=True)
            del records

            n, s, cpu = run_worker(bootstrap, prefix, mongo_url, database, args.batch_size, tmp, published,
                                   args.timeout)
            worker_rate = n / s
            add(rows, ["casestream worker -> MongoDB (FerretDB)", n, s, worker_rate, cpu / n * 1e6,
                       verdict(worker_rate, TARGET_EVENTS_PER_S, higher_is_better=True)])

            from adapters.event_store import sqlite_event_store
            from adapters.mongo_documents import MongoDocumentStore
            from adapters.stream_worker.app import WorkerConfig
            from adapters.stream_worker.rebuild import rebuild_from_kafka, rebuild_from_store
            from projections.catalog import ALL

            config = WorkerConfig(bootstrap=bootstrap, prefix=prefix, mongo_url=mongo_url, database=database,
                                  batch_size=args.batch_size, name="bench-rebuild")
            documents = MongoDocumentStore(mongo_url, database, ALL)
            try:
                cpu0 = time.process_time()
                result = asyncio.run(rebuild_from_kafka(config, documents=documents))
                add(rows, ["rebuild --from kafka", result.events, result.seconds, result.rate,
                           (time.process_time() - cpu0) / max(1, result.events) * 1e6, ""])
                store = sqlite_event_store(events_path, synchronous="NORMAL")
                try:
                    cpu0 = time.process_time()
                    result = rebuild_from_store(config, store, documents=documents)
                finally:
                    store.close()
                add(rows, ["rebuild --from store", result.events, result.seconds, result.rate,
                           (time.process_time() - cpu0) / max(1, result.events) * 1e6, ""])
            finally:
                documents.close()
    finally:
        from infra.kafka import delete_prefixed_topics

        asyncio.run(delete_prefixed_topics(bootstrap, prefix))
        drop_database(mongo_url, database)

    table(["what", "events", "seconds", "events/s", "CPU us/event", f"target >= {TARGET_EVENTS_PER_S:,.0f}/s"], rows)
    rate = {str(row[0]): float(row[3]) for row in rows}
    baseline = rate["raw aiokafka consume (baseline)"]
    floor = rate["the same writes alone -> MongoDB (database floor)"]
    print(f"target: worker >= {TARGET_FLOOR_SHARE}x the database floor -> "
          f"{verdict(worker_rate / floor, TARGET_FLOOR_SHARE, higher_is_better=True)} ({worker_rate / floor:.2f}x)")
    print(common.machine_line())
    print(f"RATIO worker/raw-consume {worker_rate / baseline:.3f}; worker/database-floor {worker_rate / floor:.2f}; "
          f"worker {worker_rate:,.0f} events/s vs raw consume {baseline:,.0f}/s and the writes alone "
          f"{floor:,.0f}/s; rebuild kafka {rate['rebuild --from kafka']:,.0f}/s, "
          f"store {rate['rebuild --from store']:,.0f}/s")


def add(rows: list[list[Any]], row: list[Any]) -> None:
    """Keep a result row and show it at once (the table at the end repeats them)."""
    rows.append(row)
    print(f"  {row[0]}: {row[1]:,} events in {row[2]:.1f}s = {row[3]:,.0f} events/s", flush=True)


def process_in_process(records: Sequence[Any], mongo_url: str, database: str, batch: int) -> tuple[
        int, float, float, dict[str, float]]:
    """The worker's BatchProcessor without a consumer group, over the same records into a fresh database (dropped
    after); (events, seconds, CPU seconds, seconds by phase)."""
    from adapters.mongo_documents import MongoDocumentStore
    from adapters.stream_worker.parking import Delivery, MongoParking
    from adapters.stream_worker.processing import BatchProcessor
    from projections.catalog import ALL

    documents = MongoDocumentStore(mongo_url, database, ALL)
    try:
        processor = BatchProcessor(documents, ALL, MongoParking(documents.db), worker="bench-inprocess")
        deliveries = [Delivery(r.topic, r.partition, r.offset, r.key, r.value) for r in records]
        cpu0 = time.process_time()
        started = time.perf_counter()
        for start in range(0, len(deliveries), batch):
            processor.process(deliveries[start:start + batch])
        return len(deliveries), time.perf_counter() - started, time.process_time() - cpu0, processor.seconds
    finally:
        documents.client.drop_database(database)
        documents.close()


def drop_database(mongo_url: str, database: str) -> None:
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url)
    try:
        client.drop_database(database)
    finally:
        client.close()


if __name__ == "__main__":
    main()
