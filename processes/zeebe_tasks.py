"""Zeebe elements the engine runs itself: FEEL script tasks, business-rule tasks (DMN), pass-through tasks.

Both evaluate in the task's scope (its input mappings over its local and process variables) and hand their
result to `apply_result`, Zeebe's rule for output mappings. An evaluation that fails raises, so the step
fails and becomes the engine's incident, as in Zeebe.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.specs.defaults import ManualTask, NoneTask, ScriptTask, StartEvent

from processes.event_subprocesses import on_event_subprocess_start
from processes.feel import feel_clock
from processes.runtime import FeelScriptEngine, apply_result, evaluate, scoped, set_path

__all__ = ["DecisionTask", "FeelScriptTask", "PassThroughManualTask", "PassThroughTask", "ZeebeStartEvent",
           "task_scope"]


def _engine(task: Any) -> FeelScriptEngine:
    engine = task.workflow.top_workflow.script_engine
    if not isinstance(engine, FeelScriptEngine):
        raise WorkflowTaskException("the embedded engine's FEEL script engine is required", task=task)
    return engine


def task_scope(engine: FeelScriptEngine, task: Any) -> dict[str, Any]:
    """What an element's expression sees: its input mappings over its local and the process variables."""
    visible = dict(scoped(engine.variables, task))
    for mapping in getattr(task.task_spec, "extensions", {}).get("ioMapping", {}).get("inputs", []):
        set_path(visible, mapping["target"], evaluate(mapping["source"], visible))
    return visible


class FeelScriptTask(ScriptTask):  # type: ignore[misc]
    """`zeebe:script expression="=..." resultVariable="x"`: the expression's value becomes `x`."""

    def __init__(self, wf_spec: Any, bpmn_id: str, expression: str, result_variable: str, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, script=expression, **kwargs)
        self.expression = expression
        self.result_variable = result_variable

    def _execute(self, task: Any) -> bool:
        engine = _engine(task)
        try:
            with feel_clock(engine.clock):
                value = evaluate(self.expression, task_scope(engine, task))
        except Exception as exc:
            raise WorkflowTaskException(f"script {self.expression!r} failed: {exc}", task=task, exception=exc) from exc
        apply_result(engine.variables, task, getattr(self, "extensions", {}), {self.result_variable: value})
        return True


class DecisionTask(ScriptTask):  # type: ignore[misc]
    """`zeebe:calledDecision decisionId="d" resultVariable="x"`: the DMN decision's result becomes `x`."""

    def __init__(self, wf_spec: Any, bpmn_id: str, decision_id: str, result_variable: str, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, script=decision_id, **kwargs)
        self.decision_id = decision_id
        self.result_variable = result_variable

    def _execute(self, task: Any) -> bool:
        engine = _engine(task)
        if engine.decisions is None or self.decision_id not in engine.decisions:
            raise WorkflowTaskException(f"business rule task {self.bpmn_id}: no decision with id "
                                        f"{self.decision_id!r} is deployed", task=task)
        try:
            with feel_clock(engine.clock):
                value = engine.decisions.evaluate(self.decision_id, task_scope(engine, task))
        except Exception as exc:
            raise WorkflowTaskException(f"decision {self.decision_id!r} failed: {exc}", task=task,
                                        exception=exc) from exc
        apply_result(engine.variables, task, getattr(self, "extensions", {}), {self.result_variable: value})
        return True


class PassThroughTask(NoneTask):  # type: ignore[misc]
    """`bpmn:task` (undefined task): Zeebe passes through it at once; SpiffWorkflow would wait for a person."""

    def __init__(self, wf_spec: Any, bpmn_id: str, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.manual = False


class PassThroughManualTask(ManualTask):  # type: ignore[misc]
    """`bpmn:manualTask`: done outside any system, so Zeebe passes through it at once."""

    def __init__(self, wf_spec: Any, bpmn_id: str, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.manual = False


class ZeebeStartEvent(StartEvent):  # type: ignore[misc]
    """A start event whose output mappings set variables when it happens (Zeebe's rule); in an event
    sub-process it interrupts its scope or re-arms (processes/event_subprocesses.py)."""

    def _run_hook(self, my_task: Any) -> Any:
        extensions = getattr(self, "extensions", {})
        if extensions.get("ioMapping", {}).get("outputs"):
            engine = _engine(my_task)
            with feel_clock(engine.clock):
                apply_result(engine.variables, my_task, extensions, {})
        on_event_subprocess_start(my_task)
        return super()._run_hook(my_task)
