"""One live process instance in the embedded engine: its workflow, variables and persistence bookkeeping."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task

from processes.model import ProcessModel
from processes.runtime import FeelScriptEngine, evaluate, local_scope, process_scope, scoped, set_path
from processes.state import WorkflowTracker, ready_tasks


def _copy(value: dict[str, Any]) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(value, default=str))  # type: ignore[no-any-return]


@dataclass
class Instance:
    """A running instance; everything here is rebuilt from its events by `recover()`."""

    id: UUID
    key: str
    tenant: str
    case_id: str | None
    model: ProcessModel
    variables: dict[str, Any]
    script: FeelScriptEngine
    workflow: BpmnWorkflow = field(init=False)
    version: int = 0
    tracker: WorkflowTracker = field(default_factory=WorkflowTracker)
    saved_variables: dict[str, Any] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # job ref -> retries / retry_at / incident
    job_changes: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # compensation progress, announced user tasks
    extra_changes: dict[str, Any] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)
    pending: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # events found while advancing

    # ------------------------------------------------------------------------------------- variables

    def inputs(self, element_id: str, scope: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The element's input mappings evaluated over the process variables, or over `scope` (what its task
        sees: runtime.scoped) when given."""
        visible = self.variables if scope is None else scope
        local: dict[str, Any] = {}
        for mapping in self.model.extensions.get(element_id, {}).get("ioMapping", {}).get("inputs", []):
            set_path(local, mapping["target"], evaluate(mapping["source"], {**visible, **local}))
        return local

    def merge_result(self, element_id: str, result: dict[str, Any],
                     outputs: list[dict[str, str]] | None = None, task: Task | None = None) -> None:
        """Zeebe's rule: with output mappings, only their targets are set; without, the result is merged. Each
        variable goes where Zeebe propagates it: a local variable of the task's scope (a multi-instance's item,
        its output element) is updated there, any other is set in the process scope of the task (a called
        process's own)."""
        if outputs is None:
            outputs = self.model.extensions.get(element_id, {}).get("ioMapping", {}).get("outputs", [])
        variables = process_scope(self.variables, task)
        local = local_scope(task) if task is not None else {}
        if not outputs:
            for name, value in result.items():
                (local if name in local else variables)[name] = value
            return
        visible = scoped(self.variables, task) if task is not None else self.variables
        scope = {**visible, **self.inputs(element_id, visible), **result}
        for mapping in outputs:
            target = mapping["target"]
            set_path(local if target.split(".")[0] in local else variables, target,
                     evaluate(mapping["source"], scope))

    def variable_delta(self) -> dict[str, Any]:
        """Variables set or removed since the last saved step."""
        current = _copy(self.variables)
        changed = {k: v for k, v in current.items() if self.saved_variables.get(k, object()) != v}
        unset = [k for k in self.saved_variables if k not in current]
        self.saved_variables = current
        delta: dict[str, Any] = {}
        if changed:
            delta["vars"] = changed
        if unset:
            delta["unset"] = unset
        return delta

    # ----------------------------------------------------------------------------------------- jobs

    def set_job(self, ref: str, job: dict[str, Any] | None) -> None:
        if job is None:
            if self.jobs.pop(ref, None) is not None:
                self.job_changes[ref] = None
        else:
            self.jobs[ref] = job
            self.job_changes[ref] = job

    def set_extra(self, name: str, value: Any) -> None:
        self.extra[name] = value
        self.extra_changes[name] = value

    def take_delta(self) -> dict[str, Any]:
        """Everything this step changed: tasks, variables, job and compensation bookkeeping."""
        delta = self.tracker.delta(self.workflow)
        delta.update(self.variable_delta())
        if self.job_changes:
            delta["jobs"], self.job_changes = self.job_changes, {}
        if self.extra_changes:
            delta["extra"], self.extra_changes = _copy(self.extra_changes), {}
        return delta

    # ---------------------------------------------------------------------------------------- tasks

    def all_tasks(self, state: int | None = None) -> Iterator[Task]:
        """Tasks of the workflow and its subprocesses, optionally in a state mask."""
        for wf in (self.workflow, *self.workflow.subprocesses.values()):
            for task in list(wf.tasks.values()):
                if state is None or task.has_state(state):
                    yield task

    def task(self, task_id: UUID) -> Task | None:
        for wf in (self.workflow, *self.workflow.subprocesses.values()):
            found = wf.tasks.get(task_id)
            if found is not None:
                return found
        return None

    def run_engine(self) -> None:
        """Run every automatic task until only waiting, started (jobs) and manual (user) tasks are left."""
        while True:
            self.workflow.do_engine_steps()
            if not ready_tasks(self.workflow):
                return

    @property
    def completed(self) -> bool:
        return bool(self.workflow.is_completed())


InstanceFactory = Callable[[], Instance]
