"""The process manager: turns case events into process starts, user-task completions, messages and commands.

It follows the event log behind the read models (the embedded runner wakes it after each batch it folded, and
it never reads past the runner's position, so whatever a process does next already sees those events in the
read models). For each event, in log order:

- `CaseOpened`: start the definition version's lifecycle process (instance key uuid5(case id, process id), so
  a replay starts nothing new);
- `CaseMovedToStage`: start the auto-start processes of the stage entered (keyed by that event, so a case that
  comes back to the stage gets a fresh instance);
- `TaskCompleted` of a process task: complete the user task in the engine with the form data;
- any event an automation rule names: when its FEEL condition holds, issue the rule's command (or correlate
  its message by case id, or start its process).

Its position is stored with the read models (`tracking` row `process-manager`) after each batch and right
after each message correlation, so a restart resumes where it stopped. Work runs on its own thread: the
runner only sets a flag.

Lifecycle starts are gathered over the batch and handed to the engine together (`start_many`: one batch of
commands for all their first steps); they are started before anything else of the batch reaches the engine
(a stage move, a task completion, an automation rule), so the engine still sees everything in log order.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar
from uuid import UUID

from adapters.catch_up_thread import TrackedCatchUp
from commands import messages as m
from commands.bus import Actor, CommandBus
from commands.ports import EventStore
from domain.case import Case, CaseMovedToStage, CaseOpened
from domain.definition import AutomationRule, CaseDefinition, DefinitionSpec, definition_id
from domain.errors import DomainError
from domain.events import EVENT_TYPES, Event, Positioned
from domain.task import TaskCompleted
from processes.completions import BatchCompletions, TaskCompletion
from processes.feel import Expression, compile_feel
from processes.starts import BatchStarts, StartRequest
from projections.ports import DocumentStore, Query

log = logging.getLogger(__name__)
_T = TypeVar("_T")
NAME = "process-manager"
NAMESPACE = uuid.UUID("9b0f4b8e-3f0c-4c55-8d1a-5e6f7a8b9c0d")
AUTOMATION_ACTOR = "automation"
MAX_ATTEMPTS = 3  # tries per event before a technical failure is logged and the event passed over
STAGE_CHANGED = "case-stage-changed"  # the message a person's stage move publishes to the case's processes
MAX_WITHDRAWN = 200  # open tasks of one case withdrawn by one manual move, at most
CASES_REMEMBERED = 10_000  # case -> definition pins kept (the rest are read from the case's first event again)


class Engine(Protocol):
    """What the manager needs of a BPMN engine (the embedded one, or the Zeebe adapter)."""

    def start(
        self, process_id: str, *, tenant: str, variables: Mapping[str, Any], case_id: str | None = None,
        instance_key: str | None = None,
    ) -> str: ...

    def correlate_message(
        self, tenant: str, name: str, correlation_key: str, variables: Mapping[str, Any]
    ) -> bool: ...

    def complete_user_task(self, tenant: str, task_id: str, variables: Mapping[str, Any]) -> bool: ...


def lifecycle_key(case_id: str, process_id: str) -> str:
    """The instance key of a case's lifecycle process: one per (case, process), ever."""
    return str(uuid.uuid5(UUID(case_id), process_id))


def stage_key(case_id: str, process_id: str, event_id: UUID) -> str:
    """The instance key of a stage process started by one entry into the stage."""
    return str(uuid.uuid5(UUID(case_id), f"{process_id}:{event_id}"))


def rule_context(event: Event) -> dict[str, Any]:
    """What an automation rule's condition sees: the event's own fields, its type, actor and case id."""
    fields = {
        f.name: getattr(event, f.name) for f in dataclasses.fields(event)
        if f.name not in ("event_id", "aggregate_id", "version", "occurred_at", "meta")
    }
    fields = {k: str(v) if isinstance(v, UUID) else v for k, v in fields.items()}
    case_id = _case_of(event)
    return {**fields, "event": event.type_name(), "actor": event.actor, "tenant": event.tenant, "caseId": case_id}


