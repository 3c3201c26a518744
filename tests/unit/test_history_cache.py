"""The event store's cache of decoded histories: what it appends is known without reading it back, and what
another writer appends is still read."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters import event_store
from adapters.event_store import sqlite_event_store
from commands import messages as m
from commands.bus import Actor, CommandBus
from tests.unit.conftest import TENANT, claim_definition

ALICE = Actor("alice", TENANT, ("caseworker",))


def test_appended_events_are_loaded_without_reading_them_back_and_other_writers_are_still_seen(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.db"
    mine, other = sqlite_event_store(path), sqlite_event_store(path)  # two processes' stores on one log
    try:
        bus = CommandBus(mine)
        bus.dispatch(claim_definition(), ALICE)
        case = UUID(bus.dispatch(m.OpenCase(definition_key="claim", title="t", data={"amount": 1}), ALICE).id)
        bus.dispatch(m.AddComment(case_id=case, body="mine"), ALICE)
        fetched: list[int] = []
        real = mine._select_histories  # the store's one query for histories (events_of and events_of_many)

        def counting(*args: Any, **kwargs: Any) -> Any:
            rows = real(*args, **kwargs)
            fetched.append(len(rows))
            return rows

        mine._select_histories = counting
        assert [type(e).__name__ for e in mine.events_of(case)] == ["CaseOpened", "CommentAdded"]
        assert fetched == [0]  # asked only for what came after the cached history: nothing
        CommandBus(other).dispatch(m.AddComment(case_id=case, body="theirs"), ALICE)
        history = mine.events_of(case)
        assert [getattr(e, "body", None) for e in history] == [None, "mine", "theirs"]
        assert [e.version for e in history] == [1, 2, 3]
        assert fetched == [0, 1]
        assert history == other.events_of(case)  # the same events as decoded from the log
    finally:
        mine.close()
        other.close()


def test_the_cache_is_bounded_by_the_stored_bytes_of_what_it_holds_and_evicted_histories_still_load(
    tmp_path: Path,
) -> None:
    store = sqlite_event_store(tmp_path / "events.db")
    try:
        store.history_cache_bytes = 20_000
        bus = CommandBus(store)
        bus.dispatch(claim_definition(), ALICE)
        cases = [UUID(bus.dispatch(m.OpenCase(definition_key="claim", title="t", data={"amount": n}), ALICE).id)
                 for n in range(10)]
        for case in cases:  # ~3 KB stored per comment: the byte bound, not the count, decides what stays
            for _ in range(3):
                bus.dispatch(m.AddComment(case_id=case, body="x" * 3_000), ALICE)
        assert 0 < store.cached_bytes <= 20_000
        assert len(store._histories) < 10
        assert store._known(cases[0])[0] is None  # the least recently used went first
        assert store._known(cases[-1])[0] is not None
        assert [type(e).__name__ for e in store.events_of(cases[0])] == ["CaseOpened", *["CommentAdded"] * 3]
        assert store.cached_bytes <= 20_000
        assert store.cached_bytes == sum(store._history_bytes.values())
    finally:
        store.close()


def test_a_history_longer_than_the_cap_is_not_cached_and_still_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_store, "HISTORY_MAX_EVENTS", 3)  # (1,000 in use: a number sequence's history)
    store = sqlite_event_store(tmp_path / "events.db")
    try:
        bus = CommandBus(store)
        bus.dispatch(claim_definition(), ALICE)
        case = UUID(bus.dispatch(m.OpenCase(definition_key="claim", title="t", data={"amount": 1}), ALICE).id)
        bus.dispatch(m.AddComment(case_id=case, body="one"), ALICE)
        assert len(store._known(case)[0] or []) == 2
        for n in range(3):
            bus.dispatch(m.AddComment(case_id=case, body=f"more {n}"), ALICE)
        assert store._known(case)[0] is None  # dropped once it reached the cap, not copied on every append
        assert len(store.events_of(case)) == 5
        assert store._known(case)[0] is None
        assert store.cached_bytes == sum(store._history_bytes.values())
    finally:
        store.close()
