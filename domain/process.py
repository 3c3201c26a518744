"""ProcessInstance: one run of a BPMN process, stored as the events its engine steps recorded.

Each event carries the `delta` of the step that caused it: the serialized SpiffWorkflow tasks whose state
changed, the tasks removed, the process variables set or unset, and the engine's job bookkeeping. Nothing
stores the whole workflow per step; `fold_instance` folds the deltas back into the state the engine
restores a workflow from. The aggregate itself keeps only what its invariants need (status, ids).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar
from uuid import UUID

from domain.aggregate import Aggregate, applies
from domain.definition import NAMESPACE
from domain.errors import AlreadyExists, InvalidStateChange, ValidationFailed
from domain.events import Context, Event

RUNNING, COMPLETED, CANCELLED = "running", "completed", "cancelled"
RETRIED = "retried"
INCIDENT_KINDS = ("job", "bpmn-error", "element", "message", "stuck")
INCIDENTS = "incidents"  # key of the open incidents in the folded state's `extra` (derived from events, no delta)
TOP = ""  # key of the top-level workflow in a delta (subprocesses are keyed by their parent task id)


def process_instance_id(tenant: str, instance_key: str) -> UUID:
    """The aggregate id of the instance with this key in this tenant."""
    return uuid.uuid5(NAMESPACE, f"process-instance:{tenant}:{instance_key}")


class ProcessEvent(Event):
    """Base of process-instance events: the case it runs for (if any) and what the step changed."""

    abstract: ClassVar[bool] = True

    case_id: str | None = None
    delta: dict[str, Any] = field(default_factory=dict)


class ProcessStarted(ProcessEvent):
    """An instance of a deployed process was started with these variables."""

    process_id: str
    process_name: str
    instance_key: str
    definition_hash: str
    variables: dict[str, Any]


class ProcessAdvanced(ProcessEvent):
    """The engine moved the instance on (a job or user task completed, a compensation handler finished)."""

    cause: str
    element_id: str | None = None


class JobFailed(ProcessEvent):
    """A service task's job failed for a technical reason; it is retried at `retry_at` while retries remain."""

    element_id: str
    job_type: str
    message: str
    retries_left: int
    retry_at: str | None = None


class IncidentRaised(ProcessEvent):
    """The instance cannot go on by itself at this element until an operator retries or cancels (docs/processes.md).

    `kind`: job (retries exhausted), bpmn-error (uncaught), element (a gateway with no matching or no outgoing
    flow, an expression failing), message (no correlation key value), stuck (nothing left that could move it).
    `ref` names what a retry re-runs: the job's ref, or the SpiffWorkflow task id of the failing element.
    """

    element_id: str
    message: str
    incident_id: str = ""  # "" in events stored before incidents had ids: the event id stands for it
    kind: str = "job"
    ref: str = ""
    job_type: str = ""
    process_id: str = ""


class IncidentResolved(ProcessEvent):
    """An operator resolved an incident: retried (after fixing data) or cancelled the instance."""

    incident_id: str
    element_id: str
    resolution: str  # retried | cancelled
    note: str = ""


class ProcessVariablesModified(ProcessEvent):
    """An operator set process variables (their values are in the delta)."""

    names: list[str]


class BpmnErrorThrown(ProcessEvent):
    """A BPMN error was thrown at an element; `caught_by` names the catching event (None: uncaught)."""

    element_id: str
    code: str
    message: str
    caught_by: str | None = None


class TimerFired(ProcessEvent):
    """A timer event (intermediate or boundary) fired."""

    element_id: str
    element_name: str = ""


class MessageCorrelated(ProcessEvent):
    """A message was correlated to a waiting message event of the instance."""

    element_id: str
    name: str
    correlation_key: str


class CompensationStarted(ProcessEvent):
    """A compensation event started undoing completed activities (most recent first)."""

    element_id: str
    activities: list[str]


class ProcessCompleted(ProcessEvent):
    """The instance reached its end."""

    process_id: str = ""


class ProcessCancelled(ProcessEvent):
    """The instance was cancelled; its open work was withdrawn."""

    reason: str


