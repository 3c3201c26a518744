"""Zeebe input/output mappings on the elements SpiffWorkflow ignores them for: embedded sub-processes and
error boundary events.

An embedded sub-process's input mappings are local variables of the sub-process (every element inside sees
them, nothing outside does); its output mappings are evaluated over its scope when it completes and set in
the enclosing scope. An error boundary event's output mappings are evaluated over the variables when it
catches (the error's variables included) and set like any output.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.defaults import BoundaryEvent, SubWorkflowTask
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import ErrorEventDefinition

from processes.feel import feel_clock
from processes.runtime import FeelScriptEngine, apply_result, evaluate, local_scope, process_scope, scoped, set_path

__all__ = ["ZeebeBoundaryEvent", "ZeebeSubProcess"]


def _engine(task: Any) -> FeelScriptEngine | None:
    engine = task.workflow.top_workflow.script_engine
    return engine if isinstance(engine, FeelScriptEngine) else None


class ZeebeSubProcess(SubWorkflowTask):  # type: ignore[misc]
    """An embedded sub-process with Zeebe's input and output mappings."""

    def copy_data(self, my_task: Any, subworkflow: Any) -> None:
        engine = _engine(my_task)
        local = dict(local_scope(my_task))
        inputs = getattr(self, "extensions", {}).get("ioMapping", {}).get("inputs", [])
        if engine is not None and inputs:
            visible = dict(scoped(engine.variables, my_task))
            with feel_clock(engine.clock):
                for mapping in inputs:
                    set_path(local, mapping["target"], evaluate(mapping["source"], {**visible, **local}))
        start = subworkflow.get_next_task(spec_name="Start")
        start.set_data(**local)

    def update_data(self, my_task: Any, subworkflow: Any) -> None:
        engine = _engine(my_task)
        outputs = getattr(self, "extensions", {}).get("ioMapping", {}).get("outputs", [])
        last = subworkflow.last_task
        own = local_scope(my_task)
        if last is not None:  # what the elements inside set in the task's own scope (a multi-instance item's
            inner_local = local_scope(last)  # output element) was set in their copies of it: kept here
            for name in own:
                if name in inner_local:
                    own[name] = inner_local[name]
        if engine is not None and outputs:
            variables = process_scope(engine.variables, my_task)  # in a called process: its own
            inner = {**variables, **(local_scope(last) if last is not None else {})}
            updates: dict[str, Any] = {}
            with feel_clock(engine.clock):
                for mapping in outputs:
                    set_path(updates, mapping["target"], evaluate(mapping["source"], inner))
            for name, value in updates.items():
                (own if name in own else variables)[name] = value
        # the sub-process's local variables end with it: the task keeps only its own scope


class ZeebeBoundaryEvent(BoundaryEvent):  # type: ignore[misc]
    """A boundary event; an error one applies its output mappings when it catches."""

    def _run_hook(self, my_task: Any) -> Any:
        extensions = getattr(self, "extensions", {})
        engine = _engine(my_task)
        if (engine is not None and isinstance(self.event_definition, ErrorEventDefinition)
                and extensions.get("ioMapping", {}).get("outputs")):
            with feel_clock(engine.clock):
                apply_result(engine.variables, my_task, extensions, {})
        return super()._run_hook(my_task)
