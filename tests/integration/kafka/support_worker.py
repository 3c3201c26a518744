"""Helpers for worker tests: `casestream worker` subprocesses, MongoDB read-model snapshots, a fresh fold to compare.

`start_worker(...)` runs a real `casestream worker` (an aiokafka group consumer) configured by CASESTREAM_*
variables; stop it with `.stop()` (SIGTERM, waits, returns its output) or `.kill()` (SIGKILL: a crash).
`preamble` is Python run in the worker process before the CLI starts (tests use it to deploy a deliberately
buggy projection).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError
from pymongo import MongoClient

from adapters.event_store import RecorderEventStore
from adapters.kafka_relay import KafkaRelay, RelayConfig
from adapters.mongo_documents import MongoDocumentStore
from domain.events import Positioned
from infra.kafka import delete_prefixed_topics
from infra.server import Server
from projections.base import Doc, Projection
from projections.catalog import ALL
from projections.folding import Stored, fold_batch
from tests.postgres_store import postgres_store, scratch_database

ROOT = Path(__file__).resolve().parents[3]
Snapshot = dict[str, dict[str, tuple[Doc | None, int]]]  # collection -> key -> (document, position)


def worker_env(
    *, bootstrap: str, prefix: str, mongo_url: str, database: str, group: str, batch_size: int = 500,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a worker process (CASESTREAM_* only from here, nothing inherited)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASESTREAM_")}
    env.update({
        "CASESTREAM_KAFKA_BOOTSTRAP": bootstrap,
        "CASESTREAM_KAFKA_TOPIC_PREFIX": prefix,
        "CASESTREAM_MONGO_URL": mongo_url,
        "CASESTREAM_MONGO_DATABASE": database,
        "CASESTREAM_WORKER_GROUP": group,
        "CASESTREAM_WORKER_BATCH_SIZE": str(batch_size),
        "CASESTREAM_WORKER_REBALANCE_TIMEOUT": "2",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra or {})
    return env


@dataclass
class WorkerProcess:
    """A running `casestream worker` subprocess; its output goes to log_path."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> str:
        """SIGTERM, wait for a clean exit (SIGKILL if it does not come); return the output."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.output()

    def kill(self) -> str:
        """SIGKILL (a crash: nothing is flushed or committed); return the output."""
        if self.alive():
            self.process.kill()
            self.process.wait(timeout=10)
        return self.output()


def run_cli(args: Sequence[str], env: Mapping[str, str], preamble: str = "", timeout: float = 120.0) -> \
        subprocess.CompletedProcess[str]:
    """Run `casestream <args>` (the distributed commands) to completion."""
    code = f"{preamble}\nfrom casestream.cli_distributed import main\nmain()\n"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=dict(env), capture_output=True,
                          text=True, timeout=timeout)


def start_worker(
    log_dir: Path, *, bootstrap: str, prefix: str, mongo_url: str, database: str, group: str,
    name: str | None = None, batch_size: int = 500, preamble: str = "", extra: Mapping[str, str] | None = None,
) -> WorkerProcess:
    """Start `casestream worker --name NAME` in its own session; returns at once (see wait_joined)."""
    name = name or f"w{uuid.uuid4().hex[:6]}"
    env = worker_env(bootstrap=bootstrap, prefix=prefix, mongo_url=mongo_url, database=database, group=group,
                     batch_size=batch_size, extra=extra)
    log_path = log_dir / f"worker-{name}.log"
    code = f"{preamble}\nfrom casestream.cli_distributed import main\nmain()\n"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-c", code, "worker", "--name", name], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return WorkerProcess(name, process, log_path, env)


async def wait_until(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition",
                     workers: Iterable[WorkerProcess] = ()) -> None:
    """Poll check() (in a thread) until true; on timeout fail with the workers' log tails."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        for worker in workers:
            if not worker.alive():
                raise AssertionError(f"worker {worker.name} exited ({worker.process.returncode}) while waiting "
                                     f"for {what}:\n{worker.output()[-4000:]}")
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {w.name}\n{w.output()[-3000:]}" for w in workers)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tails}")
        await asyncio.sleep(0.2)