STEP_EVENTS: dict[str, type[ProcessEvent]] = {
    cls.__name__: cls
    for cls in (ProcessStarted, ProcessAdvanced, JobFailed, IncidentRaised, BpmnErrorThrown, TimerFired,
                MessageCorrelated, CompensationStarted, ProcessCompleted, ProcessCancelled)
}


class IncidentNotOpen(InvalidStateChange):
    """The incident is not open on this instance (resolved already, or never raised here)."""

    code = "incident-not-open"


def incident_key(event: IncidentRaised) -> str:
    """The incident's id (the raising event's id for incidents stored before they had their own)."""
    return event.incident_id or str(event.event_id)


class ProcessInstance(Aggregate):
    """A process instance: running until completed or cancelled; every step is an event with its delta."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.status = ""
        self.process_id = ""
        self.instance_key = ""
        self.case_id: str | None = None
        self.incidents: dict[str, str] = {}  # open incident id -> element id

    def record_step(self, ctx: Context, entries: list[tuple[str, dict[str, Any]]]) -> None:
        """Record one engine step: event type names with their payloads (a start must come first, alone)."""
        if not entries:
            raise ValidationFailed("a process step records at least one event")
        for index, (type_name, payload) in enumerate(entries):
            event_type = STEP_EVENTS.get(type_name)
            if event_type is None:
                raise ValidationFailed(f"events[{index}].type {type_name!r} is not a process-instance event")
            if event_type is ProcessStarted and self.status:
                raise AlreadyExists(f"process instance {self.instance_key or payload.get('instance_key')!r} "
                                    "was already started")
            if event_type is not ProcessStarted and self.status != RUNNING:
                status = self.status or "not started"
                raise InvalidStateChange(f"process instance {self.instance_key!r} is not running ({status})")
            try:
                self.record(ctx, event_type, **{"case_id": self.case_id, **payload})
            except TypeError as exc:
                raise ValidationFailed(f"events[{index}] does not fit {type_name}: {exc}") from None

    def _running(self) -> None:
        if self.status != RUNNING:
            raise InvalidStateChange(f"process instance {self.instance_key!r} is not running "
                                     f"({self.status or 'not started'})")

    def _open_incident(self, incident_id: str) -> str:
        self._running()
        element = self.incidents.get(incident_id)
        if element is None:
            raise IncidentNotOpen(f"incident {incident_id} is not open on process instance {self.instance_key!r}")
        return element

    def resolve_incident(self, ctx: Context, incident_id: str, note: str,
                         step: list[tuple[str, dict[str, Any]]]) -> None:
        """An operator retries an open incident; `step` is what the engine did on the retry (its delta)."""
        element = self._open_incident(incident_id)
        self.record(ctx, IncidentResolved, case_id=self.case_id, incident_id=incident_id, element_id=element,
                    resolution=RETRIED, note=note)
        self.record_step(ctx, step)

    def cancel_by_operator(self, ctx: Context, reason: str, step: list[tuple[str, dict[str, Any]]],
                           incident_id: str | None = None) -> None:
        """An operator cancels the instance (naming an open incident, or not); its open incidents end with it."""
        if incident_id is not None:
            self._open_incident(incident_id)
        self._running()
        if not any(name == ProcessCancelled.__name__ for name, _ in step):
            raise ValidationFailed("an operator's cancellation records ProcessCancelled")
        for open_id, element in list(self.incidents.items()):
            self.record(ctx, IncidentResolved, case_id=self.case_id, incident_id=open_id, element_id=element,
                        resolution=CANCELLED, note=reason)
        self.record_step(ctx, step)

    def modify_variables(self, ctx: Context, names: list[str], step: list[tuple[str, dict[str, Any]]]) -> None:
        """An operator sets variables of a running instance; `step` carries their values in its delta."""
        self._running()
        if not names:
            raise ValidationFailed("name at least one variable to set")
        self.record(ctx, ProcessVariablesModified, case_id=self.case_id, names=sorted(names))
        self.record_step(ctx, step)

    @applies(ProcessStarted)
    def _started(self, e: ProcessStarted) -> None:
        self.status, self.process_id, self.instance_key, self.case_id = RUNNING, e.process_id, e.instance_key, e.case_id

    @applies(ProcessAdvanced)
    def _advanced(self, e: ProcessAdvanced) -> None:
        pass

    @applies(JobFailed)
    def _job_failed(self, e: JobFailed) -> None:
        pass

    @applies(IncidentRaised)
    def _incident(self, e: IncidentRaised) -> None:
        self.incidents[incident_key(e)] = e.element_id

    @applies(IncidentResolved)
    def _incident_resolved(self, e: IncidentResolved) -> None:
        self.incidents.pop(e.incident_id, None)

    @applies(ProcessVariablesModified)
    def _variables_modified(self, e: ProcessVariablesModified) -> None:
        pass

    @applies(BpmnErrorThrown)
    def _error(self, e: BpmnErrorThrown) -> None:
        pass

    @applies(TimerFired)
    def _timer(self, e: TimerFired) -> None:
        pass

    @applies(MessageCorrelated)
    def _message(self, e: MessageCorrelated) -> None:
        pass

    @applies(CompensationStarted)
    def _compensation(self, e: CompensationStarted) -> None:
        pass

    @applies(ProcessCompleted)
    def _completed(self, e: ProcessCompleted) -> None:
        self.status = COMPLETED

    @applies(ProcessCancelled)
    def _cancelled(self, e: ProcessCancelled) -> None:
        self.status = CANCELLED


# ------------------------------------------------------------------------------------------ folded state

@dataclass
class WorkflowState:
    """One (sub)workflow's serialized tasks, in creation order, and its own attributes."""

    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] | None = None  # a called process's own variables (None: not a called process)


