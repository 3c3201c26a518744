"""Faults under load, the distributed mode on a 3-node Kafka cluster: while 21,600 commands are stored (the issue's
"at least 20,000"; CASESTREAM_FAULT_CASES_PER_THREAD=40 runs a 4,320-command version for a quick look), the relay
is killed (-9) and restarted, a worker is killed (-9) and replaced, and a Kafka node is killed and restarted.
After everything caught up, every MongoDB read model equals a fresh fold of the event store's log: nothing
missing, nothing applied twice, each case's events applied in order."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.event_store import RecorderEventStore, postgres_event_store
from adapters.kafka_relay import HeadStore, positions_for
from adapters.mongo_documents import MongoDocumentStore
from adapters.read_progress import KafkaReadProgress, mongo_tracking
from commands import messages as m
from commands.bus import CommandBus
from infra.ferretdb import FerretDBServer
from infra.kafka import KafkaCluster
from infra.postgres import PostgresServer
from infra.server import Server
from projections.catalog import ALL
from tests.e2e.distributed import Deployment, Service, drop_deployment, services_tail, wait_for
from tests.integration.kafka.support import ACTOR, published
from tests.integration.kafka.support_worker import Snapshot, differences, fresh_fold, group_members, snapshot
from tests.unit.conftest import claim_definition

pytestmark = pytest.mark.integration
THREADS = 4
# 4 threads x 200 cases x 27 commands = 21,600 commands (issue #4: at least 20,000). The workers' pace on FerretDB
# decides the run time (bench/worker.py): ~4-5 minutes on this 2-core machine.
CASES_PER_THREAD = int(os.environ.get("CASESTREAM_FAULT_CASES_PER_THREAD", "200"))
ROUNDS = 13  # each round: a comment and a stage move on every case
TOTAL = THREADS * CASES_PER_THREAD * (1 + 2 * ROUNDS)
VICTIM_NODE = 2
PRIVATE_FERRETDB_PORT = 27527


@pytest.fixture(scope="module")
def cluster() -> Iterator[KafkaCluster]:
    cluster = KafkaCluster()
    started = cluster.up()
    try:
        yield cluster
    finally:
        if started:
            cluster.down()


@pytest.fixture(scope="module")
def mongo_url(postgres_server: Server) -> Iterator[str]:
    """A FerretDB of this module's own (another port): a shared one may be stopped by another test session."""
    server = FerretDBServer(port=PRIVATE_FERRETDB_PORT)
    started = server.up()
    try:
        yield server.info()["uri"]
    finally:
        if started:
            server.down()


@pytest.fixture
def deployment(
    postgres_server: Server, mongo_url: str, cluster: KafkaCluster, tmp_path: Path,
) -> Iterator[Deployment]:
    assert isinstance(postgres_server, PostgresServer)
    dbname = f"faults_{uuid.uuid4().hex[:8]}"
    postgres_server.create_database(dbname)
    (tmp_path / "data").mkdir()
    deployment = Deployment(postgres_server.info(), dbname, cluster.info()["bootstrap"], mongo_url, tmp_path)
    try:
        yield deployment
    finally:
        deployment.stop_all()
        drop_deployment(postgres_server, deployment)


def _store(deployment: Deployment, pool_size: int = 8) -> RecorderEventStore:
    pg = deployment.postgres
    return postgres_event_store(host=pg["host"], port=int(pg["port"]), dbname=deployment.dbname, user=pg["user"],
                                password=pg["password"], pool_size=pool_size)


class Load:
    """THREADS threads sending commands through the CommandBus; `done` counts the stored ones."""

    def __init__(self, bus: CommandBus) -> None:
        self.bus = bus
        self.done = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(THREADS)]

    def _send(self, command: m.Command) -> str:
        result = self.bus.dispatch(command, ACTOR)
        with self._lock:
            self.done += 1
        return result.id

    def _run(self, n: int) -> None:
        try:
            ids = [uuid.UUID(self._send(m.OpenCase(definition_key="claim", title=f"load {n}-{i}",
                                                   data={"amount": i})))
                   for i in range(CASES_PER_THREAD)]
            stages = ["review", "new"]
            for r in range(ROUNDS):
                for case_id in ids:
                    self._send(m.AddComment(case_id=case_id, body=f"round {r}"))
                    self._send(m.MoveCaseToStage(case_id=case_id, stage=stages[r % 2]))
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def running(self) -> bool:
        return any(t.is_alive() for t in self.threads)


