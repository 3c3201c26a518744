"""BPMN signals as Zeebe broadcasts them: every subscription of the tenant waiting for the name gets the signal.

A waiting signal catch (intermediate catch, boundary event, event sub-process start, a top-level signal start, an
event-based gateway's signal) is a subscription in the engine's wait index under `(tenant, SIGNAL, name)`
(processes/catch_events.py), so a broadcast finds the instances waiting for a name without looking at any other
instance. `broadcast` first starts a new instance of each process (the tenant's newest versions, its own before the
shipped ones) whose start event is that signal's, then delivers the signal, with its variables, to every waiting
catch of the name, once each: an interrupting boundary or event sub-process cancels what it interrupts, a
non-interrupting one runs alongside and is armed again for the next signal (a boundary while its activity runs). A
signal intermediate throw or end event (`BroadcastSignal`, swapped in at parse time) broadcasts after its step is
saved, with the variables of its input mappings, to every subscription of the tenant, the throwing instance's own
included (Zeebe's rule; not caught inside the instance first).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import ThrowingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.util.task import TaskState

from processes.starts import StartRequest

if TYPE_CHECKING:
    from processes.engine import EmbeddedEngine
    from processes.instance import Instance
    from processes.model import ProcessModel

__all__ = ["SIGNAL", "BroadcastSignal", "SignalOutcome", "broadcast", "broadcast_throws", "signal_names",
           "thrown_signal_effects"]

# The message-name slot of a signal's subscription: XML cannot hold NUL and the API's message names are checked, so
# no message is ever named so and signals and messages share the wait index without meeting.
SIGNAL: Final = "\x00signal"
_THROWN: Final = "casestream_thrown_signals"  # on the top workflow: (signal name, element id) thrown this step


class BroadcastSignal(SignalEventDefinition):  # type: ignore[misc]
    """A signal throw (intermediate or end event): noted on the instance, broadcast by the engine once the step is
    saved (SpiffWorkflow's own throw would be caught inside the instance only)."""

    def throw(self, my_task: Any) -> None:
        top = my_task.workflow.top_workflow
        top.__dict__.setdefault(_THROWN, []).append((self.name, my_task.task_spec.name))


def broadcast_throws(specs: Iterable[Any]) -> None:
    """Make the signal throw and end events of these specs broadcast (done once per deployment, at parse)."""
    for spec in specs:
        for task_spec in spec.task_specs.values():
            definition = getattr(task_spec, "event_definition", None)
            if (isinstance(task_spec, ThrowingEvent) and isinstance(definition, SignalEventDefinition)
                    and not isinstance(definition, BroadcastSignal)):
                task_spec.event_definition = BroadcastSignal(definition.name)


def signal_names(definition: Any) -> list[str]:
    """The signal names a catch event's definition (or an event-based gateway's) waits for."""
    found = definition.event_definitions if isinstance(definition, MultipleEventDefinition) else [definition]
    return [d.name for d in found if isinstance(d, SignalEventDefinition) and not isinstance(d, BroadcastSignal)]


@functools.lru_cache(maxsize=512)
def _start_signals(content_hash: str, spec: Any) -> frozenset[str]:
    """The signal names of a process's top-level start events (read once per deployed version)."""
    del content_hash
    return frozenset(name for task_spec in spec.task_specs.values()
                     if isinstance(task_spec, StartEvent) and task_spec in spec.start.outputs
                     for name in signal_names(getattr(task_spec, "event_definition", None)))


@dataclass
class SignalOutcome:
    """What a broadcast did: the instances it started and those whose waiting catches got it."""

    started: list[str] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)


def _starting(engine: EmbeddedEngine, tenant: str, name: str) -> list[ProcessModel]:
    """The tenant's newest process versions (its own, else the shipped one) with a signal start of this name."""
    with engine._lock:
        models = dict(engine._models)
        models.update({pid: m for (owner, pid), m in engine._tenant_models.items() if owner == tenant})
    return [m for m in models.values() if name in _start_signals(m.content_hash, m.deployed.spec)]


def broadcast(engine: EmbeddedEngine, tenant: str, name: str, variables: Mapping[str, Any] | None = None,
              ) -> SignalOutcome:
    """Broadcast a signal in a tenant: start the processes it starts, then deliver it to every waiting catch."""
    values = dict(variables or {})
    outcome = SignalOutcome()
    starts = [StartRequest(m.process_id, tenant, values, None, None) for m in _starting(engine, tenant, name)]
    for started in engine.start_many(starts) if starts else []:
        if isinstance(started, Exception):
            raise started
        outcome.started.append(started)
    effects: list[Callable[[], None]] = []
    with engine._lock:
        engine._index_all(effects)  # an instance not indexed yet after a restart may be waiting
        for iid in engine._index.subscribers((tenant, SIGNAL, name)):
            instance = engine._instance(iid, effects)
            if instance is not None and _deliver(engine, instance, name, values, effects):
                outcome.delivered.append(instance.key)
    engine._run_effects(effects)
    return outcome


def _deliver(engine: EmbeddedEngine, instance: Instance, name: str, variables: dict[str, Any],
             effects: list[Callable[[], None]]) -> bool:
    """Deliver to each catch of the instance waiting now (not to one armed again by this very signal)."""
    waiting = [task.id for task in instance.all_tasks(TaskState.WAITING)
               if name in signal_names(getattr(task.task_spec, "event_definition", None))]
    caught = False
    for task_id in waiting:
        task = instance.task(task_id)
        if task is None or task.state != TaskState.WAITING:
            continue  # an interrupting catch delivered before ended it
        spec = task.task_spec
        spec.catch(task, BpmnEvent(SignalEventDefinition(name), payload={}))
        instance.merge_result(spec.name, variables, task=task)
        engine._advance(instance, functools.partial(_fire, task))
        engine._commit(instance, [("ProcessAdvanced", {"cause": f"signal {name}"[:200],
                                                       "element_id": spec.name})], effects)
        caught = True
        if instance.id not in engine._index.open:
            break  # the signal ended the instance
    return caught


def _fire(task: Any) -> None:
    """The caught signal moves its catch on; a non-interrupting boundary is armed again while its activity runs
    (Zeebe fires one on every signal; SpiffWorkflow would end it after the first)."""
    spec = task.task_spec
    spec._update(task)
    split = task.parent
    if not isinstance(spec, BoundaryEvent) or spec.cancel_activity or split is None:
        return
    main = next((t for t in split.children if not isinstance(t.task_spec, BoundaryEvent)), None)
    if main is not None and not main.has_state(TaskState.FINISHED_MASK):
        again = split._add_child(spec, TaskState.FUTURE)
        spec._predict(again, mask=TaskState.DEFINITE_MASK)  # its path, as predicted when its activity started
        again._set_state(TaskState.WAITING)


def thrown_signal_effects(engine: EmbeddedEngine, instance: Instance) -> list[Callable[[], None]]:
    """The broadcasts of the signals the instance threw in the step just saved (run after the engine's lock)."""
    thrown = instance.workflow.__dict__.pop(_THROWN, None)
    return [_Broadcast(engine, instance.tenant, name, instance.inputs(element)) for name, element in thrown or ()]


@dataclass(frozen=True)
class _Broadcast:
    """An effect: broadcast one thrown signal."""

    engine: EmbeddedEngine
    tenant: str
    name: str
    variables: dict[str, Any]

    def __call__(self) -> None:
        broadcast(self.engine, self.tenant, self.name, self.variables)
