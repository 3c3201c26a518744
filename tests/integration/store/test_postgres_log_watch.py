"""On PostgreSQL, a process's append listeners hear other processes' appends (LISTEN/NOTIFY), also after the
listening connection was cut: followers of the log (the process worker's runner) need not wait for their poll."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from adapters.event_store import RecorderEventStore, postgres_event_store
from commands.bus import Actor, CommandBus
from commands.messages import PublishCaseDefinition, StageIn
from infra.postgres import PostgresServer
from infra.server import Server

pytestmark = pytest.mark.integration
ACTOR = Actor("alice", "acme", ("admin",))


def definition(key: str) -> PublishCaseDefinition:
    return PublishCaseDefinition(key=key, name=key, schema={"type": "object"}, stages=[StageIn(key="new")])


class Ear:
    """An append listener that counts what it heard and lets a test wait for more."""

    def __init__(self) -> None:
        self.calls = 0
        self._changed = threading.Condition()

    def __call__(self, _position: int) -> None:
        with self._changed:
            self.calls += 1
            self._changed.notify_all()

    def wait_for(self, more_than: int, timeout: float = 20.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.calls > more_than, timeout)


@pytest.fixture
def dbname(postgres_server: Server) -> str:
    assert isinstance(postgres_server, PostgresServer)
    name = f"watch_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    return name


@pytest.fixture
def stores(postgres_server: Server, dbname: str) -> Iterator[Callable[[], RecorderEventStore]]:
    """Stores on one fresh database, each with its own connections, as separate processes would have."""
    assert isinstance(postgres_server, PostgresServer)
    info = postgres_server.info()
    opened: list[RecorderEventStore] = []

    def open_store() -> RecorderEventStore:
        store = postgres_event_store(host=info["host"], port=int(info["port"]), dbname=dbname, user=info["user"],
                                     password=info["password"], pool_size=2)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


def listening(store: RecorderEventStore, ear: Ear) -> None:
    """Register ear and wait until the store's watch listens (its first call: what it may have missed)."""
    store.on_append(ear)
    assert ear.wait_for(0), "the watch never connected"
    assert store.log_watch is not None and store.log_watch.connections == 1


def test_an_append_by_another_process_is_heard(stores: Callable[[], RecorderEventStore]) -> None:
    follower, writer = stores(), stores()
    ear = Ear()
    listening(follower, ear)
    before = ear.calls
    CommandBus(writer).dispatch(definition("claim"), ACTOR)
    assert ear.wait_for(before), "the other store's append was not heard"


def test_after_the_listening_connection_is_cut_it_listens_again_and_wakes_the_listeners(
    stores: Callable[[], RecorderEventStore], postgres_server: Server, dbname: str,
) -> None:
    follower, writer = stores(), stores()
    ear = Ear()
    listening(follower, ear)
    assert isinstance(postgres_server, PostgresServer)
    with psycopg.connect(postgres_server.dsn("postgres"), autocommit=True) as admin:
        cut = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = %s AND query LIKE 'LISTEN %%'", (dbname,)).fetchall()
    assert cut, "no listening connection to cut"
    deadline = time.monotonic() + 20
    assert follower.log_watch is not None
    while follower.log_watch.connections < 2:
        assert time.monotonic() < deadline, "the watch did not connect again"
        time.sleep(0.05)
    before = ear.calls
    CommandBus(writer).dispatch(definition("claim"), ACTOR)
    assert ear.wait_for(before), "an append after the reconnection was not heard"


def test_close_stops_the_watch(stores: Callable[[], RecorderEventStore]) -> None:
    others = set(threading.enumerate())
    follower = stores()
    ear = Ear()
    listening(follower, ear)
    watching = [t for t in threading.enumerate() if t.name == "casestream-log-watch" and t not in others]
    follower.close()
    assert watching and not any(t.is_alive() for t in watching)