@dataclass
class InstanceState:
    """What the engine needs to rebuild an instance: the fold of all its events' deltas."""

    instance_key: str = ""
    process_id: str = ""
    definition_hash: str = ""
    case_id: str | None = None
    tenant: str = ""
    status: str = ""
    version: int = 0
    variables: dict[str, Any] = field(default_factory=dict)
    workflows: dict[str, WorkflowState] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def apply_delta(state: InstanceState, delta: dict[str, Any]) -> None:
    """Fold one step's delta into the state (the inverse of what the engine's diff produced)."""
    for key in delta.get("dropped", ()):
        state.workflows.pop(key, None)
    for key, change in delta.get("w", {}).items():
        wf = state.workflows.setdefault(key, WorkflowState())
        for task_id in change.get("removed", ()):
            wf.tasks.pop(task_id, None)
        wf.tasks.update(change.get("tasks", {}))
        wf.attrs.update(change.get("attrs", {}))
        if "vars" in change or "unset" in change:
            wf.variables = {**(wf.variables or {}), **change.get("vars", {})}
            for name in change.get("unset", ()):
                wf.variables.pop(name, None)
    state.variables.update(delta.get("vars", {}))
    for name in delta.get("unset", ()):
        state.variables.pop(name, None)
    for task_id, job in delta.get("jobs", {}).items():
        if job is None:
            state.jobs.pop(task_id, None)
        else:
            state.jobs[task_id] = job
    state.extra.update(delta.get("extra", {}))


def fold_instance(events: list[Event]) -> InstanceState:
    """Fold an instance's stored events into the state its workflow is restored from."""
    state = InstanceState()
    for event in events:
        if not isinstance(event, ProcessEvent):
            continue
        if isinstance(event, ProcessStarted):
            state.instance_key, state.process_id = event.instance_key, event.process_id
            state.definition_hash, state.status = event.definition_hash, RUNNING
            state.variables = dict(event.variables)
        elif isinstance(event, ProcessCompleted):
            state.status = COMPLETED
        elif isinstance(event, ProcessCancelled):
            state.status = CANCELLED
        elif isinstance(event, IncidentRaised):  # open incidents: what the engine may not re-run by itself
            state.extra.setdefault(INCIDENTS, {})[incident_key(event)] = {
                "kind": event.kind, "ref": event.ref, "element_id": event.element_id}
        elif isinstance(event, IncidentResolved):
            state.extra.get(INCIDENTS, {}).pop(event.incident_id, None)
        state.case_id = event.case_id
        state.tenant = event.tenant
        state.version = event.version
        apply_delta(state, event.delta)
    return state
