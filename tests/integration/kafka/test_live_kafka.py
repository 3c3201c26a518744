"""The SSE publisher fed from Kafka: an API whose Broadcaster is fed by its own consumer of the event topics
(adapters/kafka_live.py, started in the app's lifespan) pushes each command's event to that tenant's clients
only, never twice (duplicates on the wire included), and a client resuming with Last-Event-ID gets the missed
events from the MongoDB timeline read model, then live ones, with no gap and no repeat.

The read models are folded into MongoDB (FerretDB) by the embedded runner, standing in for `casestream worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import sqlite_event_store
from adapters.issuer import BuiltinIssuer
from adapters.kafka_live import KafkaFeed, KafkaFeedConfig, feed_types, kafka_feed_lifespan
from adapters.kafka_relay import KafkaRelay, RelayConfig
from adapters.mongo_documents import MongoDocumentStore
from adapters.sqlite_documents import SqliteDocumentStore
from api.app import create_app
from api.live import Broadcaster
from casestream.bootstrap import Platform
from casestream.settings import Settings
from commands import messages as m
from commands.bus import CommandBus
from domain import case as c
from domain.events import Metadata, Positioned
from infra.kafka import delete_prefixed_topics
from infra.server import Server
from projections.catalog import ALL
from tests.http_server import free_port
from tests.integration.api.conftest import CLAIM
from tests.integration.kafka.support import ACTOR, fill, published
from tests.integration.store.test_document_store_contract import mongo_uri
from tests.sse import collect_sse

pytestmark = pytest.mark.integration


# --- ordering and dedupe of the feed itself (no broker: records handed in directly) --------------------------

def _opened(position: int, tenant: str = "acme") -> Positioned:
    meta = Metadata("alice", tenant, "cmd", "corr", "cause")
    event = c.CaseOpened(
        event_id=uuid.uuid4(), aggregate_id=uuid.uuid4(), version=1, occurred_at=datetime.now(UTC), meta=meta,
        definition_key="claim", definition_version=1, number=f"CLM-{position}", title="t", data={}, stage="intake",
    )
    return Positioned(position, event)


def _record(item: Positioned) -> bytes:
    from adapters.cloudevents import dumps, to_cloudevent

    return dumps(to_cloudevent(item.position, item.event))


class Recorder(Broadcaster):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[int]] = []

    def publish(self, batch: Any) -> None:
        self.batches.append([p.position for p in batch])
        super().publish(batch)


def _feed(
    expected_positions: list[int], asked: list[tuple[int, int]] | None = None, give_up: float = 30.0,
) -> tuple[KafkaFeed, Recorder]:
    broadcaster = Recorder()

    def expected(after: int, upto: int, _types: frozenset[str]) -> list[int]:
        if asked is not None:
            asked.append((after, upto))
        return [p for p in expected_positions if after < p <= upto]

    return KafkaFeed(broadcaster, KafkaFeedConfig(give_up_seconds=give_up), expected, lambda: 0), broadcaster


async def test_feed_holds_a_later_position_until_the_earlier_one_arrives() -> None:
    feed, broadcaster = _feed([3, 5, 8])
    feed.accept([_record(_opened(8)), _record(_opened(3))])  # 5 is still on another partition
    await feed.release()
    assert broadcaster.batches == [[3]]
    assert broadcaster.released == 3
    feed.accept([_record(_opened(5))])
    await feed.release()
    assert broadcaster.batches == [[3], [5, 8]]
    assert broadcaster.released == 8


async def test_feed_asks_the_event_store_about_each_range_of_positions_once() -> None:
    asked: list[tuple[int, int]] = []
    feed, broadcaster = _feed([2, 4, 6, 9], asked)
    feed.accept([_record(_opened(4))])
    await feed.release()  # 2 is missing: nothing yet
    feed.accept([_record(_opened(2))])
    await feed.release()
    feed.accept([_record(_opened(9)), _record(_opened(6))])
    await feed.release()
    assert broadcaster.batches == [[2, 4], [6, 9]]
    assert asked == [(0, 4), (4, 9)]


async def test_feed_gives_up_on_a_position_that_never_arrives() -> None:
    feed, broadcaster = _feed([3, 5, 8], give_up=0.3)
    feed.accept([_record(_opened(5)), _record(_opened(8))])
    await feed.release()
    assert broadcaster.batches == []  # 3 may still come
    await asyncio.sleep(0.4)
    await feed.release()
    assert broadcaster.batches == [[5, 8]]
    assert feed.skipped == 1
    feed.accept([_record(_opened(3))])  # too late now: dropped, never pushed out of order
    await feed.release()
    assert broadcaster.batches == [[5, 8]]


async def test_feed_drops_duplicates_and_positions_already_released() -> None:
    feed, broadcaster = _feed([3, 5])
    three, five = _opened(3), _opened(5)
    feed.accept([_record(three), _record(three)])
    await feed.release()
    feed.accept([_record(three), _record(five), _record(five)])
    await feed.release()
    assert broadcaster.batches == [[3], [5]]
    assert feed.dropped == 3


# --- against Kafka, MongoDB and a real HTTP server ------------------------------------------------------------

@dataclass
class Stack:
    url: str
    platform: Platform
    broadcaster: Broadcaster
    feed: KafkaFeed

    def client(self, user: str, roles: tuple[str, ...], tenant: str) -> httpx.Client:
        token = self.platform.issuer.issue(user, tenant, roles)
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.fixture
def bootstrap(kafka_server: Server) -> str:
    return str(kafka_server.info()["bootstrap"])


@pytest_asyncio.fixture(loop_scope="function")
async def prefix(bootstrap: str) -> AsyncIterator[str]:
    name = f"live{uuid.uuid4().hex[:8]}"
    yield name
    await delete_prefixed_topics(bootstrap, name)


@pytest_asyncio.fixture(loop_scope="function")  # the relay task must run on the test's own loop
async def relay(tmp_path: Path, bootstrap: str, prefix: str) -> AsyncIterator[KafkaRelay]:
    store = sqlite_event_store(tmp_path / "events.sqlite", synchronous="NORMAL")
    relay = KafkaRelay(store, RelayConfig(bootstrap=bootstrap, prefix=prefix, poll_interval=0.05))
    await relay.ensure_topics()
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    yield relay
    stop.set()
    await task
    store.close()


@pytest.fixture
def stack(tmp_path: Path, relay: KafkaRelay, bootstrap: str, prefix: str, ferretdb_server: Server) -> Iterator[Stack]:
    port = free_port()
    settings = Settings(data_dir=tmp_path, host="127.0.0.1", port=port, kafka_bootstrap=bootstrap,
                        kafka_topic_prefix=prefix)
    store = relay.store
    mongo = MongoDocumentStore(mongo_uri(ferretdb_server), f"live_{uuid.uuid4().hex[:10]}", ALL)
    runner = EmbeddedRunner(store, mongo, ALL, poll_interval=0.05)
    issuer = BuiltinIssuer(settings.key_path, settings.base_url, settings.audience, settings.token_ttl_seconds)
    platform = Platform(settings, store, CommandBus(store), cast(SqliteDocumentStore, mongo), runner, issuer,
                        issuer)
    runner.start()
    app = create_app(platform)
    # distributed mode: the replica's Broadcaster is fed from Kafka (not by the runner) and waits for the
    # timeline read model before a Last-Event-ID replay
    broadcaster = Broadcaster(catch_up=runner.wait)
    app.state.broadcaster = broadcaster
    feeds: list[KafkaFeed] = []

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with kafka_feed_lifespan(broadcaster, settings, store) as feed:
            feeds.append(feed)
            yield

    app.router.lifespan_context = lifespan
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn (with the Kafka feed) did not start"
        time.sleep(0.02)
    try:
        yield Stack(f"http://127.0.0.1:{port}", platform, broadcaster, feeds[0])
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        runner.stop()
        mongo.client.drop_database(mongo.db.name)
        mongo.close()


class SseReader(threading.Thread):
    """Reads /api/events in a thread until `want` messages arrived (or the timeout)."""

    def __init__(self, stack: Stack, headers: dict[str, str], want: int, params: dict[str, str] | None = None,
                 timeout: float = 30) -> None:
        super().__init__(daemon=True)
        self.stack, self.headers, self.want, self.params, self.timeout = stack, headers, want, params, timeout
        self.messages: list[dict[str, Any]] = []
        self.connected = threading.Event()

    def run(self) -> None:
        url = f"{self.stack.url}/api/events"
        with contextlib.suppress(httpx.ReadTimeout), httpx.stream(
            "GET", url, headers=self.headers, params=self.params, timeout=self.timeout
        ) as reply:
            self.connected.set()
            collect_sse(reply.iter_lines(), self.messages, self.want)

    def start_connected(self) -> SseReader:
        """Start reading and return once the stream's subscription exists (so no event is sent before it)."""
        before = self.stack.broadcaster.subscribers
        self.start()
        assert self.connected.wait(10), "SSE stream did not open"
        deadline = time.monotonic() + 10
        while self.stack.broadcaster.subscribers <= before:
            assert time.monotonic() < deadline, "the SSE stream did not subscribe"
            time.sleep(0.02)
        return self