async def group_members(bootstrap: str, group: str) -> tuple[str, int]:
    """(state, number of members) of a consumer group, e.g. ("Stable", 2)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        try:
            response = (await admin.describe_consumer_groups([group]))[0]
        except GroupCoordinatorNotAvailableError:
            # a fresh broker creates __consumer_offsets on the first group lookup: no coordinator yet
            return "NoCoordinator", 0
        described = response.groups[0]
        return str(described[2]), len(described[5])
    finally:
        await admin.close()


async def wait_joined(bootstrap: str, group: str, members: int, workers: Sequence[WorkerProcess],
                      timeout: float = 90.0) -> None:
    """Wait until the group is Stable with `members` members (every worker has its partitions)."""
    deadline = time.monotonic() + timeout
    while True:
        state, count = await group_members(bootstrap, group)
        if state == "Stable" and count == members:
            return
        for worker in workers:
            if not worker.alive():
                raise AssertionError(f"worker {worker.name} exited:\n{worker.output()[-4000:]}")
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {w.name}\n{w.output()[-3000:]}" for w in workers)
            raise AssertionError(f"group {group} is {state} with {count} members, not {members}\n{tails}")
        await asyncio.sleep(0.3)


def fresh_fold(events: Sequence[Positioned], projections: Sequence[Projection] = ALL) -> Snapshot:
    """The read models a fold of `events` into empty stores gives (a plain dict, no database)."""
    state: Snapshot = {p.collection: {} for p in projections}

    def load(collection: str, keys: Sequence[str]) -> Mapping[str, Stored]:
        return {k: state[collection][k] for k in keys if k in state[collection]}

    for start in range(0, len(events), 500):
        for w in fold_batch(projections, events[start:start + 500], load):
            state[w.collection][w.key] = (w.doc, w.position)
    return state


def snapshot(documents: MongoDocumentStore, projections: Sequence[Projection] = ALL) -> Snapshot:
    """Every stored read-model document with its position (tombstones as None), decoded as the adapter reads."""
    # one scan per collection: get_many is one lookup per key on FerretDB, minutes for tens of thousands
    return {p.collection: documents.scan(p.collection) for p in projections}


def differences(actual: Snapshot, expected: Snapshot, limit: int = 5) -> list[str]:
    """What differs between two snapshots (for assertion messages)."""
    problems: list[str] = []
    for collection in sorted(set(actual) | set(expected)):
        a, e = actual.get(collection, {}), expected.get(collection, {})
        for key in sorted(set(a) | set(e)):
            if a.get(key) != e.get(key):
                problems.append(f"{collection}/{key}: got {str(a.get(key))[:300]} expected {str(e.get(key))[:300]}")
                if len(problems) >= limit:
                    return problems
    return problems


def tracking_documents(documents: MongoDocumentStore) -> dict[str, dict[str, Any]]:
    """The workers' per-partition tracking documents, by name (worker:<topic>:<partition>)."""
    return {str(r["_id"]): r for r in documents.db["tracking"].find({"_id": {"$regex": "^worker:"}})}


# --- fixtures (import them into a test module: `from tests.integration.kafka.support_worker import ...`) ---------

@pytest.fixture
def bootstrap(kafka_server: Server) -> str:
    return str(kafka_server.info()["bootstrap"])


@pytest.fixture
async def prefix(bootstrap: str) -> AsyncIterator[str]:
    """A fresh topic prefix per test (the relay and the workers create the topics; deleted afterwards)."""
    name = f"w{uuid.uuid4().hex[:10]}"
    yield name
    await delete_prefixed_topics(bootstrap, name)


@pytest.fixture
def mongo_url(ferretdb_server: Server) -> str:
    return str(ferretdb_server.info()["uri"])


@pytest.fixture
def database(mongo_url: str) -> Iterator[str]:
    """A fresh MongoDB database per test, dropped afterwards."""
    name = f"worker_{uuid.uuid4().hex[:8]}"
    yield name
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url, serverSelectionTimeoutMS=10_000)
    try:
        client.drop_database(name)
    finally:
        client.close()


@pytest.fixture
def documents(mongo_url: str, database: str) -> Iterator[MongoDocumentStore]:
    store = MongoDocumentStore(mongo_url, database, ALL)
    yield store
    store.close()


@pytest.fixture
def event_store(postgres_server: Server) -> Iterator[RecorderEventStore]:
    """A PostgreSQL event store in a fresh database (the distributed mode's), dropped afterwards."""
    with scratch_database(postgres_server, "worker") as dbname:
        store = postgres_store(postgres_server, dbname)
        try:
            yield store
        finally:
            store.close()


async def relay_all(store: RecorderEventStore, bootstrap: str, prefix: str) -> None:
    """Publish the whole log to Kafka (the real relay) and stop."""
    relay = KafkaRelay(store, RelayConfig(bootstrap=bootstrap, prefix=prefix, batch_size=500))
    await relay.start()
    try:
        await relay.catch_up()
    finally:
        await relay.close()
