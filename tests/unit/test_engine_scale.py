"""The embedded engine under many open instances: a step's work does not grow with them, resting instances are
evicted from memory and come back from their events, and a restart knows them again without folding them all."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.event_store import RecorderEventStore, sqlite_event_store
from commands.bus import Actor, CommandBus
from domain.process import process_instance_id
from domain.task import Task, TaskCancelled
from processes.engine import EmbeddedEngine
from processes.jobs import known_task_types
from tests.unit import engine_models as models
from tests.unit.conftest import TENANT, open_claim

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class _Counting:
    """Mixin: counts the entries anyone iterates over (keys, values or items)."""

    seen = 0

    def _count(self, items: Iterator[Any]) -> Iterator[Any]:
        for item in items:
            _Counting.seen += 1
            yield item

    def __iter__(self) -> Iterator[Any]:
        return self._count(super().__iter__())  # type: ignore[misc]

    def keys(self) -> Any:
        return list(self._count(iter(super().keys())))  # type: ignore[misc]

    def values(self) -> Any:
        return list(self._count(iter(super().values())))  # type: ignore[misc]

    def items(self) -> Any:
        return list(self._count(iter(super().items())))  # type: ignore[misc]


class CountingDict(_Counting, dict):  # type: ignore[type-arg]
    pass


class CountingOrderedDict(_Counting, OrderedDict):  # type: ignore[type-arg]
    pass


def count_iterations(*holders: object) -> None:
    """Swap every dict the engine, its index and its cache hold for one that counts what is iterated."""
    for holder in holders:
        for name, value in list(vars(holder).items()):
            if isinstance(value, OrderedDict):
                setattr(holder, name, CountingOrderedDict(value))
            elif isinstance(value, dict):
                setattr(holder, name, CountingDict(value))


def make_engine(store: RecorderEventStore, *, cache_size: int = 1000) -> EmbeddedEngine:
    engine = EmbeddedEngine(CommandBus(store), store, clock=lambda: NOW, task_types=known_task_types(),
                            cache_size=cache_size)
    for xml in (models.REVIEW, models.DEADLINE, models.WAIT_REPLY):
        engine.deploy(xml, "test.bpmn")
    return engine


def types(store: RecorderEventStore, key: str) -> list[str]:
    return [type(e).__name__ for e in store.events_of(process_instance_id(TENANT, key))]


def one_lifecycle(engine: EmbeddedEngine, key: str) -> int:
    """Entries visited to start an instance that waits on a user task and a timer, and to complete the task."""
    before = _Counting.seen + engine._index.visited
    engine.start("deadline", tenant=TENANT, variables={"limit": "P2D"}, instance_key=key)
    task_id = engine.user_task_ids(key, TENANT)["Answer"]
    assert engine.complete_user_task(TENANT, task_id, {"answered": True})
    return _Counting.seen + engine._index.visited - before


def test_a_step_visits_the_same_entries_with_a_thousand_other_instances_open(store: RecorderEventStore) -> None:
    engine = make_engine(store, cache_size=50)
    count_iterations(engine, engine._index, engine._loaded)
    alone = one_lifecycle(engine, "alone")
    for n in range(1000):  # each waits on its user task, its deadline timer
        engine.start("deadline", tenant=TENANT, variables={"limit": "P2D"}, instance_key=f"other-{n}")
    engine.start("wait-reply", tenant=TENANT, variables={"caseId": "c-1"}, instance_key="waiting")
    assert engine.open_instances() == 1001
    crowded = one_lifecycle(engine, "crowded")
    assert crowded == alone
    assert types(store, "crowded")[-1] == "ProcessCompleted"
    before = _Counting.seen + engine._index.visited
    assert engine.correlate_message(TENANT, "customer-replied", "c-1", {})
    assert _Counting.seen + engine._index.visited - before <= 4  # the subscription's own entries, not every instance


def test_resting_instances_are_evicted_and_memory_holds_only_the_cache(store: RecorderEventStore) -> None:
    engine = make_engine(store, cache_size=3)
    for n in range(20):
        engine.start("deadline", tenant=TENANT, variables={"limit": "P2D"}, instance_key=f"k-{n}")
    assert engine.open_instances() == 20
    assert engine.loaded_instances() == 3
    assert engine._loaded.evicted == 17


@pytest.fixture
def case_id(bus: CommandBus, alice: Actor, claim: Any) -> str:
    return open_claim(bus, alice, amount=2500).id


def _evict(engine: EmbeddedEngine, count: int) -> None:
    for n in range(count):
        engine.start("wait-reply", tenant=TENANT, variables={"caseId": f"filler-{n}"}, instance_key=f"filler-{n}")


def test_an_evicted_instance_reloads_and_its_user_task_completes_it(store: RecorderEventStore, case_id: str) -> None:
    engine = make_engine(store, cache_size=2)
    key = engine.start("review", tenant=TENANT, variables={"reviewer": "carol", "amount": 10}, case_id=case_id)
    task_id = engine.user_task_ids(key, TENANT)["Review"]
    _evict(engine, 3)
    assert process_instance_id(TENANT, key) not in engine._loaded
    assert engine.complete_user_task(TENANT, task_id, {"approved": True})
    assert types(store, key)[-1] == "ProcessAdvanced"
    _evict(engine, 3)
    engine.fire_due_timers(NOW + timedelta(hours=1))  # the cooling-off hour, on the evicted instance again
    engine.run_jobs()
    assert types(store, key)[-1] == "ProcessCompleted"
    assert [j.element_id for j in models.JOBS if j.process_instance_key == key] == ["AfterWait"]
    assert engine.user_task_ids(key, TENANT) == {}


def test_a_timer_of_an_evicted_instance_fires_and_cancels_its_task(store: RecorderEventStore, case_id: str) -> None:
    engine = make_engine(store, cache_size=2)
    key = engine.start("deadline", tenant=TENANT, variables={"limit": "P2D"}, case_id=case_id)
    task_id = engine.user_task_ids(key, TENANT)["Answer"]
    _evict(engine, 3)
    assert process_instance_id(TENANT, key) not in engine._loaded
    engine.fire_due_timers(NOW + timedelta(days=2))
    assert types(store, key)[-2:] == ["TimerFired", "ProcessCompleted"]
    assert isinstance(store.events_of(task_id)[-1], TaskCancelled)
    assert not engine.complete_user_task(TENANT, task_id, {})


def test_a_message_reaches_an_evicted_instance(store: RecorderEventStore) -> None:
    engine = make_engine(store, cache_size=2)
    key = engine.start("wait-reply", tenant=TENANT, variables={"caseId": "c-9"})
    _evict(engine, 3)
    assert engine.correlate_message(TENANT, "customer-replied", "c-9", {"reply": "ok"})
    engine.run_jobs()
    assert types(store, key)[-1] == "ProcessCompleted"


def test_a_restart_knows_every_open_instance_without_folding_them_and_each_continues(
    store: RecorderEventStore, case_id: str
) -> None:
    first = make_engine(store)
    keys = [first.start("review", tenant=TENANT, variables={"reviewer": "carol", "amount": n}, case_id=case_id,
                        instance_key=f"r-{n}") for n in range(5)]
    task_ids = [first.user_task_ids(key, TENANT)["Review"] for key in keys]
    done = first.start("deadline", tenant=TENANT, variables={"limit": "P2D"}, instance_key="done")
    first.complete_user_task(TENANT, first.user_task_ids(done, TENANT)["Answer"], {})
    del first

    second = make_engine(store)
    assert second.recover(lazily=True) == keys  # the finished one is not among them
    assert second.loaded_instances() == 0 and second.recovering == 5  # nothing folded yet
    assert second.start("review", tenant=TENANT, variables={}, instance_key=keys[0]) == keys[0]  # still open
    assert len(types(store, keys[0])) == 1
    # a task completed before the recovery thread reached its instance: that one instance is indexed first
    assert second.complete_user_task(TENANT, task_ids[3], {"approved": True})
    assert types(store, keys[3])[-1] == "ProcessAdvanced"
    assert second.recovering == 4
    assert second.index_pending() == 0
    assert second.user_task_ids(keys[1], TENANT) == {"Review": task_ids[1]}
    assert second.next_timer() == NOW + timedelta(hours=1)
    # nothing announced twice: each task was created once, before the restart
    assert all(len([e for e in store.events_of(t) if type(e).__name__ == "TaskCreated"]) == 1 for t in task_ids)
    assert Task.replay(task_ids[1], store.events_of(task_ids[1])).status == "open"


def test_a_restarted_engine_reannounces_a_user_task_whose_task_was_never_created(
    store: RecorderEventStore, case_id: str
) -> None:
    first = make_engine(store)
    first._send = lambda instance, command: lambda: None  # type: ignore[method-assign]  # stopped before sending
    key = first.start("review", tenant=TENANT, variables={"reviewer": "carol", "amount": 1}, case_id=case_id)
    task_id = first.user_task_ids(key, TENANT)["Review"]
    assert store.events_of(task_id) == []
    second = make_engine(store)
    assert second.recover() == [key]
    assert [type(e).__name__ for e in store.events_of(task_id)] == ["TaskCreated"]
    assert isinstance(task_id, UUID)


def test_a_clean_stop_saves_the_open_instances_and_a_restart_takes_them_without_folding_any(
    store: RecorderEventStore, case_id: str, tmp_path: Path
) -> None:
    saved = tmp_path / "events.db.processes"
    first = make_engine(store)
    first.checkpoint = saved
    assert first.recover(lazily=True) == []
    keys = [first.start("review", tenant=TENANT, variables={"reviewer": "carol", "amount": n}, case_id=case_id,
                        instance_key=f"r-{n}") for n in range(3)]
    waiting = first.start("wait-reply", tenant=TENANT, variables={"caseId": "c-7"}, instance_key="waiting")
    task_ids = [first.user_task_ids(key, TENANT)["Review"] for key in keys]
    next_timer = first.next_timer()
    first.stop()
    assert saved.is_file()

    second = make_engine(store)
    second.checkpoint = saved
    assert sorted(second.recover(lazily=True)) == sorted([*keys, waiting])
    assert not saved.exists()  # read once: a crash later must not find it stale
    assert second.loaded_instances() == 0 and second.recovering == 0  # nothing folded
    assert second.user_task_ids(keys[1], TENANT) == {"Review": task_ids[1]}
    assert second.next_timer() == next_timer
    assert second.correlate_message(TENANT, "customer-replied", "c-7", {})
    assert second.loaded_instances() == 1  # only the instance the message went to was loaded
    assert second.complete_user_task(TENANT, task_ids[0], {"approved": True})
    assert types(store, keys[0])[-1] == "ProcessAdvanced"
    assert all(len([e for e in store.events_of(t) if type(e).__name__ == "TaskCreated"]) == 1 for t in task_ids)


def test_what_the_log_changed_after_the_checkpoint_is_folded_again_and_a_crash_leaves_no_checkpoint(
    store: RecorderEventStore, case_id: str, tmp_path: Path
) -> None:
    saved = tmp_path / "events.db.processes"
    first = make_engine(store)
    first.checkpoint = saved
    first.recover()
    keys = [first.start("review", tenant=TENANT, variables={"reviewer": "carol", "amount": n}, case_id=case_id,
                        instance_key=f"r-{n}") for n in range(3)]
    task_ids = [first.user_task_ids(key, TENANT)["Review"] for key in keys]
    first.stop()
    other = make_engine(store)  # e.g. a tool run on the same log after the stop: no checkpoint of its own
    other.recover()
    assert other.complete_user_task(TENANT, task_ids[1], {"approved": True})
    other.cancel(keys[2], "withdrawn", tenant=TENANT)
    late = other.start("deadline", tenant=TENANT, variables={"limit": "P2D"}, instance_key="late")

    second = make_engine(store)
    second.checkpoint = saved
    assert sorted(second.recover(lazily=True)) == sorted([keys[0], keys[1], late])
    assert second.recovering == 2  # the one that moved on and the one started after the checkpoint
    assert second.index_pending() == 0
    assert second.user_task_ids(keys[1], TENANT) == {}  # its review was completed after the checkpoint
    assert second.user_task_ids(keys[0], TENANT) == {"Review": task_ids[0]}
    assert "Answer" in second.user_task_ids(late, TENANT)
    assert not saved.exists()

    third = make_engine(store)  # the second never stopped cleanly: the log is scanned
    third.checkpoint = saved
    assert sorted(third.recover(lazily=True)) == sorted([keys[0], keys[1], late])
    assert third.recovering == 3


def test_a_checkpoint_saved_for_another_log_is_not_taken(
    store: RecorderEventStore, case_id: str, tmp_path: Path
) -> None:
    saved = tmp_path / "events.db.processes"
    first = make_engine(store)
    first.checkpoint = saved
    first.recover()
    first.start("review", tenant=TENANT, variables={"reviewer": "carol", "amount": 1}, case_id=case_id)
    first.stop()
    fresh = sqlite_event_store(tmp_path / "fresh.db")  # a new log beside the old checkpoint
    try:
        second = make_engine(fresh)
        second.checkpoint = saved
        assert second.recover(lazily=True) == [] and second.open_instances() == 0
    finally:
        fresh.close()
