"""The runner's document cache: hot documents are folded without being read back, and never go stale."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore
from adapters.sqlite_documents import SqliteDocumentStore
from commands import messages as m
from commands.bus import Actor, CommandBus, Result
from projections.catalog import ALL
from tests.unit.conftest import open_claim, snapshot


def test_a_busy_case_is_folded_from_the_cache_and_the_read_models_match_a_fresh_fold(
    bus: CommandBus, alice: Actor, claim: Result, store: RecorderEventStore, documents: SqliteDocumentStore,
    tmp_path: Any,
) -> None:
    runner = EmbeddedRunner(store, documents, ALL)
    case_id = UUID(open_claim(bus, alice).id)
    runner.catch_up()
    reads: list[tuple[str, list[str]]] = []
    real = documents.get_many

    def counting(collection: str, keys: Any) -> Any:
        reads.append((collection, list(keys)))
        return real(collection, keys)

    runner.cache._load_many = counting
    for n in range(5):
        bus.dispatch(m.AddComment(case_id=case_id, body=f"note {n}"), alice)
        runner.catch_up()
    assert not [keys for collection, keys in reads if collection == "cases"]  # the case document came from the cache
    fresh_docs = SqliteDocumentStore(tmp_path / "fresh.db", ALL)
    EmbeddedRunner(store, fresh_docs, ALL).catch_up()
    assert snapshot(fresh_docs) == snapshot(documents)
    fresh_docs.close()


def test_moving_the_runner_back_drops_the_cache(
    bus: CommandBus, alice: Actor, claim: Result, store: RecorderEventStore, documents: SqliteDocumentStore,
) -> None:
    runner = EmbeddedRunner(store, documents, ALL)
    case_id = UUID(open_claim(bus, alice).id)
    bus.dispatch(m.AddComment(case_id=case_id, body="first"), alice)
    runner.catch_up()
    before = snapshot(documents)
    documents.reset()
    runner.position = 0  # as a rebuild by hand does: the cached documents (at the old positions) must not be used
    runner.catch_up()
    assert snapshot(documents) == before


def test_the_timeline_is_neither_read_nor_cached_and_a_replay_stores_it_as_it_was(
    bus: CommandBus, alice: Actor, claim: Result, store: RecorderEventStore, documents: SqliteDocumentStore,
) -> None:
    runner = EmbeddedRunner(store, documents, ALL)
    assert runner.cache.unread == {"timeline"}
    reads: list[str] = []
    real = documents.get_many

    def counting(collection: str, keys: Any) -> Any:
        reads.append(collection)
        return real(collection, keys)

    runner.cache._load_many = counting
    case_id = UUID(open_claim(bus, alice).id)
    bus.dispatch(m.AddComment(case_id=case_id, body="note"), alice)
    runner.catch_up()
    assert "timeline" not in reads and "cases" in reads  # each event's own entry: nothing stored to read
    assert not [slot for slot in runner.cache._docs if slot[0] == "timeline"]
    before = snapshot(documents)
    # replayed (the tracking position moved back by hand, the documents kept): every entry stored again as it was
    with documents._write_lock:
        documents._writer.execute("UPDATE tracking SET position = 0 WHERE name = 'embedded'")
    runner.position = 0
    runner.catch_up()
    assert snapshot(documents) == before
