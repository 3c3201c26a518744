"""SpiffWorkflow glue for Zeebe BPMN: FEEL as the script language, timers on the engine's clock, variables.

Process variables live in one dict per instance (Zeebe's model: the process scope), not in SpiffWorkflow's
per-task data, so each task carries no data copy and a step's delta stays small. `FeelScriptEngine`
evaluates `=`-expressions with processes.feel over those variables; any other text is a literal (a Zeebe
timer `PT48H`, a header value). Timer event definitions are swapped for subclasses that read "now" from the
instance's script engine, so `fire_due_timers(now)` decides what is due, not the wall clock alone.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)

from processes.feel import Expression, compile_feel, feel_clock

Clock = Callable[[], datetime]
# SpiffWorkflow logs every task state change at INFO (a formatted record per change, dozens per instance): where INFO
# is on (`casestream process-worker`) that was a large share of the engine's CPU; the engine's own logs say what matters
logging.getLogger("spiff").setLevel(logging.WARNING)


@functools.lru_cache(maxsize=4096)
def feel(text: str) -> Expression:
    """A compiled FEEL expression (cached: the same texts recur on every instance)."""
    return compile_feel(text)


def evaluate(text: str, variables: Mapping[str, Any]) -> Any:
    """A Zeebe value: FEEL when it starts with '=', otherwise the text itself."""
    stripped = text.strip()
    if stripped.startswith("="):
        return feel(stripped).evaluate(variables)
    return text


def set_path(target: dict[str, Any], path: str, value: Any) -> None:
    """Set `a.b.c` in a nested dict, creating (or replacing non-dict) intermediate contexts."""
    *parents, last = path.split(".")
    node = target
    for name in parents:
        child = node.get(name)
        if not isinstance(child, dict):
            child = {}
            node[name] = child
        node = child
    node[last] = value


def local_scope(task: Any) -> dict[str, Any]:
    """A task's local variables (Zeebe's inner scopes: a multi-instance element, a mapped sub-process).

    The process scope lives in the instance's dict; SpiffWorkflow's per-task data stays empty except inside
    such scopes, where it holds their local variables (Spiff copies it down to the tasks within them).
    """
    data = getattr(task, "data", None)
    return data if isinstance(data, dict) else {}


def process_scope(variables: Any, task: Any) -> Any:
    """The process scope of a task: the own variables of the called process it runs in (a call activity's child,
    processes/call_activity.py), else `variables`, the instance's."""
    workflow = getattr(task, "workflow", None)
    while workflow is not None and workflow.parent_task_id is not None:
        own = getattr(workflow, "variables", None)
        if own is not None:
            return own
        workflow = workflow.parent_workflow
    return variables


def scoped(variables: Mapping[str, Any], task: Any) -> Mapping[str, Any]:
    """The variables visible at a task: its local scope over its process scope (see process_scope)."""
    variables = process_scope(variables, task)
    local = local_scope(task)
    return {**variables, **local} if local else variables


def apply_result(variables: dict[str, Any], task: Any, extensions: Mapping[str, Any],
                 result: Mapping[str, Any]) -> None:
    """Zeebe's rule for an element's result: with output mappings only their targets are set, else all of it.

    A target that is a local variable of the task's scope is updated there; any other goes to the process scope
    (of the called process the task runs in, if any).
    """
    variables = process_scope(variables, task)
    outputs = extensions.get("ioMapping", {}).get("outputs", [])
    local = local_scope(task)
    if not outputs:
        updates = dict(result)
    else:
        visible = dict(scoped(variables, task))
        for mapping in extensions.get("ioMapping", {}).get("inputs", []):
            set_path(visible, mapping["target"], evaluate(mapping["source"], visible))
        visible.update(result)
        updates = {}
        for mapping in outputs:
            set_path(updates, mapping["target"], evaluate(mapping["source"], visible))
    for name, value in updates.items():
        (local if name in local else variables)[name] = value


class FeelScriptEngine(PythonScriptEngine):  # type: ignore[misc]
    """One per instance: evaluates FEEL over the instance's variables; Python scripts are refused."""

    def __init__(self, variables: dict[str, Any], clock: Clock, decisions: Any = None) -> None:
        super().__init__()
        self.variables = variables
        self.clock = clock
        self.decisions = decisions  # processes.dmn.DecisionRegistry of the engine (business-rule tasks)

    def evaluate(self, task: Any, expression: str, external_context: Any = None) -> Any:
        try:
            with feel_clock(self.clock):  # now()/today() on the instance's clock, like its timers
                return evaluate(expression, scoped(self.variables, task))
        except Exception as exc:
            raise WorkflowTaskException(f"cannot evaluate {expression!r}: {exc}", task=task, exception=exc) from exc

    def execute(self, task: Any, script: str, external_context: Any = None) -> Any:
        raise WorkflowTaskException("a script task runs a FEEL expression (zeebe:script expression=\"=...\"); "
                                    "other script languages are not supported", task=task)


