"""User-task completions in batches: the engine saves the steps of several completions as one append, and the process
manager hands it the completions of a window of the log together, in log order with the starts around them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore
from adapters.sqlite_documents import SqliteDocumentStore
from commands import messages as m
from commands.bus import Actor, CommandBus, Result
from domain.definition import DEPLOYED_PROCESSES
from domain.errors import InvalidStateChange
from domain.process import process_instance_id
from processes.completions import TaskCompletion
from processes.engine import EmbeddedEngine
from processes.jobs import known_task_types
from processes.manager import ProcessManager
from processes.starts import StartRequest
from tests.unit import engine_models as models
from tests.unit.conftest import TENANT, open_claim, publish_claim

PROCESS = Actor("process:claim-case", TENANT, ("process",))
TWO_TASKS = models.process("two-tasks", (
    '<bpmn:startEvent id="Begin"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
    + models.flow("f1", "Begin", "Split")
    + '<bpmn:parallelGateway id="Split"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>a1</bpmn:outgoing>'
      '<bpmn:outgoing>b1</bpmn:outgoing></bpmn:parallelGateway>'
    + models.flow("a1", "Split", "First") + models.flow("b1", "Split", "Second")
    + '<bpmn:userTask id="First"><bpmn:incoming>a1</bpmn:incoming><bpmn:outgoing>a2</bpmn:outgoing></bpmn:userTask>'
    + '<bpmn:userTask id="Second"><bpmn:incoming>b1</bpmn:incoming><bpmn:outgoing>b2</bpmn:outgoing></bpmn:userTask>'
    + models.flow("a2", "First", "Join") + models.flow("b2", "Second", "Join")
    + '<bpmn:parallelGateway id="Join"><bpmn:incoming>a2</bpmn:incoming><bpmn:incoming>b2</bpmn:incoming>'
      '<bpmn:outgoing>f9</bpmn:outgoing></bpmn:parallelGateway>'
    + models.flow("f9", "Join", "Finish")
    + '<bpmn:endEvent id="Finish"><bpmn:incoming>f9</bpmn:incoming></bpmn:endEvent>'))


@pytest.fixture
def engine(bus: CommandBus, store: RecorderEventStore) -> EmbeddedEngine:
    engine = EmbeddedEngine(bus, store, clock=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
                            task_types=known_task_types())
    for xml in (models.REVIEW, TWO_TASKS):
        engine.deploy(xml, "test.bpmn")
    return engine


def types(store: RecorderEventStore, key: str) -> list[str]:
    return [type(e).__name__ for e in store.events_of(process_instance_id(TENANT, key))]


def test_several_completions_are_saved_in_one_append_and_an_unknown_task_is_false(
    engine: EmbeddedEngine, store: RecorderEventStore, bus: CommandBus, alice: Actor, claim: Result,
) -> None:
    keys = [engine.start("review", tenant=TENANT, variables={"reviewer": "carol", "amount": n},
                         case_id=open_claim(bus, alice).id) for n in range(3)]
    tasks = [engine.user_task_ids(key, TENANT)["Review"] for key in keys]
    appends: list[int] = []
    store.on_append(appends.append)
    outcomes = engine.complete_user_tasks([TaskCompletion(TENANT, str(t), {"approved": True}) for t in tasks]
                                          + [TaskCompletion(TENANT, "00000000-0000-0000-0000-000000000001", {})])
    assert outcomes == [True, True, True, False]
    assert len(appends) == 1
    for key in keys:
        assert types(store, key)[-1] == "ProcessAdvanced" and not engine.user_task_ids(key, TENANT)
        instance = engine.instance(key, TENANT)
        assert instance is not None and instance.variables["approved"] is True


def test_two_tasks_of_one_instance_in_one_batch_are_saved_one_after_the_other(
    engine: EmbeddedEngine, store: RecorderEventStore,
) -> None:
    key = engine.start("two-tasks", tenant=TENANT, variables={})
    tasks = engine.user_task_ids(key, TENANT)
    outcomes = engine.complete_user_tasks([TaskCompletion(TENANT, str(tasks["First"]), {"first": 1}),
                                           TaskCompletion(TENANT, str(tasks["Second"]), {"second": 2})])
    assert outcomes == [True, True]
    assert types(store, key) == ["ProcessStarted", "ProcessAdvanced", "ProcessAdvanced", "ProcessCompleted"]


class BatchingEngine:
    """Stand-in for an engine that takes starts and completions in batches: records each call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.fail_batches = 0  # the next complete_user_tasks calls raise a technical error
        self.refuse: set[str] = set()  # task ids whose step the domain refuses

    def start_many(self, requests: Sequence[StartRequest]) -> list[str | Exception]:
        self.calls.append(("starts", [str(r.case_id) for r in requests]))
        return [r.instance_key or "generated" for r in requests]

    def start(self, process_id: str, *, tenant: str, variables: Mapping[str, Any], case_id: str | None = None,
              instance_key: str | None = None) -> str:
        self.calls.append(("start", [str(case_id)]))
        return instance_key or "generated"

    def complete_user_tasks(self, completions: Sequence[TaskCompletion]) -> list[bool | Exception]:
        if self.fail_batches:
            self.fail_batches -= 1
            raise RuntimeError("the store did not answer")
        self.calls.append(("completions", [c.task_id for c in completions]))
        return [InvalidStateChange("refused") if c.task_id in self.refuse else True for c in completions]

    def complete_user_task(self, tenant: str, task_id: str, variables: Mapping[str, Any]) -> bool:
        self.calls.append(("completion", [task_id]))
        return True

    def correlate_message(self, tenant: str, name: str, correlation_key: str, variables: Mapping[str, Any]) -> bool:
        return False


