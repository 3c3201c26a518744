"""Zeebe variable scopes of call activities and multi-instance (issue 15): a called process has its own variables,
so parallel calls never see each other's values; what it sets is copied out when it completes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.event_store import RecorderEventStore
from commands.bus import CommandBus
from domain.process import ProcessCompleted, process_instance_id
from processes.engine import EmbeddedEngine
from processes.jobs import known_task_types
from tests.unit import engine_models as models
from tests.unit.conftest import TENANT
from tests.unit.element_models import START, end, loop, script
from tests.unit.engine_models import flow, process, service

# the called process: result = item * 10, then a job that sees it, then result + 1 (read back from its own scope)
SCORE = process("score", (
    START + flow("f0", "StartEvent_1", "Score") + script("Score", "=item * 10", "result", "f0", "f1")
    + flow("f1", "Score", "Look") + service("Look", "test.record", "f1", "f2")
    + flow("f2", "Look", "Again") + script("Again", "=result + 1", "result", "f2", "f3")
    + flow("f3", "Again", "EndEvent_1") + end("EndEvent_1", "f3")))


def caller(process_id: str, sequential: bool = False, called_element: str = "") -> bytes:
    """Call `score` once per item, collecting each call's `result` in item order, then a job that sees them."""
    return process(process_id, (
        START + flow("f0", "StartEvent_1", "Each")
        + '<bpmn:callActivity id="Each"><bpmn:extensionElements>'
        + (called_element or '<zeebe:calledElement processId="score"/>')
        + '</bpmn:extensionElements><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>'
        + loop("=items", "item", "results", "=result", sequential) + '</bpmn:callActivity>'
        + flow("f1", "Each", "After") + service("After", "test.record", "f1", "f2")
        + flow("f2", "After", "EndEvent_1") + end("EndEvent_1", "f2")))


@pytest.fixture(autouse=True)
def _reset_jobs() -> Iterator[None]:
    models.JOBS.clear()
    yield


def _engine(bus: CommandBus, store: RecorderEventStore) -> EmbeddedEngine:
    engine = EmbeddedEngine(bus, store, task_types=known_task_types())
    for xml in (SCORE, caller("parallel"), caller("sequential", sequential=True),
                caller("isolated", called_element='<zeebe:calledElement processId="score" '
                                                  'propagateAllParentVariables="false"/>'
                                                  '<zeebe:ioMapping><zeebe:input source="=secret" target="hint"/>'
                                                  '</zeebe:ioMapping>')):
        engine.deploy(xml, "scopes.bpmn")
    return engine


@pytest.fixture
def engine(bus: CommandBus, store: RecorderEventStore) -> EmbeddedEngine:
    return _engine(bus, store)


def jobs(element_id: str) -> list[Any]:
    return [j for j in models.JOBS if j.element_id == element_id]


def completed(store: RecorderEventStore, key: str) -> bool:
    return any(isinstance(e, ProcessCompleted) for e in store.events_of(process_instance_id(TENANT, key)))


def run_all(engine: EmbeddedEngine) -> None:
    while engine.run_jobs():
        pass


@pytest.mark.parametrize("process_id", ["parallel", "sequential"])
def test_each_called_instance_keeps_its_own_result_and_the_output_collection_keeps_item_order(
    engine: EmbeddedEngine, store: RecorderEventStore, process_id: str
) -> None:
    key = engine.start(process_id, tenant=TENANT, variables={"items": [1, 2, 3]})
    run_all(engine)
    # every called instance's job sees its own item's result, though all three set `result`
    assert sorted((j.variables["item"], j.variables["result"]) for j in jobs("Look")) == [(1, 10), (2, 20), (3, 30)]
    after = jobs("After")[0].variables
    assert after["results"] == [11, 21, 31]  # each read back its own result; in item order
    assert "result" not in after and "item" not in after  # the inner instances' own variables end with them
    assert completed(store, key)


def test_called_instances_keep_their_own_variables_across_a_restart(
    bus: CommandBus, store: RecorderEventStore, engine: EmbeddedEngine
) -> None:
    key = engine.start("parallel", tenant=TENANT, variables={"items": [4, 5]})
    again = _engine(bus, store)  # the jobs of both calls are in flight: a new engine folds them from the events
    assert again.recover() == [key]
    run_all(again)
    assert sorted((j.variables["item"], j.variables["result"]) for j in jobs("Look")) == [(4, 40), (5, 50)]
    assert jobs("After")[0].variables["results"] == [41, 51]
    assert completed(store, key)


def test_a_call_without_parent_propagation_sees_only_its_input_mappings_and_item(
    engine: EmbeddedEngine, store: RecorderEventStore
) -> None:
    key = engine.start("isolated", tenant=TENANT, variables={"items": [7], "secret": "s", "other": "x"})
    run_all(engine)
    seen = jobs("Look")[0].variables
    assert seen["hint"] == "s" and seen["item"] == 7
    assert "other" not in seen and "secret" not in seen and "items" not in seen
    assert jobs("After")[0].variables["results"] == [71]
    assert completed(store, key)


def test_a_signal_caught_inside_a_called_process_sets_its_variables_in_that_process(
    store: RecorderEventStore, engine: EmbeddedEngine
) -> None:
    from processes.signals import broadcast
    from tests.unit import signal_models as sm

    engine.deploy(sm.CATCH, "signals.bpmn")  # signal-catch: wait for "go", then the job After
    engine.deploy(caller("calls-catch", called_element='<zeebe:calledElement processId="signal-catch"/>'),
                  "scopes.bpmn")
    key = engine.start("calls-catch", tenant=TENANT, variables={"items": [1, 2]})
    run_all(engine)
    assert len(broadcast(engine, TENANT, "go", {"level": 9}).delivered) == 1  # the caller, holding both calls
    run_all(engine)
    inner = [j.variables for j in jobs("After") if "item" in j.variables]
    # each called instance's job sees the signal's variables (they were set in its scope, not only the root's)
    assert sorted((v["item"], v.get("level")) for v in inner) == [(1, 9), (2, 9)]
    assert completed(store, key)
