"""Each index of the process side costs the same per lookup with 10 or 10,000 entries: counted in entries visited
(or comparisons made), never timed. A lookup that scans its whole collection fails these."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from adapters.event_store import RecorderEventStore
from commands.bus import CommandBus
from domain.process import process_instance_id
from processes import engine as engine_module
from processes.cache import InstanceCache
from processes.engine import EmbeddedEngine
from processes.index import UserTaskRef, WaitIndex
from processes.instance import Instance
from processes.jobs import known_task_types
from tests.unit import engine_models as models
from tests.unit.conftest import TENANT

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class CountingDict(dict):  # type: ignore[type-arg]
    """A dict that counts the entries anyone iterates over."""

    seen = 0

    def _count(self, items: Iterator[Any]) -> Iterator[Any]:
        for item in items:
            CountingDict.seen += 1
            yield item

    def __iter__(self) -> Iterator[Any]:
        return self._count(super().__iter__())

    def keys(self) -> Any:
        return list(self._count(iter(super().keys())))

    def values(self) -> Any:
        return list(self._count(iter(super().values())))

    def items(self) -> Any:
        return list(self._count(iter(super().items())))


class CountingOrderedDict(OrderedDict):  # type: ignore[type-arg]
    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            CountingDict.seen += 1
            yield item


def counted(index: WaitIndex) -> WaitIndex:
    for name, value in list(vars(index).items()):
        if isinstance(value, dict):
            setattr(index, name, CountingDict(value))
    return index


def filled_index(size: int) -> WaitIndex:
    """An index of `size` open instances, each with one announced user task and one message subscription."""
    index = WaitIndex()
    for n in range(size):
        iid = process_instance_id(TENANT, f"k-{n}")
        index.add(iid, f"k-{n}", TENANT)
        index.add_task(uuid4(), UserTaskRef(iid, uuid4(), "Review"))
        index.subscribe(iid, frozenset({(TENANT, "reply", f"c-{n}")}))
    return counted(index)


def wait_index_work(index: WaitIndex) -> int:
    """Entries visited by one instance's whole stay: opened, its task and subscription looked up, then dropped."""
    before = CountingDict.seen + index.visited
    iid = process_instance_id(TENANT, "probe")
    index.add(iid, "probe", TENANT)
    task_id = uuid4()
    index.add_task(task_id, UserTaskRef(iid, uuid4(), "Review"))
    index.subscribe(iid, frozenset({(TENANT, "reply", "c-probe")}))
    assert index.by_key("probe", TENANT) == iid and index.by_key("probe") == iid
    assert index.tasks[task_id].instance_id == iid and list(index.tasks_of(iid)) == [task_id]
    assert index.subscribers((TENANT, "reply", "c-probe")) == [iid]
    index.remove_task(task_id)
    index.drop(iid)
    assert iid not in index.open and index.subscribers((TENANT, "reply", "c-probe")) == []
    return CountingDict.seen + index.visited - before


def test_the_wait_index_visits_the_same_entries_with_ten_or_ten_thousand_instances_open() -> None:
    assert wait_index_work(filled_index(10)) == wait_index_work(filled_index(10_000))


def test_keys_shared_by_tenants_keep_apart_and_an_instance_holds_only_small_entries() -> None:
    index = WaitIndex()
    mine, theirs = process_instance_id(TENANT, "k"), process_instance_id("globex", "k")
    index.add(mine, "k", TENANT)
    index.add(theirs, "k", "globex")
    assert index.by_key("k", "globex") == theirs and index.by_key("k", TENANT) == mine
    index.drop(mine)
    assert index.by_key("k") == theirs and index.by_key("k", TENANT) is None
    task = uuid4()
    index.add_task(task, UserTaskRef(theirs, uuid4(), "Review"))
    assert not hasattr(index.tasks[task], "__dict__")  # slots: no per-entry dict
    assert isinstance(index._tasks_of[theirs], tuple)  # a tuple per instance, not a set


class _Resting(Instance):
    def __init__(self, iid: UUID) -> None:  # only what the cache reads: its id and what it has in flight
        self.id = iid
        self.in_flight = set()


def cache_work(size: int) -> int:
    cache = InstanceCache(capacity=size)
    for _ in range(size):
        cache.put(_Resting(uuid4()))
    cache._resting = CountingOrderedDict(cache._resting)
    cache._busy = CountingDict(cache._busy)
    before = CountingDict.seen
    probe = _Resting(uuid4())
    cache.put(probe)  # evicts the oldest
    assert cache.get(probe.id) is probe
    probe.in_flight.add("job")
    cache.settle(probe)
    probe.in_flight.clear()
    cache.settle(probe)
    cache.drop(probe.id)
    return CountingDict.seen - before


def test_the_instance_cache_visits_the_same_entries_with_ten_or_ten_thousand_loaded() -> None:
    assert cache_work(10) == cache_work(10_000)


@pytest.fixture
def comparisons(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the comparisons the engine's timer queue makes (a heap: a few per push or pop, not one per timer)."""
    made = [0]
    compare = engine_module._Timer.__lt__

    def counting(self: Any, other: Any) -> Any:
        made[0] += 1
        return compare(self, other)

    monkeypatch.setattr(engine_module._Timer, "__lt__", counting)
    return made


def timer_work(store: RecorderEventStore, waiting: int, made: list[int]) -> int:
    """Comparisons to schedule and fire one instance's deadline with `waiting` other deadlines pending."""
    engine = EmbeddedEngine(CommandBus(store), store, clock=lambda: NOW, task_types=known_task_types())
    engine.deploy(models.DEADLINE, "test.bpmn")
    for n in range(waiting):  # each waits on a user task and its two-day deadline
        engine.start("deadline", tenant=TENANT, variables={"limit": "P2D"}, instance_key=f"w-{waiting}-{n}")
    before = made[0]
    key = engine.start("deadline", tenant=TENANT, variables={"limit": "PT1H"}, instance_key=f"soon-{waiting}")
    assert engine._fire_due(NOW + timedelta(hours=1)) == 1
    assert engine.instance(key, TENANT) is None  # the deadline ended it
    return made[0] - before


def test_firing_a_timer_compares_logarithmically_many_timers_not_all(
    store: RecorderEventStore, comparisons: list[int]
) -> None:
    few = timer_work(store, 8, comparisons)
    many = timer_work(store, 512, comparisons)
    assert many <= few + 3 * 6  # log2(512) - log2(8) = 6 more levels, a few comparisons each; a scan makes ~500