def _auth(client: httpx.Client, **extra: str) -> dict[str, str]:
    return {"Authorization": client.headers["Authorization"], **extra}


def _open(client: httpx.Client, title: str) -> dict[str, Any]:
    reply = client.post("/api/cases", json={"definition_key": "claim", "title": title, "data": {"amount": 5}})
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def test_sse_fed_from_kafka_per_tenant_once_and_resumable(stack: Stack, relay: KafkaRelay) -> None:
    acme_admin = stack.client("admin", ("admin",), "acme")
    globex_admin = stack.client("admin", ("admin",), "globex")
    alice = stack.client("alice", ("caseworker",), "acme")
    gus = stack.client("gus", ("caseworker",), "globex")
    for admin in (acme_admin, globex_admin):
        assert admin.post("/api/definitions", json=CLAIM).status_code == 200

    acme_reader = SseReader(stack, _auth(alice), want=2).start_connected()
    globex_reader = SseReader(stack, _auth(gus), want=1).start_connected()

    opened = await asyncio.to_thread(_open, alice, "Live from Kafka")
    other = await asyncio.to_thread(_open, gus, "Other tenant")
    assigned = await asyncio.to_thread(alice.post, f"/api/cases/{opened['id']}/assign", json={"assignee": "bob"})
    assert assigned.status_code == 200, assigned.text
    await asyncio.to_thread(acme_reader.join, 30)
    await asyncio.to_thread(globex_reader.join, 30)

    state = (f"relay published {relay.published} up to {relay.position}; feed released {stack.feed.released}, "
             f"pending {sorted(stack.feed.pending)}, running {stack.feed.running}")
    assert [m["event"] for m in acme_reader.messages] == ["CaseOpened", "CaseAssigned"], state
    assert {m["data"]["case_id"] for m in acme_reader.messages} == {opened["id"]}
    # an SSE id is the event's log position; a command's reply names the position of its last write
    opened_at, assigned_at = (m["id"] for m in acme_reader.messages)
    assert opened_at <= opened["position"] < assigned_at <= assigned.json()["position"]
    assert [(m["event"], m["data"]["case_id"]) for m in globex_reader.messages] == [("CaseOpened", other["id"])]

    # the relay sends everything again (at-least-once on the wire): the feed drops each duplicate
    dropped_before = stack.feed.dropped
    everything = await asyncio.to_thread(published, relay.store)
    types, _topics = feed_types(relay.config.prefix)
    resent = [p for p in everything if p.event.type_name() in types]
    await relay.publish(resent)

    deadline = time.monotonic() + 10
    while stack.broadcaster.subscribers:  # the finished readers' streams are closed by the server
        assert time.monotonic() < deadline, "finished SSE streams were not closed"
        await asyncio.sleep(0.05)
    # a client that saw only the opening resumes: the assignment comes from the read model, then the live
    # comment; nothing before, nothing twice
    resumed = SseReader(stack, _auth(alice, **{"Last-Event-ID": str(opened_at)}), want=3,
                        params={"case_id": opened["id"]}, timeout=8).start_connected()
    commented = await asyncio.to_thread(alice.post, f"/api/cases/{opened['id']}/comments", json={"body": "after"})
    assert commented.status_code == 200, commented.text
    await asyncio.to_thread(resumed.join, 30)
    assert [m["event"] for m in resumed.messages] == ["CaseAssigned", "CommentAdded"]  # no third (repeated) one
    assert resumed.messages[0]["id"] == assigned_at
    assert assigned.json()["position"] < resumed.messages[1]["id"] <= commented.json()["position"]
    deadline = time.monotonic() + 10
    while stack.feed.dropped - dropped_before < len(resent) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert stack.feed.dropped - dropped_before == len(resent)