def _now(my_task: Any) -> datetime:
    engine = my_task.workflow.top_workflow.script_engine
    return engine.clock() if isinstance(engine, FeelScriptEngine) else datetime.now(UTC)


class ClockDateTimer(TimeDateEventDefinition):  # type: ignore[misc]
    """timeDate on the instance's clock."""

    def has_fired(self, my_task: Any) -> bool:
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            event_value = str(my_task.workflow.script_engine.evaluate(my_task, self.expression))
            event_value = TimerEventDefinition.parse_time_or_duration(event_value).isoformat()
            my_task._set_internal_data(event_value=event_value)
        if TimerEventDefinition.get_datetime(event_value) <= _now(my_task):
            my_task._set_internal_data(event_fired=True)
        return bool(my_task._get_internal_data("event_fired", False))


class ClockDurationTimer(DurationTimerEventDefinition):  # type: ignore[misc]
    """timeDuration on the instance's clock: due = when the timer was entered + the duration."""

    def has_fired(self, my_task: Any) -> bool:
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            text = str(my_task.workflow.script_engine.evaluate(my_task, self.expression))
            start = _now(my_task)
            due = start + TimerEventDefinition.get_timedelta_from_start(
                TimerEventDefinition.parse_iso_duration(text), start)
            event_value = due.isoformat()
            my_task._set_internal_data(event_value=event_value)
        if TimerEventDefinition.get_datetime(event_value) <= _now(my_task):
            my_task._set_internal_data(event_fired=True)
        return bool(my_task._get_internal_data("event_fired", False))


class ClockCycleTimer(CycleTimerEventDefinition):  # type: ignore[misc]
    """timeCycle on the instance's clock (`R3/PT1H`, `R/P1D`, with an optional start)."""

    def cycle_complete(self, my_task: Any) -> bool:
        now = _now(my_task)
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            text = str(my_task.workflow.script_engine.evaluate(my_task, self.expression))
            cycles, start, duration = TimerEventDefinition.parse_iso_recurring_interval(text)
            if text.count("/") == 1:
                start = now + duration  # "R3/PT1H": the first occurrence is one interval after entering
            event_value = {"cycles": cycles, "next": start.isoformat(), "duration": duration.total_seconds()}
        ready = False
        if event_value["cycles"] != 0:
            due = datetime.fromisoformat(event_value["next"])
            if due <= now:
                event_value = {**event_value, "next": (due + timedelta(seconds=event_value["duration"])).isoformat(),
                               "cycles": event_value["cycles"] - 1}
                ready = True
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
            return False
        my_task._set_internal_data(event_value=event_value)
        return ready


_TIMERS: dict[type[Any], type[Any]] = {
    TimeDateEventDefinition: ClockDateTimer,
    DurationTimerEventDefinition: ClockDurationTimer,
    CycleTimerEventDefinition: ClockCycleTimer,
}


def use_engine_clock(specs: list[Any]) -> None:
    """Make every timer of these process specs read the instance's clock (done once per deployment)."""
    for spec in specs:
        for task_spec in spec.task_specs.values():
            definition = getattr(task_spec, "event_definition", None)
            replacement = _TIMERS.get(type(definition))
            if replacement is not None:
                definition.__class__ = replacement
            for inner in getattr(definition, "event_definitions", None) or ():
                if type(inner) in _TIMERS:
                    inner.__class__ = _TIMERS[type(inner)]


def timer_due(task: Any) -> datetime | None:
    """When a waiting timer task is next due (None if it has no schedule yet)."""
    value = task.internal_data.get("event_value")
    if isinstance(value, dict):
        return datetime.fromisoformat(value["next"]) if value.get("cycles", 0) != 0 else None
    if isinstance(value, str):
        return TimerEventDefinition.get_datetime(value)  # type: ignore[no-any-return]
    return None


def register_clock_timers(registry: Any) -> None:
    """Let SpiffWorkflow's serializer store our clock timers as the timers they replace (an event-based gateway
    keeps the timer event it caught in its task data until it moves on)."""
    for original, replacement in _TIMERS.items():
        registry.typenames[replacement] = registry.typenames[original]
