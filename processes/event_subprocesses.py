"""Event sub-processes as in Zeebe: armed with their scope, interrupting or not, ending with it.

SpiffWorkflow starts only event sub-processes with a timer or no start event with their scope; others wait
for the workflow to "catch" an event, which the engine's subscriptions never do. `arm_event_subprocesses`
starts every event sub-process with its scope, so its start event waits like any catch event (a message
subscription, a timer, an error catch). When one fires, `on_event_subprocess_start` applies Zeebe's rule:
an interrupting one cancels everything else in its scope; a non-interrupting message one is armed again
for the next message (a repeating timer re-arms itself).

SpiffWorkflow keeps an event sub-process open while its start event waits (a message, a timer, a repeating
timer), and a process's end join waits for every open task, so a process with an event sub-process never
completed. In Zeebe the scope completes when nothing but such waiting start events is left; their
subscriptions end with it. `ZeebeEndJoin` does that: an event sub-process that has not started any work
does not hold the end, and is cancelled when the scope completes. One that is running (a non-interrupting
one triggered earlier) still holds it until it finishes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import EventSubprocess
from SpiffWorkflow.util.task import TaskIterator, TaskState

__all__ = ["ZeebeEndJoin", "arm_event_subprocesses", "on_event_subprocess_start", "use_zeebe_end_joins"]

_BUSY = TaskState.READY | TaskState.STARTED | TaskState.ERROR


def _idle_event_subprocess(task: Any) -> bool:
    """An event sub-process whose only open work is its start event waiting for its trigger."""
    if not (isinstance(task.task_spec, EventSubprocess) or getattr(task.task_spec, "event_subprocess", False)):
        return False
    sub = task.workflow.top_workflow.subprocesses.get(task.id)
    if sub is None:
        return True
    for inner in sub.tasks.values():
        if inner.has_state(_BUSY):
            return False
        if inner.has_state(TaskState.WAITING) and not isinstance(inner.task_spec, (StartEvent, _EndJoin)):
            return False
    return True


class ZeebeEndJoin(_EndJoin):  # type: ignore[misc]
    """A scope's end: waits for all its work except idle event sub-processes, which it then cancels."""

    def _check_threshold_unstructured(self, my_task: Any) -> bool:
        for task in TaskIterator(my_task.workflow.task_tree, state=TaskState.NOT_FINISHED_MASK,
                                 end_at_spec=self.name):
            if task == my_task or task.task_spec is self:  # another branch's arrival at this join: merged by it
                continue
            if not _idle_event_subprocess(task):
                return False
        return True

    def _update_hook(self, my_task: Any) -> Any:
        ready = super()._update_hook(my_task)
        parent = _event_subprocess_task(my_task)
        if parent is not None:  # a run of an event sub-process ended: its scope's end may be due now
            for task in list(parent.workflow.tasks.values()):
                if isinstance(task.task_spec, ZeebeEndJoin) and task.state == TaskState.WAITING:
                    task.task_spec._update(task)
        return ready

    def _run_hook(self, my_task: Any) -> Any:
        for task in list(my_task.workflow.tasks.values()):
            if not task.has_state(TaskState.FINISHED_MASK) and _idle_event_subprocess(task):
                task.cancel()
        return super()._run_hook(my_task)


def use_zeebe_end_joins(specs: Iterable[Any]) -> None:
    """Give every scope of these process specs Zeebe's end (done once per deployment)."""
    for spec in specs:
        for task_spec in spec.task_specs.values():
            if type(task_spec) is _EndJoin:
                task_spec.__class__ = ZeebeEndJoin


def arm_event_subprocesses(specs: Iterable[Any]) -> None:
    """Start every event sub-process of these specs with its scope (its start event then waits)."""
    for spec in specs:
        start = spec.start
        for name in list(getattr(start, "trigger_specs", [])):
            task_spec = spec.task_specs[name]
            start.connect(task_spec)
            task_spec.connect(spec.end)
        if getattr(start, "trigger_specs", None):
            start.trigger_specs = []


def _event_subprocess_task(start_task: Any) -> Any:
    """The event sub-process task whose subworkflow this start event belongs to (None for other scopes)."""
    parent_id = getattr(start_task.workflow, "parent_task_id", None)
    if parent_id is None:
        return None
    parent = start_task.workflow.top_workflow.get_task_from_id(parent_id)
    if parent is None or not getattr(parent.task_spec, "event_subprocess", False):
        return None
    return parent


def on_event_subprocess_start(start_task: Any) -> None:
    """An event sub-process's start event happened: interrupt its scope, or arm it again for the next event."""
    parent = _event_subprocess_task(start_task)
    if parent is None:
        return
    if getattr(start_task.task_spec, "interrupting", True):
        for task in list(parent.workflow.tasks.values()):  # everything else of the scope, nested work included
            if task is parent or task.has_state(TaskState.FINISHED_MASK) or task.is_descendant_of(parent):
                continue
            task.cancel()
        return
    definition = getattr(start_task.task_spec, "event_definition", None)
    if isinstance(definition, TimerEventDefinition):
        return  # a repeating timer re-arms itself; a single one happens once
    scope_start = parent.workflow.spec.start
    scope_start.trigger_wf(parent.parent, parent.task_spec.name)
