"""The embedded BPMN engine: SpiffWorkflow running Camunda 8 (Zeebe) BPMN, durable in the event store.

Every change of an instance is one command (`RecordProcessStep`) through the command bus, so process events
get the same metadata, idempotency and optimistic concurrency as every other change; each event carries only
the delta of its step (processes/state.py). Service tasks become `Job`s run by `run_job` on worker threads
the moment a step makes them ready (no polling); user tasks become `CreateTask` commands; timers wait on a
timer thread that sleeps until the next due time; `recover()` folds stored events back into workflows.

Concurrency: one lock guards all instances (SpiffWorkflow is not thread-safe); jobs run outside it, and
commands to other aggregates (tasks) are sent after it is released.

Batching: `start_many` starts several instances and saves their first steps as one batch of commands (the process
manager hands it the lifecycle starts of a whole window of the log); a worker takes the jobs queued meanwhile
together, runs each, and saves the steps their outcomes cause as one batch. A batch is decided exactly as its
commands one by one would be (CommandBus.dispatch_envelopes); it costs one read query and one append instead of
one of each per step.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.defaults import UserTask
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import ErrorEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from commands.bus import Actor, CommandBus, Envelope
from commands.messages import CancelTask, Command, RecordProcessStep, StepEventIn
from commands.ports import EventStore
from domain.definition import NAMESPACE
from domain.errors import AlreadyExists, DomainError
from domain.process import (
    RUNNING,
    InstanceState,
    ProcessCancelled,
    ProcessCompleted,
    ProcessStarted,
    fold_instance,
    process_instance_id,
)
from processes.bpmn import DeployedProcess, ZeebeServiceTask
from processes.cache import InstanceCache
from processes.call_activity import link_calls
from processes.catch_events import definition_for, prepare_subscriptions, subscriptions_of, waits_on_timer
from processes.checkpoint import Checkpoint, SavedInstance, take_checkpoint, write_checkpoint
from processes.completions import TaskCompletion
from processes.deployment_follower import TenantModels
from processes.dmn import DecisionRegistry
from processes.effects import SendCommand, run_effects
from processes.incidents import element_failed, open_incidents, stuck, unresolved_message
from processes.index import Subscription, UserTaskRef, WaitIndex
from processes.instance import Instance
from processes.jobs import Failed, Job, JobOutcome, known_task_types, run_job, run_jobs
from processes.message_buffer import MessageBuffer
from processes.model import ProcessModel, content_hash, prepare_model
from processes.outcomes import apply_outcome, deliver_message, fire_timer, offer_compensation, plan_compensation
from processes.recovery import changes_after, unfinished_instances
from processes.runtime import FeelScriptEngine, evaluate, scoped, timer_due
from processes.signals import thrown_signal_effects
from processes.starts import StartRequest
from processes.state import new_workflow, restore_workflow
from processes.user_tasks import OpenUserTask, open_user_task, user_task_command

log = logging.getLogger("casestream.engine")

__all__ = ["EmbeddedEngine", "ProcessNotDeployed"]


class ProcessNotDeployed(DomainError):
    """No process with that id has been deployed to this engine."""

    code = "process-not-deployed"
    status = 404


@dataclass(order=True, slots=True)
class _Timer:
    due: datetime
    seq: int
    instance_id: UUID
    ref: str  # spiff task id of a waiting timer, or "retry:<job ref>"


Step = list[tuple[str, dict[str, Any]]]
JOB_BATCH = 64  # jobs a worker takes from the queue at once (their outcomes are saved together)


class EmbeddedEngine:
    """Runs deployed Zeebe-dialect BPMN on SpiffWorkflow; state lives in the event store as process events."""

    def __init__(
        self,
        bus: CommandBus,
        store: EventStore,
        *,
        workers: int = 2,
        clock: Callable[[], datetime] | None = None,
        backoff_seconds: float = 1.0,
        backoff_max_seconds: float = 300.0,
        task_types: frozenset[str] | None = None,
        on_job_ready: Callable[[Job], None] | None = None,
        cache_size: int = 1000,
        checkpoint: Path | None = None,
    ) -> None:
        self.bus = bus
        self.store = store
        self.clock = clock or (lambda: datetime.now(UTC))
        # published messages no subscription waited for yet (POST /api/messages): offered as subscriptions open
        self.messages = MessageBuffer(bus, self.clock)
        self.backoff_seconds = backoff_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self._task_types = task_types
        self._on_job_ready = on_job_ready
        self._workers = workers
        self._backlog_limit = workers  # queued jobs beyond this are run by the thread that starts instances
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._models: dict[str, ProcessModel] = {}  # process id -> latest deployment
        self._tenant_models: dict[tuple[str, str], ProcessModel] = {}  # (tenant, process id) -> its own latest
        self._by_hash: dict[str, ProcessModel] = {}
        self._decisions = DecisionRegistry()  # DMN decisions for business-rule tasks
        self._loaded = InstanceCache(cache_size)  # in memory: busy instances and the most recent resting ones
        self._index = WaitIndex()  # every open instance, loaded or not, with what it waits for
        self._unindexed: dict[UUID, None] = {}  # found unfinished at recovery, not yet loaded and indexed
        self._timers: list[_Timer] = []
        self._timer_seq = 0
        self._scheduled: set[tuple[UUID, str, datetime]] = set()
        self._jobs: queue.SimpleQueue[tuple[UUID, str, Job] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._running = False
        self._step_now: datetime | None = None
        self.checkpoint = checkpoint  # where a clean stop saves what recover() reads back (processes/checkpoint.py)
        self._knows_all = False  # recover() ran: the index holds every open instance, so a checkpoint may be saved

    # ------------------------------------------------------------------------------------------ lifecycle

    def start_background(self) -> None:
        """Start the job workers and the timer thread."""
        if self._running:
            return
        self._running = True
        for n in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"bpmn-worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        timer = threading.Thread(target=self._tick, name="bpmn-timers", daemon=True)
        timer.start()
        self._threads.append(timer)
        if self._unindexed:
            indexer = threading.Thread(target=self._index_in_background, name="bpmn-recovery", daemon=True)
            indexer.start()
            self._threads.append(indexer)

    def _index_in_background(self) -> None:
        """Index lazily recovered instances in small batches (the lock is free between them for new work)."""
        while self._running:
            try:
                if self.index_pending() == 0:
                    return
            except Exception:
                log.exception("indexing recovered process instances failed; retrying")
                time.sleep(1.0)

    def stop(self) -> None:
        """Stop the background threads (jobs already taken finish first), then save the checkpoint, if any."""
        if self._running:
            self._running = False
            for _ in range(self._workers):
                self._jobs.put(None)
            with self._wake:
                self._wake.notify_all()
            for thread in self._threads:
                thread.join(timeout=10)
            self._threads.clear()
        if self.checkpoint is not None and self._knows_all:
            self._save_checkpoint(self.checkpoint)

    def _save_checkpoint(self, path: Path) -> None:
        """Every open instance's index entries at the log's head (a scan of them all: at a stop, not per step)."""
        with self._lock:
            timers: dict[UUID, list[tuple[str, datetime]]] = {}
            for entry in self._timers:
                timers.setdefault(entry.instance_id, []).append((entry.ref, entry.due))
            fold = {*self._loaded.busy(), *self._unindexed}
            saved = [
                SavedInstance(iid, key, tenant, iid in fold,
                              tuple((task_id, ref.spiff_id, ref.element_id)
                                    for task_id, ref in self._index.tasks_of(iid).items()),
                              tuple((name, correlation)
                                    for _tenant, name, correlation in self._index.subscriptions_of(iid)),
                              tuple(timers.get(iid, ())))
                for iid, (key, tenant) in self._index.open.items()]
            position = self.store.max_position()
            head = self._event_id_at(position)
        write_checkpoint(path, Checkpoint(position, head, saved))
        log.info("saved %d open process instances at position %d to %s", len(saved), position, path)

    # ----------------------------------------------------------------------------------------------- deploy

    def deploy(self, xml: bytes, filename: str, *, tenant: str | None = None,
               model: ProcessModel | None = None) -> DeployedProcess:
        """Check and deploy a BPMN file (idempotent by content); the newest deployment of an id starts new instances
        (of `tenant`; with None, of every tenant without its own deployment of the id). `model`: already checked.
        Every deployment stays, by content hash: a running instance keeps its version."""
        with self._lock:
            known = self._by_hash.get(content_hash(xml))
            if known is not None:
                self._make_latest(known, tenant)
                return known.deployed
        types = self._task_types if self._task_types is not None else known_task_types()
        if model is None or model.content_hash != content_hash(xml) or not model.deployed.task_types <= types:
            model = prepare_model(xml, types, filename)  # checked here: against the job types this engine runs
        # a tenant's deployment calls the tenant's own processes first (processes/deployments.py TenantModels)
        link_calls(model, self._models if tenant is None else TenantModels(self._tenant_models, self._models, tenant))
        with self._lock:
            self._by_hash[model.content_hash] = model
            self._make_latest(model, tenant)
        return model.deployed

    def _make_latest(self, model: ProcessModel, tenant: str | None) -> None:
        if tenant is None:
            self._models[model.process_id] = model
        else:
            self._tenant_models[(tenant, model.process_id)] = model

    def deploy_dmn(self, xml: bytes, tenant: str | None = None) -> list[str]:
        """Deploy a DMN file's decisions (for business-rule tasks) for a tenant (None: every tenant); their ids.
        Raises BpmnRejected."""
        return self._decisions.deploy(xml, tenant)

    def deployed(self, process_id: str, tenant: str | None = None) -> ProcessModel | None:
        """The newest deployment of a process id: the tenant's own, else the one every tenant shares."""
        if tenant is not None:
            own = self._tenant_models.get((tenant, process_id))
            if own is not None:
                return own
        return self._models.get(process_id)

    # ------------------------------------------------------------------------------------------------ start

    def start(
        self,
        process_id: str,
        *,
        tenant: str,
        variables: Mapping[str, Any] | None = None,
        case_id: str | UUID | None = None,
        instance_key: str | None = None,
    ) -> str:
        """Start an instance and run it until it waits; a repeated instance_key starts nothing new."""
        key = instance_key or str(uuid.uuid4())
        outcome = self.start_many([StartRequest(process_id, tenant, variables or {},
                                                None if case_id is None else str(case_id), key)])[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def start_many(self, requests: Sequence[StartRequest]) -> list[str | Exception]:
        """Start instances (each run until it waits) and save their first steps in one batch; per request its key,
        or the error that refused it (an unknown process, a model failing on these variables). A repeated
        instance_key starts nothing new. A technical failure of the batch raises, and none of it is started."""
        effects: list[Callable[[], None]] = []
        outcomes: list[str | Exception] = []
        begun: list[tuple[int, Instance, Step]] = []
        with self._lock:
            try:
                for request in requests:
                    key = request.instance_key or str(uuid.uuid4())
                    try:
                        started = self._begin(request, key)
                    except (DomainError, KeyError, ValueError) as exc:
                        outcomes.append(exc)
                        continue
                    outcomes.append(key)
                    if started is not None:
                        begun.append((len(outcomes) - 1, *started))
                errors = self._commit_many([(instance, step) for _, instance, step in begun], effects)
            except Exception:
                for _, instance, _ in begun:
                    self._index.drop(instance.id)
                raise
            for (at, instance, _), error in zip(begun, errors, strict=True):
                if error is not None:
                    self._index.drop(instance.id)
                    if not isinstance(error, AlreadyExists):  # started before (maybe finished): not an error
                        outcomes[at] = error
        self._run_effects(effects)
        self._relieve_backlog()
        return outcomes

    def _begin(self, request: StartRequest, key: str) -> tuple[Instance, Step] | None:
        """A new instance run until it waits, and its first step (not saved yet); None if it is open already."""
        iid = process_instance_id(request.tenant, key)
        if iid in self._index.open:
            return None
        model = self.deployed(request.process_id, request.tenant)
        if model is None:
            raise ProcessNotDeployed(f"process {request.process_id!r} is not deployed")
        values = dict(request.variables)
        case = request.case_id if request.case_id is not None else values.get("caseId")
        if case is not None:
            values["caseId"] = str(case)
        instance = self._new_instance(iid, key, request.tenant, None if case is None else str(case), model, values)
        instance.workflow = new_workflow(model.deployed.spec, model.deployed.subprocess_specs, instance.script)
        instance.saved_variables = dict(values)
        self._index.add(iid, key, request.tenant)
        try:
            self._advance(instance)
        except Exception:
            self._index.drop(iid)
            raise
        return instance, [(ProcessStarted.__name__, {
            "process_id": model.process_id, "process_name": model.deployed.name or model.process_id,
            "instance_key": key, "definition_hash": model.content_hash,
            # a copy: the stored event must not share the live variables (a reload from it would see later changes)
            "variables": orjson.loads(orjson.dumps(values, default=str)),
            "case_id": instance.case_id,
        })]

    def _new_instance(self, iid: UUID, key: str, tenant: str, case_id: str | None, model: ProcessModel,
                      variables: dict[str, Any]) -> Instance:
        return Instance(id=iid, key=key, tenant=tenant, case_id=case_id, model=model, variables=variables,
                        script=FeelScriptEngine(variables, self._now, self._decisions.for_tenant(tenant)))

    def _now(self) -> datetime:
        return self._step_now or self.clock()

    # --------------------------------------------------------------------------------------- step machinery

    def _advance(self, instance: Instance, action: Callable[[], object] | None = None) -> None:
        """Run `action` (a task completing, a timer firing) and the engine, then prepare what the new state needs
        before it is saved (subscription keys). An element failing on the way, a message that can never arrive or
        an instance left with nothing to do becomes an incident in the step (processes/incidents.py)."""
        failures = 0
        while True:
            try:
                if action is not None:
                    run = action
                    action = None  # once: a retry of the loop after a failure only runs the engine
                    run()
                instance.run_engine()
            except Exception as exc:  # the engine's own failures (gateways, expressions): an incident, not a crash
                instance.pending.append(element_failed(instance, exc))
                failures += 1
                if failures < 20:  # the failed element is parked in ERROR: other branches may still move
                    continue
                break
            planned = plan_compensation(instance)
            instance.pending.extend(planned)
            if not planned:
                break
        for task in instance.all_tasks(TaskState.WAITING):
            definition = getattr(task.task_spec, "event_definition", None)
            prepare_subscriptions(instance, task)  # an event-based gateway's messages
            if isinstance(definition, MessageEventDefinition) and "correlation_key" not in task.internal_data:
                name = definition.name
                key_expr = instance.model.correlation_keys.get(name)
                visible = scoped(instance.variables, task)  # a catch in a called process: its own variables
                try:
                    resolved = str(evaluate(name, visible)) if name.startswith("=") else name
                    key = evaluate(key_expr, visible) if key_expr else None
                except Exception as exc:  # noted as unresolved: a retry evaluates it again
                    resolved, key, key_expr = name, None, f"{key_expr} ({exc})"
                task.internal_data["message_name"] = resolved
                task.internal_data["correlation_key"] = None if key is None else str(key)
                if key is None:
                    instance.pending.append(unresolved_message(instance, task, resolved, key_expr or ""))
        blocked = stuck(instance)
        if blocked is not None:
            instance.pending.append(blocked)

    def _step_command(self, instance: Instance, step: Step) -> tuple[RecordProcessStep, Step]:
        """The command saving one step (its events, the first carrying the delta), and the step's events."""
        step = [*step, *instance.pending]
        instance.pending.clear()
        # an element parked in ERROR ends its branch; with its incident open the instance has not completed
        if (instance.completed and not open_incidents(instance)
                and not any(t in (ProcessCompleted.__name__, ProcessCancelled.__name__) for t, _ in step)):
            step.append((ProcessCompleted.__name__, {"process_id": instance.model.process_id}))
        events = [StepEventIn(type=t, payload=dict(p)) for t, p in step]
        first = events[0]
        events[0] = StepEventIn(type=first.type, payload={**first.payload, "delta": instance.take_delta()})
        return RecordProcessStep(instance_id=instance.id, events=events, expected_version=instance.version), step

    def _commit(self, instance: Instance, step: Step, effects: list[Callable[[], None]]) -> None:
        """Save one step and collect what must happen next."""
        command, step = self._step_command(instance, step)
        try:
            result = self.bus.dispatch(command, self._actor(instance), correlation_id=instance.key,
                                       causation_id=f"process:{instance.key}")
        except Exception:
            # memory is ahead of the store now: forget the instance; recover() rebuilds it from its events
            self._forget(instance)
            raise
        self._committed(instance, step, result.version, effects)

    def _commit_many(self, steps: Sequence[tuple[Instance, Step]],
                     effects: list[Callable[[], None]]) -> list[DomainError | None]:
        """Save the steps of several instances (one each) as one batch of commands; per step None, or the domain
        error that refused it (that instance is forgotten: its memory is ahead of the store)."""
        if not steps:
            return []
        prepared = [(instance, *self._step_command(instance, step)) for instance, step in steps]
        try:
            outcomes = self.bus.dispatch_envelopes([
                Envelope(command, self._actor(instance), instance.key, f"process:{instance.key}")
                for instance, command, _ in prepared])
        except Exception:
            for instance, _, _ in prepared:
                self._forget(instance)
            raise
        errors: list[DomainError | None] = []
        for (instance, _, step), outcome in zip(prepared, outcomes, strict=True):
            if isinstance(outcome, DomainError):
                self._forget(instance)
                errors.append(outcome)
            else:
                self._committed(instance, step, outcome.version, effects)
                errors.append(None)
        return errors

    def _committed(self, instance: Instance, step: Step, version: int, effects: list[Callable[[], None]]) -> None:
        """After a saved step: a finished instance is dropped, an open one's next work collected."""
        instance.version = version
        effects.extend(thrown_signal_effects(self, instance))  # its signal throws broadcast (processes/signals.py)
        if any(t in (ProcessCompleted.__name__, ProcessCancelled.__name__) for t, _ in step):
            self._close_user_tasks(instance, effects, finished=True)
            self._index.drop(instance.id)
            self._forget(instance)
            return
        self._collect_effects(instance, effects)
        self._loaded.settle(instance)

    def _actor(self, instance: Instance) -> Actor:
        return Actor(user=f"process:{instance.model.process_id}", tenant=instance.tenant, roles=("process",))

    def _forget(self, instance: Instance) -> None:
        """Drop the loaded copy (finished, or ahead of the store after a failed save: the next use reloads it)."""
        self._loaded.drop(instance.id)

    def _settle(self, instance: Instance) -> None:
        """Re-file a still-open instance in the cache after work that saved no step (a job offered or dropped)."""
        if instance.id in self._index.open and instance.id in self._loaded:
            self._loaded.settle(instance)

    def _send(self, instance: Instance, command: Command) -> Callable[[], None]:
        return SendCommand(self.bus, command, self._actor(instance), instance.key)

    def _collect_effects(self, instance: Instance, effects: list[Callable[[], None]], *,
                         recovering: bool = False) -> None:
        """After a saved step: hand ready jobs to the workers, announce user tasks, schedule timers, index the
        messages it waits for. Recovering, a user task is announced only if its task was never created."""
        subscriptions: set[Subscription] = set()
        for task in instance.all_tasks(TaskState.STARTED | TaskState.READY | TaskState.WAITING):
            spec = task.task_spec
            if task.state == TaskState.WAITING:
                subscriptions.update((instance.tenant, name, key) for name, key in subscriptions_of(task))
            if isinstance(spec, ZeebeServiceTask) and task.state == TaskState.STARTED:
                self._offer_job(instance, str(task.id), self._service_job(instance, task))
            elif isinstance(spec, UserTask) and task.state == TaskState.READY:
                task_id = self.user_task_id(instance.key, spec.name, task.id)
                if task_id not in self._index.tasks:
                    self._index.add_task(task_id, UserTaskRef(instance.id, task.id, spec.name))
                    command = user_task_command(instance, task, task_id)
                    if command is not None and not (recovering and self.store.position_of(task_id, 1) is not None):
                        effects.append(self._send(instance, command))
            elif task.state == TaskState.WAITING and isinstance(spec, CatchingEvent):
                if waits_on_timer(spec.event_definition):
                    due = timer_due(task)
                    if due is not None:
                        self._schedule(instance.id, str(task.id), due)
            elif task.state == TaskState.STARTED and spec.name in instance.model.compensation_throws:
                offer_compensation(self, instance, task)
        opened = frozenset(subscriptions) - self._index.subscriptions_of(instance.id)
        self._index.subscribe(instance.id, frozenset(subscriptions))
        for subscription in opened:  # a message buffered for a wait that just opened goes to it (after the lock)
            if self.messages.holds(subscription):
                effects.append(functools.partial(self.messages.opened, self, subscription))
        self._close_user_tasks(instance, effects, finished=False)

    def _close_user_tasks(self, instance: Instance, effects: list[Callable[[], None]], *, finished: bool) -> None:
        """Withdraw the instance's announced user tasks that are no longer ready (only its own: by the index)."""
        for task_id, ref in self._index.tasks_of(instance.id).items():
            task = instance.task(ref.spiff_id)
            if task is not None and task.state == TaskState.READY and not finished:
                continue
            self._index.remove_task(task_id)
            if task is None or task.state != TaskState.COMPLETED:
                reason = "the process instance ended" if finished else "the process moved on (boundary event)"
                if instance.case_id is not None:
                    effects.append(self._send(instance, CancelTask(task_id=task_id, reason=reason,
                                                                   command_id=f"cancel-task:{task_id}")))

    def _run_effects(self, effects: list[Callable[[], None]]) -> None:
        run_effects(effects)  # consecutive task commands as one batch of the bus (processes/effects.py)

    @staticmethod
    def user_task_id(instance_key: str, element_id: str, spiff_task_id: UUID) -> UUID:
        """The deterministic id of the task a user task creates (instance, element, and this iteration)."""
        return uuid.uuid5(NAMESPACE, f"user-task:{instance_key}:{element_id}:{spiff_task_id}")

    # ------------------------------------------------------------------------------------------------- jobs

    def _service_job(self, instance: Instance, task: Task) -> Job:
        spec: ZeebeServiceTask = task.task_spec
        retries = str(spec.retries or "3")
        scope = scoped(instance.variables, task)  # its local scope over its process's (a called one's own)
        initial = int(evaluate(retries, scope)) if retries.startswith("=") else int(retries)
        return self._job(instance, str(task.id), spec.name, spec.task_type, spec.headers, initial, scope)

    def _job(self, instance: Instance, ref: str, element_id: str, job_type: str, headers: Mapping[str, str],
             initial_retries: int, scope: Mapping[str, Any] | None = None) -> Job:
        """A job of an element; `scope`: the variables its task sees (default: the process variables)."""
        state = instance.jobs.get(ref, {})
        scope = instance.variables if scope is None else scope
        variables = {**scope, **instance.inputs(element_id, scope)}
        resolved = {k: str(evaluate(v, scope)) if v and v.startswith("=") else v
                    for k, v in headers.items()}
        element_id = instance.model.element_of(element_id)  # a multi-instance body's inner task: its BPMN id
        return Job(key=f"{instance.key}:{ref}", type=job_type, process_instance_key=instance.key,
                   element_id=element_id, tenant=instance.tenant, variables=variables, headers=resolved,
                   retries=int(state.get("retries", initial_retries)), process_id=instance.model.process_id)

    def _offer_job(self, instance: Instance, ref: str, job: Job) -> None:
        state = instance.jobs.get(ref, {})
        if ref in instance.in_flight or state.get("incident"):
            return
        retry_at = state.get("retry_at")
        if retry_at and datetime.fromisoformat(retry_at) > self._now():
            self._schedule(instance.id, f"retry:{ref}", datetime.fromisoformat(retry_at))
            return
        instance.in_flight.add(ref)
        if self._on_job_ready is not None:
            self._on_job_ready(job)
        self._jobs.put((instance.id, ref, job))

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            batch = [item, *self._take_jobs(JOB_BATCH - 1)]
            self._run_job_batch(batch)

    def _take_jobs(self, limit: int) -> list[tuple[UUID, str, Job]]:
        """Up to `limit` more queued jobs, without waiting (stop()'s sign is left for a worker)."""
        taken: list[tuple[UUID, str, Job]] = []
        while len(taken) < limit:
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._jobs.put(None)
                break
            taken.append(item)
        return taken

    def _run_job_batch(self, batch: Sequence[tuple[UUID, str, Job]]) -> None:
        """Run each job, then apply their outcomes together (one batch of steps); if that fails, one by one."""
        outcomes = run_jobs([job for _, _, job in batch], self.bus)  # their commands in shared batches
        done = [(iid, ref, job, outcome) for (iid, ref, job), outcome in zip(batch, outcomes, strict=True)]
        try:
            self.jobs_done(done)
        except Exception:
            log.exception("applying a batch of %d job outcomes failed; applying them one by one", len(done))
            for instance_id, ref, job, outcome in done:
                try:
                    self.job_done(instance_id, ref, job, outcome)
                except Exception:
                    log.exception("process %s: applying the outcome of job %s failed", job.process_instance_key,
                                  job.key)

    def _outcome(self, job: Job) -> JobOutcome:
        try:
            return run_job(job, self.bus)
        except Exception as exc:  # run_job classifies worker errors; this is the bus or store itself failing
            return Failed(f"{type(exc).__name__}: {exc}", max(job.retries - 1, 0))

    def _run_job(self, instance_id: UUID, ref: str, job: Job) -> None:
        outcome = self._outcome(job)
        try:
            self.job_done(instance_id, ref, job, outcome)
        except Exception:
            log.exception("process %s: applying the outcome of job %s failed", job.process_instance_key, job.key)

    def _relieve_backlog(self) -> None:
        """Caller runs: while more jobs wait than there are workers, the thread that starts instances runs one
        itself, so a burst of starts cannot pile up jobs (their latency) faster than they are worked off."""
        while self._running and self._jobs.qsize() > self._backlog_limit:
            batch = self._take_jobs(JOB_BATCH)
            if not batch:
                return
            self._run_job_batch(batch)

    def run_jobs(self) -> int:
        """Run queued jobs in the calling thread until none is left (tests, tools); returns how many ran."""
        ran = 0
        while True:
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                return ran
            if item is not None:
                self._run_job(*item)
                ran += 1

    def jobs_done(self, done: Sequence[tuple[UUID, str, Job, JobOutcome]]) -> None:
        """Apply several jobs' outcomes (see job_done), saving the steps they cause as one batch of commands. The
        outcomes of one instance are applied one after another and saved as one step holding each one's events
        (a call activity run for ten items finishes ten jobs at once: one command and one delta, not ten)."""
        effects: list[Callable[[], None]] = []
        with self._lock:
            steps: dict[UUID, tuple[Instance, Step]] = {}
            held: dict[UUID, Instance] = {}  # the copy this batch changes, whatever the cache evicts meanwhile
            for instance_id, ref, job, outcome in done:
                instance = held.get(instance_id) or self._instance(instance_id, effects)
                if instance is None:
                    continue
                held[instance_id] = instance
                instance.in_flight.discard(ref)
                step = apply_outcome(self, instance, ref, job, outcome)
                if step:
                    steps.setdefault(instance_id, (instance, []))[1].extend(step)
                elif instance_id not in steps:
                    self._settle(instance)
            self._save_steps(list(steps.values()), effects)
        self._run_effects(effects)

    def _save_steps(self, steps: Sequence[tuple[Instance, Step]], effects: list[Callable[[], None]]) -> None:
        for (instance, _), error in zip(steps, self._commit_many(steps, effects), strict=True):
            if error is not None:
                log.warning("process %s: its step was refused: %s", instance.key, error.detail)

    def job_done(self, instance_id: UUID, ref: str, job: Job, outcome: JobOutcome) -> None:
        """Apply a job's outcome: complete and advance, throw its BPMN error, or retry / raise an incident."""
        effects: list[Callable[[], None]] = []
        with self._lock:
            instance = self._instance(instance_id, effects)
            if instance is None:
                return
            instance.in_flight.discard(ref)
            step = apply_outcome(self, instance, ref, job, outcome)
            if step:
                self._commit(instance, step, effects)
            else:
                self._settle(instance)
        self._run_effects(effects)

    def retry_delay(self, retries_left: int, initial: int) -> timedelta:
        """Exponential back-off: 1, 2, 4, ... times the base, capped."""
        attempt = max(initial - retries_left - 1, 0)
        return timedelta(seconds=min(self.backoff_seconds * 2**attempt, self.backoff_max_seconds))

    # ----------------------------------------------------------------------------------------------- timers

    def _schedule(self, instance_id: UUID, ref: str, due: datetime) -> None:
        if (instance_id, ref, due) in self._scheduled:
            return
        self._scheduled.add((instance_id, ref, due))
        self._timer_seq += 1
        heapq.heappush(self._timers, _Timer(due, self._timer_seq, instance_id, ref))
        self._wake.notify_all()

    def next_timer(self) -> datetime | None:
        """When the next timer or job retry is due."""
        with self._lock:
            return self._timers[0].due if self._timers else None

    def _tick(self) -> None:
        while self._running:
            with self._wake:
                due = self._timers[0].due if self._timers else None
                wait = 60.0 if due is None else max((due - self.clock()).total_seconds(), 0.0)
                if wait > 0:
                    self._wake.wait(min(wait, 60.0))
            if self._running:
                try:
                    self._fire_due(self.clock())
                except Exception:
                    log.exception("firing timers failed")

    def fire_due_timers(self, now: datetime | None = None) -> int:
        """Fire every timer (and job retry) due at `now`; returns how many fired. Instances a lazy recovery has
        not indexed yet are indexed first, so their timers count (the timer thread does not wait for that)."""
        effects: list[Callable[[], None]] = []
        with self._lock:
            self._index_all(effects)
        self._run_effects(effects)
        return self._fire_due(now or self.clock())

    @property
    def recovering(self) -> int:
        """Instances found unfinished at recovery and not indexed yet."""
        return len(self._unindexed)

    def _fire_due(self, now: datetime) -> int:
        fired = 0
        while True:
            effects: list[Callable[[], None]] = []
            with self._lock:
                if not self._timers or self._timers[0].due > now:
                    return fired
                entry = heapq.heappop(self._timers)
                self._scheduled.discard((entry.instance_id, entry.ref, entry.due))
                instance = self._instance(entry.instance_id, effects)
                if instance is None:
                    continue
                # each timer fires in its own step at its due time, so a later timer does not ride along
                self._step_now = entry.due
                try:
                    if fire_timer(self, instance, entry.ref, entry.due, effects):
                        fired += 1
                    self._settle(instance)
                except Exception:
                    log.exception("process %s: timer %s failed", instance.key, entry.ref)
                finally:
                    self._step_now = None
            self._run_effects(effects)

    # --------------------------------------------------------------------------------- messages, user tasks

    def correlate_message(self, tenant: str, name: str, correlation_key: str,
                          variables: Mapping[str, Any] | None = None) -> bool:
        """Deliver a message to the first instance waiting for it with this correlation key."""
        return self.correlate_message_to(tenant, name, correlation_key, variables) is not None

    def correlate_message_to(self, tenant: str, name: str, correlation_key: str,
                             variables: Mapping[str, Any] | None = None) -> str | None:
        """`correlate_message`, naming the key of the instance the message went to (None: nobody waited)."""
        effects: list[Callable[[], None]] = []
        with self._lock:
            self._index_all(effects)  # an instance not indexed yet after a restart may be the one waiting
            delivered: str | None = None
            for iid in self._index.subscribers((tenant, name, str(correlation_key))):
                instance = self._instance(iid, effects)
                if instance is None:
                    continue
                for task in instance.all_tasks(TaskState.WAITING):
                    if (name, str(correlation_key)) in subscriptions_of(task):
                        deliver_message(self, instance, task, dict(variables or {}), effects,
                                        definition_for(task, name))
                        delivered = instance.key
                        break
                if delivered is not None:
                    break
        self._run_effects(effects)
        return delivered

    def complete_user_task(self, tenant: str, task_id: str | UUID, variables: Mapping[str, Any] | None = None) -> bool:
        """Complete the user task behind a task with its variables; False if no open user task has that id."""
        effects: list[Callable[[], None]] = []
        with self._lock:
            found = self._user_task(UUID(str(task_id)), tenant, effects)
            if found is not None:
                instance, task = found
                instance.merge_result(task.task_spec.name, dict(variables or {}), task=task)
                self._advance(instance, task.run)
                self._commit(instance, [("ProcessAdvanced", {"cause": "user-task-completed",
                                                             "element_id": task.task_spec.name})], effects)
        self._run_effects(effects)
        return found is not None

    def complete_user_tasks(self, completions: Sequence[TaskCompletion]) -> list[bool | Exception]:
        """complete_user_task for several tasks, their steps saved as one batch of commands (over PostgreSQL one
        append instead of one per task, under the engine lock); per task True, False if no open user task has that
        id, or the domain error that refused its step. A technical failure raises; the steps not saved by then are not
        (the instance is forgotten and reloaded from the log, so the caller may hand those completions again)."""
        effects: list[Callable[[], None]] = []
        outcomes: list[bool | Exception] = []
        try:
            self._complete_all(completions, outcomes, effects)
        finally:  # a batch saved before a later one failed still offers its jobs, opens its tasks
            self._run_effects(effects)
        return outcomes

    def _complete_all(self, completions: Sequence[TaskCompletion], outcomes: list[bool | Exception],
                      effects: list[Callable[[], None]]) -> None:
        with self._lock:
            steps: list[tuple[Instance, Step]] = []
            at: list[int] = []  # the outcome index of each step in `steps`

            def save() -> None:
                for index, error in zip(at, self._commit_many(steps, effects), strict=True):
                    if error is not None:
                        outcomes[index] = error
                steps.clear()
                at.clear()

            for completion in completions:
                found = self._user_task(UUID(completion.task_id), completion.tenant, effects)
                outcomes.append(found is not None)
                if found is None:
                    continue
                instance, task = found
                if any(stepping is instance for stepping, _ in steps):
                    save()  # its second task this batch: its first step is saved first
                instance.merge_result(task.task_spec.name, dict(completion.variables))
                self._advance(instance, task.run)
                steps.append((instance, [("ProcessAdvanced", {"cause": "user-task-completed",
                                                              "element_id": task.task_spec.name})]))
                at.append(len(outcomes) - 1)
            save()

    def withdraw_user_task(self, tenant: str, task_id: str | UUID, reason: str,
                           variables: Mapping[str, Any] | None = None) -> bool:
        """A person moved the case on while this user task was open: its task is cancelled with `reason` and the
        process goes on as if it were done, with `variables` set (docs/processes.md, "Manual moves"); False if no
        open user task has that id."""
        effects: list[Callable[[], None]] = []
        with self._lock:
            found = self._user_task(UUID(str(task_id)), tenant, effects)
            if found is not None:
                instance, task = found
                instance.merge_result(task.task_spec.name, dict(variables or {}), outputs=[], task=task)
                self._advance(instance, task.run)
                self._commit(instance, [("ProcessAdvanced", {"cause": "user-task-withdrawn",
                                                             "element_id": task.task_spec.name})], effects)
                effects.insert(0, self._send(instance, CancelTask(task_id=UUID(str(task_id)), reason=reason,
                                                                  command_id=f"withdraw-task:{task_id}")))
        self._run_effects(effects)
        return found is not None

    def _user_task(self, task_id: UUID, tenant: str, effects: list[Callable[[], None]]) -> tuple[Instance, Task] | None:
        """The instance and ready SpiffWorkflow task behind an announced user task, by the index."""
        ref = self._index.tasks.get(task_id)
        if ref is None and self._unindexed:
            ref = self._index_owner_of(task_id, tenant, effects)
        if ref is None:
            return None
        instance = self._instance(ref.instance_id, effects)
        if instance is None or instance.tenant != tenant:
            return None
        task = instance.task(ref.spiff_id)
        if task is None or task.state != TaskState.READY:
            return None
        return instance, task

    def cancel(self, instance_key: str, reason: str, *, tenant: str | None = None) -> bool:
        """Cancel a running instance (its open user tasks are cancelled too); False if none runs with that key."""
        effects: list[Callable[[], None]] = []
        with self._lock:
            iid = self._index.by_key(instance_key, tenant)
            instance = self._instance(iid, effects) if iid is not None else None
            if instance is not None:
                instance.workflow.cancel()
                self._commit(instance, [(ProcessCancelled.__name__, {"reason": reason})], effects)
        self._run_effects(effects)
        return instance is not None

    # ------------------------------------------------------------------------------------------ inspection

    def instance(self, instance_key: str, tenant: str) -> Instance | None:
        """The open (unfinished) instance with this key, loaded from its events if it was evicted."""
        effects: list[Callable[[], None]] = []
        with self._lock:
            found = self._instance(process_instance_id(tenant, instance_key), effects)
        self._run_effects(effects)
        return found

    def open_instances(self) -> int:
        """How many instances are open (loaded or not)."""
        return len(self._index)

    def loaded_instances(self) -> int:
        """How many instances are held in memory (busy ones and the cache of resting ones)."""
        return len(self._loaded)

    def open_user_tasks(self, instance_key: str, tenant: str) -> list[OpenUserTask]:
        """The instance's open user tasks, one per multi-instance item (in item order), each with its own
        variables (inputElement, loopCounter); each is completed on its own by its task id."""
        iid = process_instance_id(tenant, instance_key)
        effects: list[Callable[[], None]] = []
        with self._lock:
            if iid in self._unindexed:
                self._index_one(iid, effects)
            refs = self._index.tasks_of(iid)
            instance = self._instance(iid, effects) if refs else None
            found = [] if instance is None else [open_user_task(instance, task_id, ref.spiff_id, ref.element_id)
                                                 for task_id, ref in refs.items()]
        self._run_effects(effects)
        return sorted(found, key=lambda t: (t.element_id, t.variables.get("loopCounter", 0)))

    def user_task_ids(self, instance_key: str, tenant: str) -> dict[str, UUID]:
        """Element id -> task id of the instance's open user tasks, from the index alone (of a multi-instance
        element's several open tasks, one: `open_user_tasks` lists each)."""
        iid = process_instance_id(tenant, instance_key)
        effects: list[Callable[[], None]] = []
        with self._lock:
            if iid in self._unindexed:
                self._index_one(iid, effects)
            tasks = {ref.element_id: task_id for task_id, ref in self._index.tasks_of(iid).items()}
        self._run_effects(effects)
        return tasks

    # --------------------------------------------------------------------------------------------- recover

    def recover(self, *, lazily: bool = False) -> list[str]:
        """Know every unfinished instance again after a restart (deploy the processes first); their keys.

        The log's start and end events name the unfinished instances; each is then folded from its own events,
        its user tasks, timers and messages indexed, and its work in flight at the stop (a job, an unannounced
        user task) offered again. Lazily, that folding is left to `index_pending` (the engine's recovery thread
        once started), and whatever arrives for an instance not indexed yet indexes that one first.
        """
        effects: list[Callable[[], None]] = []
        recovered: list[str] = []
        saved = take_checkpoint(self.checkpoint) if self.checkpoint is not None else None
        if saved is not None and self._event_id_at(saved.position) != saved.head:
            saved = None  # saved for another log (a new one, a restored backup): scan this one
        with self._lock:
            self._knows_all = True
            if saved is not None:
                recovered = self._restore_checkpoint(saved)
                if not lazily:
                    self._index_all(effects)
                    recovered = [key for key in recovered if self._index.by_key(key) is not None]
        if saved is not None:
            self._run_effects(effects)
            return recovered
        with self._lock:
            for found in unfinished_instances(self.store):
                if found.instance_id in self._index.open:
                    continue
                self._index.add(found.instance_id, found.key, found.tenant)
                self._unindexed[found.instance_id] = None
                recovered.append(found.key)
            if not lazily:
                self._index_all(effects)
                recovered = [key for key in recovered if self._index.by_key(key) is not None]
        self._run_effects(effects)
        return recovered

    def _event_id_at(self, position: int) -> str:
        """The id of the event at a log position ("" for none)."""
        found = self.store.read(position - 1, 1) if position > 0 else []
        return str(found[0].event.event_id) if found and found[0].position == position else ""

    def _restore_checkpoint(self, saved: Checkpoint) -> list[str]:
        """Take the checkpoint's entries as they are; what the log changed after it (and what had work in flight)
        is folded from its events later (lazily, as a scan-recovered instance is). Lock held."""
        recovered: list[str] = []
        for instance in saved.instances:
            iid = instance.instance_id
            self._index.add(iid, instance.key, instance.tenant)
            for task_id, spiff_id, element in instance.tasks:
                self._index.add_task(task_id, UserTaskRef(iid, spiff_id, element))
            self._index.subscribe(iid, frozenset((instance.tenant, name, correlation)
                                                 for name, correlation in instance.subscriptions))
            for ref, due in instance.timers:
                self._schedule(iid, ref, due)
            if instance.fold:
                self._unindexed[iid] = None
            recovered.append(instance.key)
        for item in changes_after(self.store, saved.position):
            event, iid = item.event, item.event.aggregate_id
            if isinstance(event, ProcessStarted):
                if iid not in self._index.open:
                    self._index.add(iid, event.instance_key, event.tenant)
                    recovered.append(event.instance_key)
                self._unindexed[iid] = None
            elif isinstance(event, (ProcessCompleted, ProcessCancelled)):
                self._index.drop(iid)
                self._unindexed.pop(iid, None)
            elif iid in self._index.open:
                self._unindexed[iid] = None  # moved on after the checkpoint: its entries are folded again
        return [key for key in recovered if self._index.by_key(key) is not None]

    def index_pending(self, limit: int = 200) -> int:
        """Fold and index up to `limit` instances recovered lazily; returns how many are left."""
        effects: list[Callable[[], None]] = []
        with self._lock:
            batch = list(itertools.islice(self._unindexed, limit))
            events = self.store.events_of_many(batch) if batch else {}
            for iid in batch:
                if iid in self._unindexed:
                    self._index_one(iid, effects, events.get(iid, []))
            left = len(self._unindexed)
        self._run_effects(effects)
        return left

    def _index_all(self, effects: list[Callable[[], None]]) -> None:
        while self._unindexed:
            batch = list(itertools.islice(self._unindexed, 500))
            events = self.store.events_of_many(batch)
            for iid in batch:
                self._index_one(iid, effects, events.get(iid, []))

    def _index_one(self, iid: UUID, effects: list[Callable[[], None]],
                   events: list[Any] | None = None) -> Instance | None:
        """Load a recovered instance and index what it waits for, offering the work it had in flight."""
        self._unindexed.pop(iid, None)
        instance = self._load(iid, events)
        if instance is not None:
            self._collect_effects(instance, effects, recovering=True)
            self._loaded.settle(instance)
        return instance

    def _index_owner_of(self, task_id: UUID, tenant: str, effects: list[Callable[[], None]]) -> UserTaskRef | None:
        """Before recovery indexed everything: find the instance that announced a task from the task's creation."""
        created = next(iter(self.store.events_of(task_id)), None)
        key = getattr(created, "process_instance_key", None)
        if key is None:
            return None
        iid = process_instance_id(tenant, str(key))
        if iid in self._unindexed:
            self._index_one(iid, effects)
        return self._index.tasks.get(task_id)

    def _instance(self, iid: UUID, effects: list[Callable[[], None]]) -> Instance | None:
        """An open instance: the loaded copy, else folded from its events (and indexed, if recovery had not yet)."""
        found = self._loaded.get(iid)
        if found is not None:
            return found
        if iid not in self._index.open:
            return None
        if iid in self._unindexed:
            return self._index_one(iid, effects)
        return self._load(iid)

    def _load(self, iid: UUID, events: list[Any] | None = None) -> Instance | None:
        """Rebuild an open instance from its stored events and hold it in the cache."""
        state = fold_instance(self.store.events_of(iid) if events is None else events)
        if state.status != RUNNING:
            self._index.drop(iid)
            return None
        model = self._by_hash.get(state.definition_hash)
        if model is None:
            log.warning("process instance %s: its deployment %s of %r is not deployed; not recovered",
                        state.instance_key, state.definition_hash[:12], state.process_id)
            self._index.drop(iid)
            return None
        instance = self._restore(iid, state, model)
        self._loaded.put(instance)
        return instance

    def _restore(self, iid: UUID, state: InstanceState, model: ProcessModel) -> Instance:
        instance = self._new_instance(iid, state.instance_key, state.tenant, state.case_id, model,
                                      dict(state.variables))
        instance.workflow = restore_workflow(model.deployed.spec, model.deployed.subprocess_specs, state,
                                             instance.script)
        instance.version = state.version
        instance.saved_variables = dict(state.variables)
        instance.jobs = dict(state.jobs)
        instance.extra = dict(state.extra)
        instance.tracker.delta(instance.workflow)  # the restored tasks are the saved baseline
        return instance

    # ----------------------------------------------------------------------------------------- helpers

    def find_error_catchers(self, task: Task, code: str) -> list[Task]:
        """Waiting error boundary events attached to `task` that catch `code`."""
        parent = task.parent
        if parent is None or not isinstance(parent.task_spec, BoundaryEventSplit):
            return []
        probe = ErrorEventDefinition(code, code)
        return [t for t in parent.children
                if isinstance(t.task_spec, BoundaryEvent) and t.state == TaskState.WAITING
                and isinstance(t.task_spec.event_definition, ErrorEventDefinition)
                and t.task_spec.event_definition == probe]

    def throw_error(self, instance: Instance, task: Task, code: str) -> str | None:
        """Throw a BPMN error at a task; the element id that caught it, or None (uncaught)."""
        event = BpmnEvent(ErrorEventDefinition(code, code), payload={})
        catchers = self.find_error_catchers(task, code)
        if catchers:
            catcher = catchers[0]
            catcher.task_spec.catch(catcher, event)
            catcher.task_spec._update(catcher)
            return str(catcher.task_spec.name)
        waiting = {t.id: t for t in instance.all_tasks(TaskState.WAITING)
                   if isinstance(getattr(t.task_spec, "event_definition", None), ErrorEventDefinition)}
        event.target = task.workflow
        instance.workflow.top_workflow.catch(event)
        instance.workflow.get_events()  # an uncaught error is reported here; we raise an incident instead
        for _task_id, candidate in waiting.items():
            if candidate.state != TaskState.WAITING:
                return str(candidate.task_spec.name)
        return None