async def test_feed_starts_at_the_end_of_the_topics(relay: KafkaRelay, tmp_path: Path) -> None:
    bus = CommandBus(relay.store)
    case_ids = await asyncio.to_thread(fill, bus, 2, 1)
    await until_relayed(relay)
    settings = Settings(data_dir=tmp_path, kafka_bootstrap=relay.config.bootstrap,
                        kafka_topic_prefix=relay.config.prefix)
    broadcaster = Recorder()
    async with kafka_feed_lifespan(broadcaster, settings, relay.store) as feed:
        started_at = feed.released
        assert started_at == relay.store.max_position()
        moved = await asyncio.to_thread(
            bus.dispatch, m.AddComment(case_id=uuid.UUID(case_ids[0]), body="after the feed started"), ACTOR)
        deadline = time.monotonic() + 20
        while not broadcaster.batches and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    positions = [p for batch in broadcaster.batches for p in batch]
    assert len(positions) == 1  # only the new comment: nothing from before the feed started
    assert started_at < positions[0] <= moved.position
    assert feed.dropped == 0  # the old records were not even read (read from the start, they would be dropped)


async def until_relayed(relay: KafkaRelay, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while relay.position < relay.store.max_position():
        assert time.monotonic() < deadline, "the relay did not catch up"
        await asyncio.sleep(0.05)
