"""`new_workflow` copies a spec's predicted start tree: the same tasks, states and shape SpiffWorkflow builds, with
task ids of its own per instance (#13)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from processes.jobs import known_task_types
from processes.model import prepare_model
from processes.runtime import FeelScriptEngine
from processes.state import new_workflow

SHIPPED = sorted((Path(__file__).resolve().parents[2] / "processes" / "definitions").glob("*.bpmn"))


def shape(workflow: BpmnWorkflow) -> list[tuple[Any, ...]]:
    """The tree from its root, task by task: spec, state, triggered, data, and the children's positions."""
    order = list(workflow.tasks)
    return [(t.task_spec.name, t._state, t.triggered, t.internal_data, t.data,
             order.index(t._parent) if t._parent is not None else None, [order.index(c) for c in t._children])
            for t in workflow.tasks.values()] + [order.index(workflow.task_tree.id), workflow.data]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_a_new_workflow_is_the_predicted_start_tree_with_its_own_ids(path: Path) -> None:
    model = prepare_model(path.read_bytes(), known_task_types(), path.name)
    spec, subs = model.deployed.spec, model.deployed.subprocess_specs
    engine = FeelScriptEngine({}, lambda: None)  # type: ignore[arg-type, return-value]
    built = BpmnWorkflow(spec, subs, script_engine=engine)
    first, second = new_workflow(spec, subs, engine), new_workflow(spec, subs, engine)
    assert shape(first) == shape(built) == shape(second)
    assert not set(first.tasks) & set(second.tasks)  # every instance's tasks have ids of their own
    assert first.script_engine is engine
    assert all(task.workflow is first for task in first.tasks.values())
    for task in first.tasks.values():  # what one instance does to its tasks is its own
        task.internal_data["touched"] = True
        task.data["touched"] = True
    assert shape(new_workflow(spec, subs, engine)) == shape(built)
