"""One contract for the EventStore port, run against the SQLite file store and a real PostgreSQL server."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.event_store import RecorderEventStore, postgres_event_store, sqlite_event_store
from commands.bus import Actor, CommandBus
from commands.messages import AssignCase, OpenCase, PublishCaseDefinition, StageIn
from domain.case import Case, CaseAssigned
from domain.errors import VersionConflict
from domain.events import Context
from infra.postgres import PostgresServer
from infra.server import Server

ACTOR = Actor("alice", "acme", ("caseworker",))
DEFINITION = PublishCaseDefinition(
    key="claim", name="Claim", schema={"type": "object", "properties": {"amount": {"type": "number"}}},
    stages=[StageIn(key="new", transitions=["done"]), StageIn(key="done")],
)


def _ctx() -> Context:
    return Context("alice", "acme", str(uuid.uuid4()), "corr", "cause", datetime.now(UTC))


class EventStoreContract:
    """Behaviour every EventStore must have."""

    @pytest.fixture()
    def store(self) -> Iterator[RecorderEventStore]:
        raise NotImplementedError

    def test_append_returns_increasing_positions_and_reads_back_in_order(self, store: RecorderEventStore) -> None:
        bus = CommandBus(store)
        bus.dispatch(DEFINITION, ACTOR)
        opened = bus.dispatch(OpenCase(definition_key="claim", title="t", data={"amount": 1}), ACTOR)
        assigned = bus.dispatch(AssignCase(case_id=uuid.UUID(opened.id), assignee="bob"), ACTOR)
        assert opened.position < assigned.position == store.max_position()
        log = store.read(0, 1000)
        positions = [p.position for p in log]
        assert positions == sorted(positions)
        assert positions == list(range(positions[0], positions[0] + len(positions)))  # gap-free
        case_events = [p.event for p in log if p.event.aggregate_id == uuid.UUID(opened.id)]
        assert [type(e).__name__ for e in case_events] == ["CaseOpened", "CaseAssigned"]
        assert isinstance(case_events[1], CaseAssigned)
        assert case_events[1].assignee == "bob"
        assert case_events[1].meta.actor == "alice"
        logged = next(p.position for p in log if p.event.aggregate_id == uuid.UUID(opened.id) and p.event.version == 2)
        assert store.position_of(uuid.UUID(opened.id), 2) == logged <= assigned.position

    def test_read_after_and_limit(self, store: RecorderEventStore) -> None:
        bus = CommandBus(store)
        bus.dispatch(DEFINITION, ACTOR)
        for i in range(5):
            bus.dispatch(OpenCase(definition_key="claim", title=f"t{i}", data={}), ACTOR)
        everything = store.read(0, 100)
        page = store.read(everything[2].position, 3)
        assert [p.position for p in page] == [p.position for p in everything[3:6]]

    def test_clashing_version_is_refused_and_nothing_is_stored(self, store: RecorderEventStore) -> None:
        from domain.definition import DefinitionSpec, Stage

        spec = DefinitionSpec("claim", "Claim", {"type": "object"}, (Stage("new", "New"),))
        case = Case.open(_ctx(), spec, 1, 1, "t", {})
        store.append(case.collect())
        first = Case.replay(case.id, store.events_of(case.id))
        second = Case.replay(case.id, store.events_of(case.id))
        first.assign(_ctx(), "bob")
        second.assign(_ctx(), "carol")
        store.append(first.collect())
        head = store.max_position()
        with pytest.raises(VersionConflict):
            store.append(second.collect())
        assert store.max_position() == head
        assert Case.replay(case.id, store.events_of(case.id)).assignee == "bob"

    def test_concurrent_openings_get_distinct_gap_free_numbers(self, store: RecorderEventStore) -> None:
        bus = CommandBus(store)
        bus.dispatch(DEFINITION, ACTOR)
        numbers: list[str] = []
        lock = threading.Lock()

        def open_some() -> None:
            for _ in range(10):
                result = bus.dispatch(OpenCase(definition_key="claim", title="t", data={}), ACTOR)
                with lock:
                    numbers.append(str(result.extra["number"]))

        threads = [threading.Thread(target=open_some) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(numbers) == [f"CLAIM-{n:06d}" for n in range(1, 41)]

    def test_on_append_listener_hears_last_position(self, store: RecorderEventStore) -> None:
        heard: list[int] = []
        store.on_append(heard.append)
        result = CommandBus(store).dispatch(DEFINITION, ACTOR)
        # a store shared by processes may also call it for appends it did not make itself, with position 0
        assert [p for p in heard if p != 0] == [result.position]


class TestSqliteEventStore(EventStoreContract):
    @pytest.fixture()
    def store(self, tmp_path: Path) -> Iterator[RecorderEventStore]:
        store = sqlite_event_store(tmp_path / "events.sqlite")
        yield store
        store.close()


class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture()
    def store(self, postgres_server: Server) -> Iterator[RecorderEventStore]:
        assert isinstance(postgres_server, PostgresServer)
        dbname = f"es_{uuid.uuid4().hex[:12]}"
        postgres_server.create_database(dbname)
        info = postgres_server.info()
        store = postgres_event_store(
            host=info["host"], port=int(info["port"]), dbname=dbname, user=info["user"], password=info["password"],
            pool_size=4,
        )
        yield store
        store.close()
