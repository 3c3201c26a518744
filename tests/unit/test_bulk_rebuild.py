"""The in-memory rebuild stores exactly the documents the live runner stores, also when it flushes mid-way or
stops mid-way and the next run starts over."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest

from adapters import bulk_rebuild
from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore
from adapters.sqlite_documents import SqliteDocumentStore
from commands import messages as m
from commands.bus import Actor, CommandBus
from projections.cases import CASES
from projections.catalog import ALL
from tests.unit.conftest import TENANT, open_claim, publish_claim, snapshot

CLAIMS = Actor("dan", TENANT, ("caseworker", "claims"))


@pytest.fixture
def worked_log(store: RecorderEventStore, bus: CommandBus, alice: Actor, bob: Actor, carol: Actor) -> int:
    """A log written through the command bus: cases, comments edited and deleted, data, stages, tasks, queues."""
    publish_claim(bus, alice)
    bus.dispatch(m.DefineQueue(key="fraud-desk", name="Fraud desk"), bob)
    for i in range(6):
        case_id = open_claim(bus, alice, title=f"Claim {i}", amount=100 + i, customer=f"cust {i}").id
        target = UUID(case_id)
        bus.dispatch(m.UpdateCaseData(case_id=target, patch={"amount": 200 + i, "details": {"city": "lyon"}}), carol)
        bus.dispatch(m.MoveCaseToStage(case_id=target, stage="review"), carol)
        bus.dispatch(m.AssignCase(case_id=target, assignee="carol"), alice)
        first = str(bus.dispatch(m.AddComment(case_id=target, body=f"first {i}"), alice).extra["comment_id"])
        bus.dispatch(m.AddComment(case_id=target, body="reply", parent_id=first), carol)
        bus.dispatch(m.EditComment(case_id=target, comment_id=first, body="first, edited"), alice)
        if i % 2:
            bus.dispatch(m.DeleteComment(case_id=target, comment_id=first, reason="off topic"), bob)
            bus.dispatch(m.QueueCase(case_id=target, queue="fraud"), alice)
            bus.dispatch(m.RetitleCase(case_id=target, title=f"Renamed {i}"), alice)
        task = bus.dispatch(m.CreateTask(case_id=target, title=f"check {i}", candidate_groups=["claims"]), bob).id
        if i % 3 == 0:
            bus.dispatch(m.ClaimTask(task_id=UUID(task)), CLAIMS)
            bus.dispatch(m.CompleteTask(task_id=UUID(task), data={"ok": True}), CLAIMS)
        if i == 4:
            bus.dispatch(m.CloseCase(case_id=target, reason="paid", resolution="approved"), alice)
            bus.dispatch(m.ReopenCase(case_id=target, reason="appeal"), bob)
    return store.max_position()


def _live(store: RecorderEventStore, path: Path) -> dict[str, list[tuple[Any, ...]]]:
    documents = SqliteDocumentStore(path, ALL)
    try:
        EmbeddedRunner(store, documents, ALL, batch_size=7).catch_up()
        return snapshot(documents)
    finally:
        documents.close()


def test_the_runner_rebuild_stores_what_the_live_runner_stores(
    store: RecorderEventStore, worked_log: int, tmp_path: Path
) -> None:
    live = _live(store, tmp_path / "live.db")
    assert live["tracking"] == [("embedded", worked_log)]
    assert len(live["cases"]) == 6 and len(live["tasks"]) == 6 and len(live["queues"]) == 1
    documents = SqliteDocumentStore(tmp_path / "rebuilt.db", ALL)
    runner = EmbeddedRunner(store, documents, ALL)
    assert bulk_rebuild.supported(store, documents, ALL)
    seen: list[int] = []
    assert runner.rebuild(seen.append) == worked_log
    assert runner.position == worked_log and seen[-1] == worked_log
    assert snapshot(documents) == live


@pytest.mark.parametrize(("window", "max_documents"), [(1, 1), (5, 3), (13, 40)])
def test_flushing_and_loading_back_mid_rebuild_changes_nothing(
    store: RecorderEventStore, worked_log: int, tmp_path: Path, window: int, max_documents: int
) -> None:
    live = _live(store, tmp_path / "live.db")
    documents = SqliteDocumentStore(tmp_path / "rebuilt.db", ALL)
    last = bulk_rebuild.rebuild(store, documents, ALL, "embedded", window=window, max_documents=max_documents)
    assert last == worked_log
    assert snapshot(documents) == live


class _Stop(Exception):
    pass


def test_a_rebuild_stopped_after_a_flush_is_finished_by_the_live_runner_or_a_new_rebuild(
    store: RecorderEventStore, worked_log: int, tmp_path: Path
) -> None:
    live = _live(store, tmp_path / "live.db")
    path = tmp_path / "rebuilt.db"
    documents = SqliteDocumentStore(path, ALL)
    # another connection has the file open (another process reading it): the rebuild cannot swap a fresh file
    # in, so it resets the tables and refills them in place
    other = sqlite3.connect(path)
    other.execute("SELECT COUNT(*) FROM cases").fetchone()
    assert not documents.claim()

    def crash(position: int) -> None:
        if position >= worked_log // 2:
            raise _Stop

    with pytest.raises(_Stop):
        bulk_rebuild.rebuild(store, documents, ALL, "embedded", window=4, max_documents=5, progress=crash)
    other.close()
    half = snapshot(documents)
    assert half["tracking"] == [] and half["cases"]  # documents flushed, no tracking position
    documents.close()
    reopened = SqliteDocumentStore(path, ALL)  # as a restart does: the deferred indexes are built here
    runner = EmbeddedRunner(store, reopened, ALL)
    assert runner.position == 0
    runner.catch_up()
    assert snapshot(reopened) == live
    assert runner.rebuild() == worked_log
    assert snapshot(reopened) == live


def test_a_rebuild_in_a_fresh_file_that_stops_leaves_the_read_models_as_they_were(
    store: RecorderEventStore, worked_log: int, tmp_path: Path
) -> None:
    live = _live(store, tmp_path / "live.db")
    path = tmp_path / "rebuilt.db"
    documents = SqliteDocumentStore(path, ALL)
    EmbeddedRunner(store, documents, ALL).catch_up()
    assert snapshot(documents) == live

    def crash(position: int) -> None:
        if position >= worked_log // 2:
            raise _Stop

    with pytest.raises(_Stop):
        bulk_rebuild.rebuild(store, documents, ALL, "embedded", window=4, max_documents=5, progress=crash)
    assert snapshot(documents) == live
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("rebuilt.db")) == ["rebuilt.db"]
    # the file is in WAL mode again: another connection reads it while this one writes
    assert documents._writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert EmbeddedRunner(store, documents, ALL).rebuild() == worked_log
    assert snapshot(documents) == live
    assert documents._writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert sorted(p.name for p in tmp_path.iterdir() if ".rebuilding" in p.name) == []


def test_a_fresh_file_is_swapped_in_only_over_a_file_nobody_else_has_open(
    store: RecorderEventStore, worked_log: int, tmp_path: Path
) -> None:
    path = tmp_path / "rebuilt.db"
    documents = SqliteDocumentStore(path, ALL)
    documents.tracking("embedded")  # this store's own reader connection does not count: the claim closes it
    assert documents.claim()
    waiting = sqlite3.connect(path, timeout=0.1)
    with pytest.raises(sqlite3.OperationalError, match="locked"):  # held until the swap: nobody reads a half file
        waiting.execute("SELECT COUNT(*) FROM cases").fetchone()
    documents.release()
    assert waiting.execute("SELECT COUNT(*) FROM cases").fetchone() == (0,)
    waiting.close()
    with sqlite3.connect(path) as conn:  # a file holding a table of something else is left to an in-place reset
        conn.execute("CREATE TABLE keep_me (x)")
    assert not documents.claim()
    assert bulk_rebuild.rebuild(store, documents, ALL, "embedded") == worked_log
    assert documents._writer.execute("SELECT COUNT(*) FROM keep_me").fetchone() == (0,)


def test_bad_sizes_are_refused(store: RecorderEventStore, documents: SqliteDocumentStore) -> None:
    with pytest.raises(ValueError, match="window"):
        bulk_rebuild.rebuild(store, documents, ALL, "embedded", window=0)


def test_a_rebuild_with_a_helper_process_stores_what_the_live_runner_stores(
    store: RecorderEventStore, worked_log: int, tmp_path: Path
) -> None:
    live = _live(store, tmp_path / "live.db")
    documents = SqliteDocumentStore(tmp_path / "rebuilt.db", ALL)
    runner = EmbeddedRunner(store, documents, ALL)
    assert runner._rebuild_helper(2) == (str(tmp_path / "events.db"), "FULL", str(tmp_path / "rebuilt.db"))
    assert runner.rebuild(processes=2) == worked_log
    assert snapshot(documents) == live
    # the helper's collections are indexed and this store maintains their text index afterwards
    assert documents._text_indexed == {p.collection for p in ALL if p.text_search}
    names = {row[0] for row in documents._writer.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"ix_timeline_case_id", "ix_cases_status", "ix_queues_key"} <= names
    assert sorted(p.name for p in tmp_path.iterdir() if "rebuild-helper" in p.name) == []  # its file is removed
    assert sorted(p.name for p in tmp_path.iterdir() if ".rebuilding" in p.name) == []


def test_the_two_shares_split_the_per_aggregate_read_models_by_aggregate(
    store: RecorderEventStore, worked_log: int, tmp_path: Path
) -> None:
    live = _live(store, tmp_path / "live.db")
    split = [p for p in ALL if p.per_aggregate]
    assert {p.collection for p in split} >= {"cases", "timeline"}
    first = SqliteDocumentStore(tmp_path / "first.db", ALL, indexes=False, bulk=True)
    second = SqliteDocumentStore(tmp_path / "second.db", split, indexes=False, bulk=True)
    for documents, projections, share in ((first, ALL, 0), (second, split, 1)):
        bulk_rebuild._fold_into(store, documents, projections, worked_log, 5, 4, None, None, share=share, index=False)
    halves = snapshot(first), snapshot(second)
    for share, half in enumerate(halves):
        # a case's document goes to the share of its id's last character
        assert half["cases"] == [row for row in live["cases"] if ord(row[0][-1]) & 1 == share]
    for collection in ("cases", "timeline"):
        assert sorted(halves[0][collection] + halves[1][collection]) == live[collection]
    # every other read model is folded whole by the first share
    assert halves[0]["definitions"] == live["definitions"] and halves[0]["tasks"] == live["tasks"]
    assert "definitions" not in halves[1]


def test_a_rebuild_with_a_helper_in_place_flushing_stores_what_the_live_runner_stores(
    store: RecorderEventStore, worked_log: int, tmp_path: Path
) -> None:
    live = _live(store, tmp_path / "live.db")
    path = tmp_path / "rebuilt.db"
    documents = SqliteDocumentStore(path, ALL)
    other = sqlite3.connect(path)  # another process has the file open: no fresh file, the tables refilled in place
    other.execute("SELECT COUNT(*) FROM cases").fetchone()
    last = bulk_rebuild.rebuild(store, documents, ALL, "embedded", window=4, max_documents=5,
                                helper=(str(tmp_path / "events.db"), "FULL", str(path)))
    other.close()
    assert last == worked_log
    assert snapshot(documents) == live


def test_a_helper_that_fails_fails_the_rebuild_and_leaves_no_tracking_position(
    store: RecorderEventStore, worked_log: int, tmp_path: Path
) -> None:
    documents = SqliteDocumentStore(tmp_path / "rebuilt.db", ALL)
    with pytest.raises(RuntimeError, match="helper process failed"):
        bulk_rebuild.rebuild(store, documents, ALL, "embedded",
                             helper=(str(tmp_path / "events.db"), "SOMETIMES", str(tmp_path / "rebuilt.db")))
    assert snapshot(documents)["tracking"] == []
    assert EmbeddedRunner(store, documents, ALL).position == 0
    assert sorted(p.name for p in tmp_path.iterdir() if "rebuild-helper" in p.name) == []


def test_the_in_place_case_folds_give_the_pure_folds_documents(store: RecorderEventStore, worked_log: int) -> None:
    assert CASES.in_place_folds.keys() == CASES.folds.keys()
    pure: dict[str, Any] = {}
    in_place: dict[str, Any] = {}
    folded = 0
    for item in store.read(0, worked_log):
        event = item.event
        if type(event) not in CASES.folds:
            continue
        key = CASES.key(event)
        before = pure.get(key)
        before_bytes = orjson.dumps(before)
        pure[key] = CASES.folds[type(event)](before, event)
        assert orjson.dumps(before) == before_bytes  # the pure fold leaves its input as it was
        in_place[key] = CASES.in_place_folds[type(event)](in_place.get(key), event)
        assert orjson.dumps(in_place[key]) == orjson.dumps(pure[key])
        folded += 1
    # each case: opened, data, stage, assignee, 2 comments, 1 edit; 3: delete, queue, retitle; 1: close, reopen
    assert folded == 6 * 7 + 3 * 3 + 2 and len(pure) == 6