def _case_of(event: Event) -> str | None:
    """The case an event belongs to: its `case_id` field, else the aggregate for case events."""
    named = getattr(event, "case_id", None)
    if named is not None:
        return str(named)
    if type(event).__module__ == "domain.case":
        return str(event.aggregate_id)
    return None


def case_event_types() -> frozenset[str]:
    """The event types `_case_of` can place in a case: the only ones the manager acts on (it reads no others, so
    the command log and the number sequences, half of the log, are never fetched or decoded)."""
    return frozenset(
        name for name, event_type in EVENT_TYPES.items()
        if event_type.__module__ == "domain.case"
        or any(f.name == "case_id" for f in dataclasses.fields(event_type))
    )


class ProcessManager(TrackedCatchUp):
    """Follows the event log (behind the read models) and drives processes from case events."""

    thread_name = "casestream-process-manager"
    failure_message = "process manager failed; retrying"
    tracking_name = NAME

    def __init__(
        self, engine: Engine, bus: CommandBus, store: EventStore, documents: DocumentStore,
        read_limit: Callable[[], int], *, batch_size: int = 500, poll_interval: float = 0.5,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.store = store
        self.read_limit = read_limit
        self.batch_size = batch_size
        super().__init__(documents, poll_interval)
        self._specs: dict[tuple[str, str, int], DefinitionSpec] = {}
        # case id -> (definition key, version), the most recent cases only: memory must not grow with history
        self._cases: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._conditions: dict[str, Expression] = {}
        self._failures: dict[int, int] = {}  # position -> technical failures so far
        self._correlated = False  # the event being handled correlated a message (not idempotent)
        self.types = case_event_types() | {TaskCompleted.type_name()}  # the event types it reads
        self._classes = frozenset(EVENT_TYPES[name] for name in self.types)
        # windows of the log the runner read and decoded for the read models (bounded: a manager far behind
        # reads the store instead)
        self._offered: deque[tuple[int, int, Sequence[Positioned]]] = deque(maxlen=64)
        self._offer_lock = threading.Lock()
        self._starts: list[tuple[int, StartRequest]] = []  # (position, request) gathered for one start_many
        # (position, completion) gathered for one complete_user_tasks; never beside gathered starts (log order)
        self._completions: list[tuple[int, TaskCompletion]] = []

    # -- feeding -------------------------------------------------------------------------------------

    def offer(self, after: int, last: int, batch: Sequence[Positioned]) -> None:
        """Runner window listener (EmbeddedRunner.share_windows): the decoded events of (after, last], which the
        read models now hold; `step` takes them instead of reading the store when they start at its position."""
        with self._offer_lock:
            self._offered.append((after, last, batch))
        self._wake.set()

    def _shared_window(self, limit: int) -> tuple[list[Positioned], int] | None:
        """The offered window starting at our position, of our event types, if there is one."""
        with self._offer_lock:
            while self._offered and self._offered[0][0] < self.position:
                self._offered.popleft()  # handled already (or overlapping what the store gave us)
            if not self._offered or self._offered[0][0] != self.position or self._offered[0][1] > limit:
                return None
            _after, last, events = self._offered.popleft()
        return [p for p in events if type(p.event) in self._classes], last

    def skip_to(self, position: int) -> None:
        """Record position as handled without acting on the events before it (e.g. demo history)."""
        with self._progress:
            self.position = max(self.position, position)
            self.documents.write([], (NAME, self.position))
            self._progress.notify_all()

    def step(self) -> int:
        """Handle the next batch of events the read models already hold; return how many were read.

        Starts, task completions and commands are idempotent (instance keys, command ids), so the position is
        stored once per batch; a message correlation is not, so the position is stored right after one, and a
        failure (retried by the loop) never correlates a message twice.
        """
        limit = self.read_limit()
        if limit <= self.position:
            return 0
        shared = self._shared_window(limit)
        batch, last = shared or self.store.read_batch(self.position, self.batch_size, self.types)
        batch = [p for p in batch if p.position <= limit]
        last = min(last, limit)
        for positioned in batch:  # a case's number is issued just before it opens: know its definition already
            if isinstance(event := positioned.event, CaseOpened) and str(event.aggregate_id) not in self._cases:
                self._pin(str(event.aggregate_id), (event.definition_key, event.definition_version))
        for positioned in batch:
            self._correlated = False
            if self._handle(positioned) and self._correlated:
                self._advance(positioned.position)
        self._flush()
        self._advance(last)
        return max(1, len(batch))

    def _flush(self) -> None:
        """Hand the engine what was gathered (starts or completions: one kind at a time, so in log order)."""
        self._flush_starts()
        self._flush_completions()

    def _flush_completions(self) -> None:
        """Complete the gathered user tasks in one batch; one refused is logged and passed over, as alone."""
        gathered, self._completions = self._completions, []
        if not gathered:
            return
        assert isinstance(self.engine, BatchCompletions)
        outcomes = self._together(gathered, self.engine.complete_user_tasks, self._complete_alone,
                                  "completing user tasks")
        for (_, completion), outcome in zip(gathered, outcomes, strict=False):
            if not isinstance(outcome, Exception) and not outcome:
                log.warning("task %s completed, but no open user task has that id", completion.task_id)

    def _complete_alone(self, completion: TaskCompletion) -> bool:
        if not self.engine.complete_user_task(completion.tenant, completion.task_id, completion.variables):
            log.warning("task %s completed, but no open user task has that id", completion.task_id)
        return True

    def _flush_starts(self) -> None:
        """Start the gathered lifecycles in one batch; one that is refused is logged and passed over (as one start
        alone would be)."""
        starts, self._starts = self._starts, []
        if not starts:
            return
        assert isinstance(self.engine, BatchStarts)
        self._together(starts, self.engine.start_many, self._start_alone, "starting processes")

    def _together(self, gathered: Sequence[tuple[int, _T]], together: Callable[[list[_T]], Sequence[object]],
                  alone: Callable[[_T], bool], what: str) -> Sequence[object]:
        """Hand the engine the gathered items in one call; an item's refusal (an exception among the outcomes) is
        logged and passed over; after a technical failure of the whole call they go one by one (what was saved
        before it finds its work done). The outcomes, in order (none when they went one by one)."""
        try:
            outcomes = together([item for _, item in gathered])
        except Exception:
            log.exception("%s: %d together failed; one by one", what, len(gathered))
            for position, item in gathered:
                self._guarded(position, functools.partial(alone, item))
            return []
        for (position, _), outcome in zip(gathered, outcomes, strict=True):
            if isinstance(outcome, Exception):
                self._skipped(position, outcome)
        return outcomes

    def _start_alone(self, request: StartRequest) -> bool:
        self.engine.start(request.process_id, tenant=request.tenant, variables=request.variables,
                          case_id=request.case_id, instance_key=request.instance_key)
        return True

    # -- acting ---------------------------------------------------------------------------------------

    def _handle(self, positioned: Positioned) -> bool:
        """Act on one event; a business refusal is logged and skipped, a technical failure propagates (retry)."""
        return self._guarded(positioned.position, lambda: self._act(positioned))

    def _skipped(self, position: int, exc: Exception) -> None:
        # the engine refused (unknown process, finished task): retrying cannot help, so note it and go on
        self.last_error = f"event at {position}: {exc!r}"
        log.warning("process manager skipped the event at position %s: %r", position, exc)

    def _guarded(self, position: int, act: Callable[[], bool]) -> bool:
        """Run act for the event at position: a business refusal is logged and skipped, a technical failure
        propagates (the loop retries) until it failed MAX_ATTEMPTS times, then it is logged and passed over."""
        try:
            return act()
        except (DomainError, KeyError, ValueError) as exc:
            self._skipped(position, exc)
            return True
        except Exception as exc:
            # technical: retried by the loop, but an event that keeps failing must not block every later one
            failures = self._failures[position] = self._failures.get(position, 0) + 1
            if failures < MAX_ATTEMPTS:
                raise
            self.last_error = f"event at {position} failed {failures} times: {exc!r}"
            log.error("process manager gave up on the event at position %s: %r", position, exc)
            self._failures.pop(position, None)
            return True

    def _act(self, positioned: Positioned) -> bool:
        event = positioned.event
        acted = False
        if isinstance(event, CaseOpened):
            self._pin(str(event.aggregate_id), (event.definition_key, event.definition_version))
            acted = self._on_opened(event, positioned.position)
        elif isinstance(event, CaseMovedToStage):
            self._flush()
            acted = self._on_moved(event)
        elif isinstance(event, TaskCompleted) and event.process_instance_key and isinstance(
                self.engine, BatchCompletions):  # gathered: completed with the batch's other completions
            self._flush_starts()
            self._completions.append((positioned.position, TaskCompletion(event.tenant, str(event.aggregate_id),
                                                                          dict(event.data))))
            acted = True
        elif isinstance(event, TaskCompleted) and event.process_instance_key:
            self._flush()
            if not self.engine.complete_user_task(event.tenant, str(event.aggregate_id), dict(event.data)):
                log.warning("task %s completed, but no open user task of %s has that id",
                            event.aggregate_id, event.process_instance_key)
            acted = True
        return self._automate(event) or acted

    def _variables(self, event: Event, case_id: str) -> dict[str, Any]:
        return {"caseId": case_id, "triggeredBy": event.type_name()}

    def _on_opened(self, event: CaseOpened, position: int) -> bool:
        spec = self._spec(event.tenant, event.definition_key, event.definition_version)
        if spec is None or spec.lifecycle_process is None:
            return False
        case_id = str(event.aggregate_id)
        variables = {**self._variables(event, case_id), **event.data, "stage": event.stage}
        key = lifecycle_key(case_id, spec.lifecycle_process)
        if isinstance(self.engine, BatchStarts):  # gathered: started with the batch's other lifecycles
            self._flush_completions()
            self._starts.append((position, StartRequest(spec.lifecycle_process, event.tenant, variables, case_id,
                                                        key)))
            return True
        self.engine.start(spec.lifecycle_process, tenant=event.tenant, variables=variables, case_id=case_id,
                          instance_key=key)
        return True

    def _on_moved(self, event: CaseMovedToStage) -> bool:
        spec = self._case_spec(event.tenant, str(event.aggregate_id))
        if spec is None:
            return False
        withdrawn = self._withdraw_tasks(event)
        case_id = str(event.aggregate_id)
        started = False
        ids = spec.stage_processes.get(event.to_stage, ())
        data = Case.replay(event.aggregate_id, self.store.events_of(event.aggregate_id)).data if ids else {}
        for process_id in ids:
            variables = {**data, **self._variables(event, case_id), "stage": event.to_stage,
                         "fromStage": event.from_stage}
            self.engine.start(process_id, tenant=event.tenant, variables=variables, case_id=case_id,
                              instance_key=stage_key(case_id, process_id, event.event_id))
            started = True
        return started or withdrawn

    def _withdraw_tasks(self, event: CaseMovedToStage) -> bool:
        """A person moved the case: the open user tasks its processes wait on belong to the stage it left, so each
        is withdrawn (cancelled with the reason; the process goes on with `withdrawn` set). Moves by a process or
        an automation rule are the processes' own doing and withdraw nothing."""
        withdraw = getattr(self.engine, "withdraw_user_task", None)
        if withdraw is None or event.actor.startswith("process:") or event.actor == AUTOMATION_ACTOR:
            return False
        reason = f"the case was moved from {event.from_stage} to {event.to_stage} by {event.actor}"
        variables = {"withdrawn": True, "movedToStage": event.to_stage, "movedBy": event.actor}
        # first the processes' own say: a message catch (a boundary on the user task, an event sub-process) for
        # `case-stage-changed` keyed by the case id takes the move; what it interrupted is not withdrawn again
        self._correlated = True
        caught = self.engine.correlate_message(event.tenant, STAGE_CHANGED, str(event.aggregate_id), {
            "fromStage": event.from_stage, "toStage": event.to_stage, "movedBy": event.actor})
        tasks = self.documents.find(Query("tasks", event.tenant, {"case_id": str(event.aggregate_id), "active": True},
                                          sort="created_at", descending=False, limit=MAX_WITHDRAWN))
        withdrawn = [bool(withdraw(event.tenant, doc["id"], reason, variables))
                     for doc in tasks if doc.get("process_instance_key")]
        return caught or any(withdrawn)

    def _automate(self, event: Event) -> bool:
        case_id = _case_of(event)
        if case_id is None:
            return False
        spec = self._case_spec(event.tenant, case_id)
        if spec is None or not spec.automation:
            return False
        acted = False
        context: dict[str, Any] | None = None
        for index, rule in enumerate(spec.automation):
            if rule.on != event.type_name():
                continue
            context = context if context is not None else rule_context(event)
            if rule.when and not self._condition(rule.when).test(context):
                continue
            try:
                self._run_rule(rule, index, event, case_id, context)
            except DomainError as exc:  # the case refused: the rule does nothing this time
                log.info("automation rule %s on %s refused: %s", index, event.type_name(), exc.detail)
            acted = True
        return acted

    def _run_rule(self, rule: AutomationRule, index: int, event: Event, case_id: str, context: dict[str, Any]) -> None:
        self._flush()  # a rule may act on a process started (or a task completed) by this very event
        if rule.action == "correlate-message":
            variables = {"lastEvent": {"type": event.type_name(), "actor": event.actor}}
            self._correlated = True
            self.engine.correlate_message(event.tenant, rule.value, case_id, variables)
            return
        if rule.action == "start-process":
            self.engine.start(rule.value, tenant=event.tenant, variables=self._variables(event, case_id),
                              case_id=case_id, instance_key=stage_key(case_id, rule.value, event.event_id))
            return
        command_id = f"automation:{event.event_id}:{index}"
        command: m.Command
        if rule.action == "set-queue":
            command = m.QueueCase(command_id=command_id, case_id=UUID(case_id), queue=rule.value)
        elif rule.action == "move-stage":
            command = m.MoveCaseToStage(command_id=command_id, case_id=UUID(case_id), stage=rule.value)
        elif rule.action == "assign":
            command = m.AssignCase(command_id=command_id, case_id=UUID(case_id), assignee=rule.value)
        else:
            raise ValueError(f"unknown automation action {rule.action!r}")
        actor = Actor(AUTOMATION_ACTOR, event.tenant, ("process",))
        self.bus.dispatch(command, actor, correlation_id=event.meta.correlation_id, causation_id=str(event.event_id))

    # -- definitions ----------------------------------------------------------------------------------

    def _condition(self, text: str) -> Expression:
        if text not in self._conditions:
            self._conditions[text] = compile_feel(text)
        return self._conditions[text]

    def _spec(self, tenant: str, key: str, version: int) -> DefinitionSpec | None:
        cached = self._specs.get((tenant, key, version))
        if cached is not None:
            return cached
        did = definition_id(tenant, key)
        events = self.store.events_of(did)
        if not events:
            return None
        definition = CaseDefinition.replay(did, events)
        for v, spec in enumerate(definition.specs, start=1):
            self._specs[(tenant, key, v)] = spec
        return self._specs.get((tenant, key, version))

    def _case_spec(self, tenant: str, case_id: str) -> DefinitionSpec | None:
        pinned = self._cases.get(case_id)
        if pinned is None:
            events = self.store.events_of(UUID(case_id))
            opened = events[0] if events else None
            if not isinstance(opened, CaseOpened) or opened.tenant != tenant:
                return None
            pinned = (opened.definition_key, opened.definition_version)
            self._pin(case_id, pinned)
        return self._spec(tenant, *pinned)

    def _pin(self, case_id: str, pinned: tuple[str, int]) -> None:
        self._cases[case_id] = pinned
        self._cases.move_to_end(case_id)
        if len(self._cases) > CASES_REMEMBERED:
            self._cases.popitem(last=False)
