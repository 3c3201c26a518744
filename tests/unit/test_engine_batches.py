"""The engine saves many instances' steps as one batch of commands: the same events as one by one, one append per
batch, and a refused start or step does not take the others down with it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.event_store import RecorderEventStore
from commands.bus import CommandBus
from domain.process import process_instance_id
from processes.engine import EmbeddedEngine, ProcessNotDeployed
from processes.jobs import known_task_types
from processes.starts import StartRequest
from tests.unit import engine_models as models
from tests.unit.conftest import TENANT

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def appends(store: RecorderEventStore) -> Iterator[list[int]]:
    """How many events each append to the store carried."""
    counted: list[int] = []
    real = store.append

    def counting(events: Any) -> list[int]:
        counted.append(len(events))
        return real(events)

    store.append = counting  # type: ignore[method-assign]
    yield counted
    store.append = real  # type: ignore[method-assign]


def make_engine(store: RecorderEventStore) -> EmbeddedEngine:
    engine = EmbeddedEngine(CommandBus(store), store, clock=lambda: NOW, task_types=known_task_types())
    for xml in (models.SIMPLE, models.DEADLINE):
        engine.deploy(xml, "test.bpmn")
    return engine


def types(store: RecorderEventStore, key: str) -> list[str]:
    return [type(e).__name__ for e in store.events_of(process_instance_id(TENANT, key))]


def test_start_many_saves_every_first_step_in_one_append_and_refuses_only_the_bad_request(
    store: RecorderEventStore, appends: list[int]
) -> None:
    engine = make_engine(store)
    requests = [StartRequest("deadline", TENANT, {"limit": "P2D"}, instance_key=f"d-{n}") for n in range(4)]
    requests.insert(2, StartRequest("no-such-process", TENANT, {}, instance_key="nope"))
    requests.append(StartRequest("deadline", TENANT, {"limit": "P2D"}, instance_key="d-0"))  # a repeat
    outcomes = engine.start_many(requests)
    assert outcomes[:2] == ["d-0", "d-1"] and outcomes[3:] == ["d-2", "d-3", "d-0"]
    assert isinstance(outcomes[2], ProcessNotDeployed)
    assert len(appends) == 1  # four steps, each with its command-log entry, stored together
    assert all(types(store, f"d-{n}") == ["ProcessStarted"] for n in range(4))
    assert engine.open_instances() == 4
    assert all(engine.user_task_ids(f"d-{n}", TENANT) for n in range(4))
    assert engine.start_many([StartRequest("deadline", TENANT, {"limit": "P2D"}, instance_key="d-1")]) == ["d-1"]
    assert len(appends) == 1  # open already: nothing saved again


def test_a_batch_of_job_outcomes_is_one_append_with_the_same_events_as_one_by_one(
    store: RecorderEventStore, appends: list[int]
) -> None:
    one_by_one, batched = make_engine(store), make_engine(store)
    for n in range(3):
        one_by_one.start("simple", tenant=TENANT, variables={"amount": n}, instance_key=f"alone-{n}")
    one_by_one.run_jobs()
    batched.start_many([StartRequest("simple", TENANT, {"amount": n}, instance_key=f"together-{n}")
                        for n in range(3)])
    appends.clear()
    batch = batched._take_jobs(64)
    assert len(batch) == 3
    batched._run_job_batch(batch)
    assert len(appends) == 1  # the three steps their outcomes caused (the test jobs send no commands)
    for n in range(3):
        assert types(store, f"together-{n}") == types(store, f"alone-{n}") == [
            "ProcessStarted", "ProcessAdvanced", "ProcessCompleted"]
    assert batched.open_instances() == 0
