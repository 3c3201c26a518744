"""Zeebe multi-instance (`zeebe:loopCharacteristics`) on SpiffWorkflow's multi-instance tasks.

One inner instance per item of `inputCollection` (a FEEL expression), in parallel or one after another.
Each inner instance has a local scope (Spiff's task data, see processes.runtime.local_scope) holding
`inputElement`, `loopCounter` (1-based) and the variable `outputElement` reads (null at first, as Zeebe creates
it), so the element's jobs, user tasks, conditions and a sub-process's inner elements see its own item, and a
result of that name (a job's, a user task's, a called process's) stays its own. When an inner instance
completes, `outputElement` is evaluated in its scope and kept at the item's index; when all are done (or
`completionCondition` holds), `outputCollection` is set. Inner instances merge nothing else into the
multi-instance task, so nothing leaks out of the scope.
"""

from __future__ import annotations

import re
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowDataException
from SpiffWorkflow.bpmn.specs.defaults import ParallelMultiInstanceTask, SequentialMultiInstanceTask
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.util.task import TaskState

from processes.runtime import FeelScriptEngine, local_scope, process_scope

__all__ = ["FeelCollection", "ZeebeParallelMultiInstance", "ZeebeSequentialMultiInstance"]

OUTPUT = "mi_output"


class FeelCollection:
    """The `inputCollection` of a multi-instance element, read like Spiff's data references."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.bpmn_id = expression

    def exists(self, my_task: Any) -> bool:
        return True

    def get(self, my_task: Any) -> list[Any]:
        value = my_task.workflow.top_workflow.script_engine.evaluate(my_task, self.expression)
        if not isinstance(value, list):
            raise WorkflowDataException(f"multi-instance inputCollection {self.expression!r} is not a list: "
                                        f"{value!r}", my_task)
        return value


_VARIABLE = re.compile(r"=\s*([A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z_][A-Za-z0-9_.]*)?\s*")


def _output_variable(output_element: str | None) -> str | None:
    """The variable an `outputElement` reads, when it is one (`=result`, `=result.total`): Zeebe creates it as a
    local variable of each inner instance (null), so what an instance sets there is its own."""
    found = _VARIABLE.fullmatch(output_element) if output_element else None
    return found.group(1) if found else None


class _ZeebeLoop:
    """Zeebe's input/output element handling shared by the parallel and the sequential variant."""

    input_element: str | None
    output_element: str | None
    output_collection: str | None
    data_input: FeelCollection
    condition: str | None

    def create_child(self, my_task: Any, item: Any, key_or_index: Any = None) -> None:
        task_spec = my_task.workflow.spec.task_specs[self.task_spec]  # type: ignore[attr-defined]
        if not task_spec.completed_event.is_connected(self.merge_child):
            task_spec.completed_event.connect(self.merge_child)
        child = my_task._add_child(task_spec, TaskState.WAITING)
        child.triggered = True
        child.data = dict(local_scope(my_task))
        if self.input_element:
            child.data[self.input_element] = item
        index = int(key_or_index) if key_or_index is not None else 0
        child.data["loopCounter"] = index + 1
        output = _output_variable(self.output_element)
        if output is not None and output != self.input_element:
            child.data[output] = None  # Zeebe's rule: a result of that name stays in this instance, not shared
        child.internal_data["key_or_index"] = index
        child.task_spec._update(child)

    def merge_child(self, workflow: Any, child: Any) -> None:
        my_task = child.parent
        if self.output_element:
            value = my_task.workflow.top_workflow.script_engine.evaluate(child, self.output_element)
            outputs = list(my_task.internal_data.get(OUTPUT) or [])
            index = int(child.internal_data.get("key_or_index", len(outputs)))
            outputs.extend([None] * (index + 1 - len(outputs)))
            outputs[index] = value
            my_task.internal_data[OUTPUT] = outputs
        my_task.internal_data["merged"].append(str(child.id))
        self.child_done(my_task, child)

    def child_done(self, my_task: Any, child: Any) -> None:
        raise NotImplementedError

    def condition_holds(self, my_task: Any, child: Any) -> bool:
        if not self.condition:
            return False
        return my_task.workflow.top_workflow.script_engine.evaluate(child, self.condition) is True

    def _run_hook(self, my_task: Any) -> bool:
        if self.output_collection:
            count = int(my_task.internal_data.get("mi_count", 0))
            outputs = list(my_task.internal_data.get(OUTPUT) or [])
            outputs.extend([None] * (count - len(outputs)))
            engine = my_task.workflow.top_workflow.script_engine
            local = local_scope(my_task)
            target = local if self.output_collection in local else (
                process_scope(engine.variables, my_task) if isinstance(engine, FeelScriptEngine) else my_task.data)
            target[self.output_collection] = outputs
        return True


class ZeebeParallelMultiInstance(_ZeebeLoop, ParallelMultiInstanceTask):  # type: ignore[misc]
    """All inner instances at once."""

    def __init__(self, wf_spec: Any, bpmn_id: str, task_spec: str, collection: str, input_element: str | None,
                 output_collection: str | None, output_element: str | None, condition: str | None,
                 **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, task_spec, data_input=FeelCollection(collection), condition=condition,
                         **kwargs)
        self.input_element, self.output_element = input_element, output_element
        self.output_collection = output_collection

    def create_children(self, my_task: Any) -> None:
        items = self.data_input.get(my_task)
        my_task.internal_data["mi_count"] = len(items)
        for index, item in enumerate(items):
            self.create_child(my_task, item, index)

    def child_done(self, my_task: Any, child: Any) -> None:
        if self.condition_holds(my_task, child):
            for other in self._instances(my_task):
                if not other.has_state(TaskState.FINISHED_MASK):
                    other.cancel()
            my_task._set_state(TaskState.READY)
        elif self.children_complete(my_task):
            my_task._set_state(TaskState.READY)


class ZeebeSequentialMultiInstance(_ZeebeLoop, SequentialMultiInstanceTask):  # type: ignore[misc]
    """One inner instance after another, in the collection's order."""

    def __init__(self, wf_spec: Any, bpmn_id: str, task_spec: str, collection: str, input_element: str | None,
                 output_collection: str | None, output_element: str | None, condition: str | None,
                 **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, task_spec, data_input=FeelCollection(collection), condition=condition,
                         **kwargs)
        self.input_element, self.output_element = input_element, output_element
        self.output_collection = output_collection

    def _update_hook(self, my_task: Any) -> bool | None:
        MultiInstanceTask._update_hook(self, my_task)  # inherit the scope's data (Spiff's sequential variant reads
        items = self.data_input.get(my_task)  # its collection from task data, so it is skipped)
        my_task.internal_data["mi_count"] = len(items)
        my_task.internal_data["mi_items"] = items  # the collection as it was when the element was entered
        my_task.internal_data["remaining"] = list(range(len(items)))
        my_task.internal_data["merged"] = []
        if not items:
            return True
        self.add_next_child(my_task)
        my_task._set_state(TaskState.STARTED)
        return None

    def add_next_child(self, my_task: Any) -> None:
        remaining = list(my_task.internal_data.get("remaining") or [])
        if remaining:
            index = remaining.pop(0)
            my_task.internal_data["remaining"] = remaining
            self.create_child(my_task, my_task.internal_data["mi_items"][index], index)

    def child_done(self, my_task: Any, child: Any) -> None:
        if not my_task.internal_data.get("remaining") or self.condition_holds(my_task, child):
            my_task._set_state(TaskState.READY)
        else:
            self.add_next_child(my_task)
