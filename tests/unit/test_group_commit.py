"""Group commit: concurrent appends share transactions, keep their own positions, and fail alone."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from adapters.event_store import sqlite_event_store
from adapters.group_commit import GroupCommitter
from projections.ports import Query


def _event(originator: uuid.UUID, version: int) -> StoredEvent:
    return StoredEvent(originator, version, "T", b"{}")


def test_concurrent_appends_are_grouped_and_each_gets_its_own_positions(tmp_path: Path) -> None:
    store = sqlite_event_store(tmp_path / "e.sqlite")
    recorder = store.recorder
    gate = threading.Event()
    calls: list[int] = []

    def slow_insert(stored: Sequence[StoredEvent]) -> Sequence[int] | None:
        calls.append(len(stored))
        gate.wait(2)  # hold the first transaction so the others queue behind it
        return recorder.insert_events(stored)

    committer = GroupCommitter(slow_insert)
    ids = [uuid.uuid4() for _ in range(9)]
    results: dict[uuid.UUID, list[int]] = {}

    def append(originator: uuid.UUID) -> None:
        results[originator] = committer.insert([_event(originator, 1), _event(originator, 2)])

    threads = [threading.Thread(target=append, args=(i,)) for i in ids]
    threads[0].start()
    while not calls:
        threading.Event().wait(0.01)
    for t in threads[1:]:
        t.start()
    threading.Event().wait(0.3)
    gate.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 2  # the first alone, the eight others in one shared transaction
    assert calls == [2, 16]
    every = sorted(p for positions in results.values() for p in positions)
    assert every == list(range(1, 19))
    for originator, positions in results.items():
        logged = [n.id for n in recorder.select_notifications(1, 100) if n.originator_id == originator]
        assert positions == logged


def test_a_conflict_in_a_group_fails_only_that_append(tmp_path: Path) -> None:
    store = sqlite_event_store(tmp_path / "e.sqlite")
    taken = uuid.uuid4()
    store.recorder.insert_events([_event(taken, 1)])
    committer = GroupCommitter(store.recorder.insert_events)
    fresh = uuid.uuid4()
    # drive _write directly with a prepared group: one clashing append, one fine
    bad, good = committer._write([[_event(taken, 1)], [_event(fresh, 1)]])
    assert isinstance(bad, IntegrityError)
    assert good == [store.max_position()]


def test_version_conflict_surfaces_from_store_append(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from domain.case import Case
    from domain.definition import DefinitionSpec, Stage
    from domain.errors import VersionConflict
    from domain.events import Context

    store = sqlite_event_store(tmp_path / "e.sqlite")
    ctx = Context("a", "t", "c", "c", "c", datetime.now(UTC))
    spec = DefinitionSpec("claim", "Claim", {"type": "object"}, (Stage("new", "New"),))
    case = Case.open(ctx, spec, 1, 1, "t", {})
    events = case.collect()
    store.append(events)
    with pytest.raises(VersionConflict):
        store.append(events)


def test_cached_histories_pick_up_events_another_process_appended(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from domain.case import Case
    from domain.definition import DefinitionSpec, Stage
    from domain.events import Context

    path = tmp_path / "e.sqlite"
    mine, theirs = sqlite_event_store(path), sqlite_event_store(path)
    ctx = Context("a", "t", "c", "c", "c", datetime.now(UTC))
    spec = DefinitionSpec("claim", "Claim", {"type": "object"}, (Stage("new", "New"),))
    case = Case.open(ctx, spec, 1, 1, "t", {})
    mine.append(case.collect())
    assert [e.version for e in mine.events_of(case.id)] == [1]  # now cached in `mine`
    elsewhere = Case.replay(case.id, theirs.events_of(case.id))
    elsewhere.assign(ctx, "bob")
    theirs.append(elsewhere.collect())
    history = mine.events_of(case.id)
    assert [e.version for e in history] == [1, 2]
    assert Case.replay(case.id, history).assignee == "bob"


def test_runner_rebuilds_read_models_that_are_ahead_of_the_log(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from adapters.embedded_runner import EmbeddedRunner
    from adapters.sqlite_documents import SqliteDocumentStore
    from domain.case import Case
    from domain.definition import DefinitionSpec, Stage
    from domain.events import Context
    from projections.catalog import ALL

    ctx = Context("a", "t", "c", "c", "c", datetime.now(UTC))
    spec = DefinitionSpec("claim", "Claim", {"type": "object"}, (Stage("new", "New"),))
    documents = SqliteDocumentStore(tmp_path / "views.sqlite", ALL)
    old_log = sqlite_event_store(tmp_path / "old.sqlite")
    for _ in range(3):
        old_log.append(Case.open(ctx, spec, 1, 1, "old", {}).collect())
    EmbeddedRunner(old_log, documents, ALL).catch_up()
    new_log = sqlite_event_store(tmp_path / "new.sqlite")  # the event store was replaced by a fresh one
    fresh = Case.open(ctx, spec, 1, 1, "new", {})
    new_log.append(fresh.collect())
    runner = EmbeddedRunner(new_log, documents, ALL)
    runner.catch_up()
    found = documents.get("cases", str(fresh.id))
    assert found is not None and found[0] is not None
    assert found[0]["title"] == "new"
    assert documents.find(Query("cases", "t", limit=10)) == [found[0]]
