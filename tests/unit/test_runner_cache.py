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