def _checksums(snap: Snapshot) -> dict[str, str]:
    """One digest per read model over every (key, document, position), in key order."""
    return {
        collection: hashlib.sha256(orjson.dumps(sorted(docs.items()), option=orjson.OPT_SORT_KEYS)).hexdigest()
        for collection, docs in snap.items()
    }


def _wait_group(deployment: Deployment, members: int, services: Sequence[Service], timeout: float = 120) -> None:
    """Until the worker group is Stable with `members` members (a new cluster answers "no coordinator" a while)."""
    def joined() -> bool:
        try:
            return asyncio.run(group_members(deployment.bootstrap, deployment.group)) == ("Stable", members)
        except Exception:
            return False

    wait_for(joined, timeout, f"{members} workers in the group", services)


def _includes(progress: KafkaReadProgress, position: int) -> bool:
    try:
        return progress.snapshot().includes(position)
    except Exception:  # a shared server restarting under us: ask again
        return False


def _wait_count(load: Load, count: int, services: Sequence[Service]) -> None:
    wait_for(lambda: load.done >= count or not load.running(), 600, f"{count} commands", services)


def test_read_models_equal_a_fresh_fold_after_relay_worker_and_broker_crashes_under_load(
    deployment: Deployment, cluster: KafkaCluster,
) -> None:
    relay = deployment.start_relay("relay-1")
    wait_for(lambda: "starts after position" in relay.output(), 90, "the relay to create its topics", [relay])
    workers = [deployment.start_worker("w1"), deployment.start_worker("w2")]
    _wait_group(deployment, 2, [relay, *workers])
    services: list[Service] = [relay, *workers]

    store = _store(deployment)
    documents = MongoDocumentStore(deployment.mongo_url, deployment.mongo_database, ALL)
    try:
        bus = CommandBus(store)
        bus.dispatch(claim_definition(), ACTOR)
        bus.dispatch(m.DefineQueue(key="intake", name="Intake"), ACTOR)
        load = Load(bus)
        load.start()

        _wait_count(load, TOTAL // 6, services)
        relay.kill()  # -9 mid-batch: the batch in flight is sent again after the restart
        relay = deployment.start_relay("relay-2")
        services.append(relay)

        _wait_count(load, TOTAL // 3, services)
        workers[0].kill()  # -9: its partitions move to the other worker, uncommitted records are redelivered
        services.append(deployment.start_worker("w3"))

        _wait_count(load, TOTAL // 2, services)
        killed = cluster.stop_node(VICTIM_NODE, sig=signal.SIGKILL)
        time.sleep(5)  # the relay and the workers carry on with two brokers
        restarted = cluster.restart_node(VICTIM_NODE)
        assert restarted != killed

        wait_for(lambda: not load.running(), 600, "the load to finish", services)
        assert not load.errors, load.errors[:3]
        assert load.done == TOTAL
        head = store.max_position()

        positions = positions_for(store)
        assert isinstance(positions, HeadStore)
        progress = KafkaReadProgress(lambda: positions.load_spans("kafka"), mongo_tracking(documents.db))
        # generous: the workers' pace on FerretDB decides this (a loaded 2-core machine folds a few hundred events/s)
        wait_for(lambda: _includes(progress, head), 1500, "the read models to catch up", services)
        assert relay.alive() and services[-1].alive() and workers[1].alive(), services_tail(services)
        assert documents.db["worker_parked"].count_documents({}) == 0  # no event was treated as poison

        events = published(store)
        expected = fresh_fold(events)
        actual = snapshot(documents)
        assert _checksums(actual) == _checksums(expected), differences(actual, expected)
        # the fold's order check, spelled out: each case's document carries its last version and position
        cases = expected["cases"]
        assert len(cases) == THREADS * CASES_PER_THREAD
        for doc, _position in cases.values():
            assert doc is not None and doc["version"] == 1 + 2 * ROUNDS
    finally:
        documents.close()
        store.close()
        _stop_quietly(services)


def _stop_quietly(services: Sequence[Any]) -> None:
    for service in services:
        service.stop(timeout=20)
