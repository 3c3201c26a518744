"""The process manager: what it asks of the engine for which events, its automation rules, its durable position.

The engine here is a stand-in (a hand-written recorder of calls); the real engine runs the same manager in
tests/integration/test_processes_e2e.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import pytest

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore
from adapters.sqlite_documents import SqliteDocumentStore
from commands import messages as m
from commands.bus import Actor, CommandBus, Result
from domain.case import CaseQueued
from domain.definition import DEPLOYED_PROCESSES
from processes.manager import NAME, ProcessManager, lifecycle_key
from tests.unit.conftest import TENANT, open_claim, publish_claim

CUSTOMER = Actor("customer:jane", TENANT, ("viewer",))
PROCESS = Actor("process:claim-case", TENANT, ("process",))
RULES = [
    m.AutomationRuleIn(on="CommentAdded", action="correlate-message", value="customer-replied",
                       when='=starts with(actor, "customer:")'),
    m.AutomationRuleIn(on="CaseAssigned", action="set-queue", value="fraud", when='=assignee = "bob"'),
    m.AutomationRuleIn(on="CaseQueued", action="start-process", value="fraud-check", when='=queue = "fraud"'),
]


class RecordingEngine:
    """Stand-in engine: records each call; `failures` makes the next starts raise a technical error."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.failures = 0

    def start(self, process_id: str, *, tenant: str, variables: Mapping[str, Any], case_id: str | None = None,
              instance_key: str | None = None) -> str:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("engine unavailable")
        self.calls.append(("start", process_id, case_id, instance_key, dict(variables)))
        return instance_key or "generated"

    def correlate_message(self, tenant: str, name: str, correlation_key: str, variables: Mapping[str, Any]) -> bool:
        self.calls.append(("message", name, correlation_key))
        return True

    def complete_user_task(self, tenant: str, task_id: str, variables: Mapping[str, Any]) -> bool:
        self.calls.append(("complete", task_id, dict(variables)))
        return True


@pytest.fixture(autouse=True)
def no_deployed_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DEPLOYED_PROCESSES, "_ids", set())


@pytest.fixture
def engine() -> RecordingEngine:
    return RecordingEngine()


@pytest.fixture
def manager(
    engine: RecordingEngine, bus: CommandBus, store: RecorderEventStore, documents: SqliteDocumentStore,
    runner: EmbeddedRunner,
) -> ProcessManager:
    return ProcessManager(engine, bus, store, documents, lambda: runner.position)


@pytest.fixture
def processes_claim(bus: CommandBus, alice: Actor) -> None:
    publish_claim(bus, alice, lifecycle_process="claim-case", stage_processes={"review": ["review-help"]},
                  automation=RULES)


def run(runner: EmbeddedRunner, manager: ProcessManager) -> None:
    runner.catch_up()
    manager.catch_up()


def starts(engine: RecordingEngine) -> list[tuple[str, str]]:
    """(process id, case id) of each start."""
    return [(c[1], c[2]) for c in engine.calls if c[0] == "start"]


@pytest.mark.usefixtures("processes_claim")
def test_opened_case_starts_its_lifecycle_with_the_case_data(
    bus: CommandBus, alice: Actor, engine: RecordingEngine, manager: ProcessManager, runner: EmbeddedRunner,
) -> None:
    case_id = open_claim(bus, alice, amount=250, customer="Jan").id
    run(runner, manager)
    assert engine.calls == [("start", "claim-case", case_id, lifecycle_key(case_id, "claim-case"),
                             {"amount": 250, "customer": "Jan", "caseId": case_id, "triggeredBy": "CaseOpened",
                              "stage": "new"})]


def test_cases_of_a_definition_without_processes_start_nothing(
    bus: CommandBus, alice: Actor, claim: Result, engine: RecordingEngine, manager: ProcessManager, runner:
    EmbeddedRunner,
) -> None:
    case_id = open_claim(bus, alice).id
    bus.dispatch(m.MoveCaseToStage(case_id=UUID(case_id), stage="review"), alice)
    run(runner, manager)
    assert engine.calls == []
    assert manager.position == runner.position