@pytest.fixture(autouse=True)
def no_deployed_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DEPLOYED_PROCESSES, "_ids", set())


@pytest.fixture
def fake() -> BatchingEngine:
    return BatchingEngine()


@pytest.fixture
def manager(fake: BatchingEngine, bus: CommandBus, store: RecorderEventStore, documents: SqliteDocumentStore,
            runner: EmbeddedRunner, alice: Actor) -> ProcessManager:
    publish_claim(bus, alice, lifecycle_process="claim-case")
    return ProcessManager(fake, bus, store, documents, lambda: runner.position)


def complete_process_task(bus: CommandBus, alice: Actor, case_id: str) -> str:
    task_id = bus.dispatch(m.CreateTask(case_id=UUID(case_id), title="Review", process_instance_key="i",
                                        element_id="Review"), PROCESS).id
    bus.dispatch(m.ClaimTask(task_id=UUID(task_id)), alice)
    bus.dispatch(m.CompleteTask(task_id=UUID(task_id), data={}), alice)
    return task_id


def test_the_completions_of_a_window_go_together_in_log_order_with_the_starts_between(
    fake: BatchingEngine, manager: ProcessManager, runner: EmbeddedRunner, bus: CommandBus, alice: Actor,
) -> None:
    first_case = open_claim(bus, alice).id
    runner.catch_up()
    manager.catch_up()
    fake.calls.clear()
    done_1 = complete_process_task(bus, alice, first_case)
    done_2 = complete_process_task(bus, alice, first_case)
    second_case = open_claim(bus, alice).id
    done_3 = complete_process_task(bus, alice, first_case)
    runner.catch_up()
    manager.catch_up()
    assert fake.calls == [("completions", [done_1, done_2]), ("starts", [second_case]), ("completions", [done_3])]
    assert manager.position == runner.position


def test_a_batch_that_fails_is_completed_one_by_one_and_a_refused_step_is_noted(
    fake: BatchingEngine, manager: ProcessManager, runner: EmbeddedRunner, bus: CommandBus, alice: Actor,
) -> None:
    case_id = open_claim(bus, alice).id
    runner.catch_up()
    manager.catch_up()
    fake.calls.clear()
    done = [complete_process_task(bus, alice, case_id) for _ in range(2)]
    runner.catch_up()
    fake.fail_batches = 1
    manager.catch_up()
    assert fake.calls == [("completion", [done[0]]), ("completion", [done[1]])]
    refused = complete_process_task(bus, alice, case_id)
    fake.refuse.add(refused)
    runner.catch_up()
    manager.catch_up()
    assert manager.last_error is not None and "refused" in manager.last_error
    assert manager.position == runner.position
