"""BPMN signals through the embedded engine: a broadcast reaches every waiting catch of its name in the tenant
(intermediate catch, boundary interrupting or not, event sub-process starts, signal start events), a throw or end
event broadcasts, and the waiting instances are found by name through the index, not by looking at all of them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.event_store import RecorderEventStore
from commands.bus import CommandBus
from domain.process import ProcessCompleted, process_instance_id
from processes.bpmn import BpmnRejected
from processes.engine import EmbeddedEngine
from processes.jobs import known_task_types
from processes.signals import broadcast
from tests.unit import engine_models as models
from tests.unit import signal_models as sm
from tests.unit.conftest import TENANT

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OTHER = "globex"


@pytest.fixture(autouse=True)
def _reset_jobs() -> Iterator[None]:
    models.JOBS.clear()
    yield


@pytest.fixture
def engine(bus: CommandBus, store: RecorderEventStore) -> EmbeddedEngine:
    engine = EmbeddedEngine(bus, store, clock=lambda: NOW, task_types=known_task_types())
    for xml in (sm.CATCH, sm.BOUNDARY, sm.EVENT_SUBPROCESSES, sm.THROW, sm.START, sm.GATEWAY, models.SIMPLE):
        engine.deploy(xml, "signals.bpmn")
    return engine


def completed(store: RecorderEventStore, key: str, tenant: str = TENANT) -> bool:
    return any(isinstance(e, ProcessCompleted) for e in store.events_of(process_instance_id(tenant, key)))


def jobs() -> list[str]:
    return [j.element_id for j in models.JOBS]


def variables_of(element_id: str) -> dict[str, Any]:
    return dict(next(j for j in models.JOBS if j.element_id == element_id).variables)


def test_a_broadcast_reaches_every_waiting_catch_of_the_tenant_with_its_variables(
        engine: EmbeddedEngine, store: RecorderEventStore) -> None:
    first, second = (engine.start("signal-catch", tenant=TENANT) for _ in range(2))
    elsewhere = engine.start("signal-catch", tenant=OTHER)
    outcome = broadcast(engine, TENANT, "go", {"level": 3})
    assert sorted(outcome.delivered) == sorted([first, second]) and outcome.started == []
    engine.run_jobs()
    assert jobs() == ["After", "After"] and variables_of("After")["level"] == 3
    assert completed(store, first) and completed(store, second) and not completed(store, elsewhere, OTHER)
    assert broadcast(engine, TENANT, "go").delivered == []  # nobody waits any more: nothing is kept
    assert broadcast(engine, OTHER, "go").delivered == [elsewhere]


def test_signal_boundaries_interrupting_or_not(engine: EmbeddedEngine, store: RecorderEventStore) -> None:
    key = engine.start("signal-boundary", tenant=TENANT)
    assert broadcast(engine, TENANT, "ping", {"n": 1}).delivered == [key]
    assert broadcast(engine, TENANT, "ping", {"n": 2}).delivered == [key]  # a non-interrupting one again
    engine.run_jobs()
    assert jobs() == ["Pinged", "Pinged"] and not completed(store, key)
    assert sorted(j.variables["n"] for j in models.JOBS) == [1, 2]
    assert broadcast(engine, TENANT, "stop").delivered == [key]
    engine.run_jobs()
    assert jobs()[-1] == "Stopped" and completed(store, key)
    assert broadcast(engine, TENANT, "ping").delivered == []  # the boundaries ended with their activity


def test_signal_event_sub_processes_run_alongside_or_interrupt(engine: EmbeddedEngine,
                                                               store: RecorderEventStore) -> None:
    key = engine.start("signal-subs", tenant=TENANT)
    assert broadcast(engine, TENANT, "note").delivered == [key]
    engine.run_jobs()
    assert jobs() == ["Noted"] and not completed(store, key)
    assert broadcast(engine, TENANT, "note").delivered == [key]  # armed again for the next signal
    engine.run_jobs()
    assert broadcast(engine, TENANT, "abort").delivered == [key]
    engine.run_jobs()
    assert jobs() == ["Noted", "Noted", "Aborted"] and completed(store, key)


def test_a_signal_start_event_starts_the_newest_version_once_per_broadcast(
        engine: EmbeddedEngine, store: RecorderEventStore) -> None:
    outcome = broadcast(engine, TENANT, "launch", {"orderId": "o-1"})
    assert len(outcome.started) == 1 and outcome.delivered == outcome.started
    engine.run_jobs()
    assert jobs() == ["Launched"] and variables_of("Launched")["orderId"] == "o-1"
    assert completed(store, outcome.started[0])
    assert broadcast(engine, TENANT, "nobody-listens").started == []


def test_throw_and_end_events_broadcast_to_the_tenant_the_throwing_instance_s_inputs(
        engine: EmbeddedEngine, store: RecorderEventStore) -> None:
    waiting = engine.start("signal-catch", tenant=TENANT)
    elsewhere = engine.start("signal-catch", tenant=OTHER)
    thrower = engine.start("signal-throw", tenant=TENANT, variables={"orderId": "o-7"})
    engine.run_jobs()
    assert completed(store, thrower) and completed(store, waiting) and not completed(store, elsewhere, OTHER)
    assert variables_of("After")["order"] == "o-7"  # the throw's input mapping is the signal's variables


def test_an_event_based_gateway_takes_the_signal_and_drops_its_timer(engine: EmbeddedEngine,
                                                                     store: RecorderEventStore) -> None:
    key = engine.start("signal-gateway", tenant=TENANT)
    assert broadcast(engine, TENANT, "approve", {"by": "ann"}).delivered == [key]
    engine.run_jobs()
    assert jobs() == ["Ship"] and variables_of("Ship")["by"] == "ann" and completed(store, key)
    assert engine.next_timer() is None or engine.fire_due_timers(datetime(2027, 1, 1, tzinfo=UTC)) == 0


def test_a_broadcast_looks_only_at_the_instances_waiting_for_its_name(engine: EmbeddedEngine) -> None:
    for _ in range(30):
        engine.start("signal-boundary", tenant=TENANT)  # waiting for other signals
    key = engine.start("signal-catch", tenant=TENANT)
    before = engine._index.visited
    assert broadcast(engine, TENANT, "go").delivered == [key]
    assert engine._index.visited - before < 10  # the name's subscribers, not the thirty others


def test_a_signal_catch_and_a_re_armed_boundary_survive_a_restart(bus: CommandBus, store: RecorderEventStore,
                                                                   engine: EmbeddedEngine) -> None:
    key = engine.start("signal-catch", tenant=TENANT)
    pinged = engine.start("signal-boundary", tenant=TENANT)
    assert broadcast(engine, TENANT, "ping").delivered == [pinged]
    again = EmbeddedEngine(bus, store, clock=lambda: NOW, task_types=known_task_types())
    for xml in (sm.CATCH, sm.BOUNDARY):
        again.deploy(xml, "signals.bpmn")
    again.recover()
    assert broadcast(again, TENANT, "go").delivered == [key]
    assert broadcast(again, TENANT, "ping").delivered == [pinged]
    assert broadcast(again, TENANT, "stop").delivered == [pinged]
    again.run_jobs()
    assert completed(store, pinged)


@pytest.mark.parametrize(("xml", "message"), [
    (sm.UNNAMED, "signal event without a signalRef"),
    (sm.EXPRESSION, "signal name '=signalName' is an expression"),
])
def test_a_signal_camunda_8_cannot_name_is_refused_naming_the_element(engine: EmbeddedEngine, xml: bytes,
                                                                      message: str) -> None:
    with pytest.raises(BpmnRejected) as refused:
        engine.deploy(xml, "bad.bpmn")
    problem = refused.value.problems[0]
    assert problem.element_id == "WaitGo" and message in problem.message and problem.line is not None