@pytest.mark.usefixtures("processes_claim")
def test_each_entry_into_a_stage_starts_its_processes_afresh(
    bus: CommandBus, alice: Actor, engine: RecordingEngine, manager: ProcessManager, runner: EmbeddedRunner,
) -> None:
    case_id = open_claim(bus, alice, amount=10).id
    for stage in ("review", "new", "review"):
        bus.dispatch(m.MoveCaseToStage(case_id=UUID(case_id), stage=stage), alice)
    run(runner, manager)
    stage_starts = [c for c in engine.calls if c[0] == "start" and c[1] == "review-help"]
    assert len(stage_starts) == 2 and stage_starts[0][3] != stage_starts[1][3]
    assert stage_starts[0][4] == {"amount": 10, "caseId": case_id, "triggeredBy": "CaseMovedToStage",
                                  "stage": "review", "fromStage": "new"}


@pytest.mark.usefixtures("processes_claim")
def test_completing_a_process_task_completes_the_user_task_and_ad_hoc_tasks_do_not(
    bus: CommandBus, alice: Actor, engine: RecordingEngine, manager: ProcessManager, runner: EmbeddedRunner,
) -> None:
    case_id = UUID(open_claim(bus, alice).id)
    process_task = bus.dispatch(m.CreateTask(case_id=case_id, title="Review", process_instance_key="i-1",
                                             element_id="Task_review"), PROCESS).id
    ad_hoc = bus.dispatch(m.CreateTask(case_id=case_id, title="Call back"), alice).id
    for task_id, data in ((process_task, {"ok": True}), (ad_hoc, {})):
        bus.dispatch(m.ClaimTask(task_id=UUID(task_id)), alice)
        bus.dispatch(m.CompleteTask(task_id=UUID(task_id), data=data), alice)
    run(runner, manager)
    assert [c for c in engine.calls if c[0] == "complete"] == [("complete", process_task, {"ok": True})]


@pytest.mark.usefixtures("processes_claim")
def test_automation_rules_fire_only_when_their_condition_holds(
    bus: CommandBus, alice: Actor, bob: Actor, engine: RecordingEngine, manager: ProcessManager, runner:
    EmbeddedRunner, store: RecorderEventStore,
) -> None:
    case_id = open_claim(bus, alice).id
    bus.dispatch(m.AddComment(case_id=UUID(case_id), body="we asked"), alice)
    bus.dispatch(m.AddComment(case_id=UUID(case_id), body="my answer"), CUSTOMER)
    bus.dispatch(m.AssignCase(case_id=UUID(case_id), assignee="carol"), bob)
    bus.dispatch(m.AssignCase(case_id=UUID(case_id), assignee="bob"), bob)
    run(runner, manager)
    assert [c for c in engine.calls if c[0] == "message"] == [("message", "customer-replied", case_id)]
    queued = [e for e in store.events_of(UUID(case_id)) if isinstance(e, CaseQueued)]
    assert [(e.queue, e.actor) for e in queued] == [("fraud", "automation")]
    run(runner, manager)  # the rule's own CaseQueued event starts the fraud check (a rule on a rule's result)
    assert [c[0] for c in starts(engine)] == ["claim-case", "fraud-check"]


@pytest.mark.usefixtures("processes_claim")
def test_a_restarted_manager_resumes_after_its_stored_position(
    bus: CommandBus, alice: Actor, engine: RecordingEngine, manager: ProcessManager, runner: EmbeddedRunner, store:
    RecorderEventStore, documents: SqliteDocumentStore,
) -> None:
    first = open_claim(bus, alice).id
    run(runner, manager)
    assert documents.tracking(NAME) == runner.position

    again = RecordingEngine()
    restarted = ProcessManager(again, bus, store, documents, lambda: runner.position)
    second = open_claim(bus, alice, title="Second").id
    run(runner, restarted)
    assert [c[1] for c in starts(again)] == [second]
    assert [c[1] for c in starts(engine)] == [first]


@pytest.mark.usefixtures("processes_claim")
def test_manager_never_reads_past_the_read_models(
    bus: CommandBus, alice: Actor, engine: RecordingEngine, manager: ProcessManager, runner: EmbeddedRunner,
) -> None:
    open_claim(bus, alice)
    assert manager.catch_up() == 0 and engine.calls == []
    run(runner, manager)
    assert len(engine.calls) == 1


@pytest.mark.usefixtures("processes_claim")
def test_technical_failures_are_retried_then_passed_over(
    bus: CommandBus, alice: Actor, engine: RecordingEngine, manager: ProcessManager, runner: EmbeddedRunner,
) -> None:
    flaky = open_claim(bus, alice).id
    runner.catch_up()
    engine.failures = 1
    with pytest.raises(RuntimeError):
        manager.catch_up()
    manager.catch_up()  # the retry succeeds
    assert [c[1] for c in starts(engine)] == [flaky]

    broken = open_claim(bus, alice, title="Broken").id
    fine = open_claim(bus, alice, title="Fine").id
    runner.catch_up()
    engine.failures = 3
    for _ in range(2):
        with pytest.raises(RuntimeError):
            manager.catch_up()
    manager.catch_up()  # third failure on the same event: logged and passed over, the next event is handled
    assert [c[1] for c in starts(engine)] == [flaky, fine]
    assert manager.last_error is not None and "failed 3 times" in manager.last_error
    assert broken not in [c[1] for c in starts(engine)]


def test_rule_on_task_completed_sees_the_form_data(
    bus: CommandBus, alice: Actor, engine: RecordingEngine, manager: ProcessManager, runner: EmbeddedRunner,
    store: RecorderEventStore,
) -> None:
    rule = m.AutomationRuleIn(on="TaskCompleted", action="move-stage", value="review",
                              when='=data.outcome = "escalate"')
    publish_claim(bus, alice, automation=[rule])
    case_id = UUID(open_claim(bus, alice).id)
    for outcome in ("fine", "escalate"):
        task_id = UUID(bus.dispatch(m.CreateTask(case_id=case_id, title=f"Check {outcome}"), alice).id)
        bus.dispatch(m.ClaimTask(task_id=task_id), alice)
        bus.dispatch(m.CompleteTask(task_id=task_id, data={"outcome": outcome}), alice)
    run(runner, manager)
    moves = [e for e in store.events_of(case_id) if type(e).__name__ == "CaseMovedToStage"]
    assert [(e.to_stage, e.actor) for e in moves] == [("review", "automation")]  # type: ignore[attr-defined]
    assert engine.calls == []


class CountingReads:
    """The store, counting the log reads of whoever holds this wrapper."""

    def __init__(self, store: RecorderEventStore) -> None:
        self.store = store
        self.reads = 0

    def read_batch(self, *args: Any, **kwargs: Any) -> Any:
        self.reads += 1
        return self.store.read_batch(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.mark.usefixtures("processes_claim")
def test_a_manager_fed_the_runners_windows_acts_as_one_reading_the_store_and_reads_nothing(
    bus: CommandBus, alice: Actor, store: RecorderEventStore, documents: SqliteDocumentStore, tmp_path: Any,
) -> None:
    from projections.catalog import ALL

    own_docs = SqliteDocumentStore(tmp_path / "other-views.db", ALL)
    reading_runner, sharing_runner = EmbeddedRunner(store, documents, ALL), EmbeddedRunner(store, own_docs, ALL)
    reading_engine, sharing_engine = RecordingEngine(), RecordingEngine()
    counted = CountingReads(store)
    reading = ProcessManager(reading_engine, bus, store, documents, lambda: reading_runner.position)
    sharing = ProcessManager(sharing_engine, bus, counted, own_docs,  # type: ignore[arg-type]
                             lambda: sharing_runner.position)
    sharing_runner.share_windows(sharing.types, sharing.offer)
    for round_ in range(3):  # several windows, with the manager following each
        case_id = UUID(open_claim(bus, alice, amount=round_).id)
        bus.dispatch(m.MoveCaseToStage(case_id=case_id, stage="review"), alice)
        bus.dispatch(m.AssignCase(case_id=case_id, assignee="bob"), alice)  # rule: set-queue fraud, then a start
        bus.dispatch(m.AddComment(case_id=case_id, body="hi"), CUSTOMER)  # rule: correlate a message
        run(reading_runner, reading)
        run(sharing_runner, sharing)
    run(reading_runner, reading)  # the rules' own commands
    run(sharing_runner, sharing)
    assert sharing_engine.calls == reading_engine.calls
    assert len(reading_engine.calls) >= 9
    assert sharing.position == reading.position == store.max_position()
    assert counted.reads == 0
    own_docs.close()
