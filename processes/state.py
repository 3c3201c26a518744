"""Incremental persistence of SpiffWorkflow state: per step, only the tasks that changed.

`WorkflowTracker.snapshot()` takes a cheap fingerprint of every task (state, children, internal data); after
a step `delta()` returns just the tasks whose fingerprint changed, the tasks removed, and subprocesses
created or dropped. `restore_workflow` rebuilds a BpmnWorkflow from the folded deltas
(domain.process.fold_instance) with the deployed spec, so specs are never stored per instance.
`new_workflow` starts one: the task tree SpiffWorkflow predicts for a new workflow is the same for every instance
of a spec, so it is predicted once per spec and copied with fresh task ids (a claim's: 0.4 ms predicted).
Both build a `ZeebeWorkflow`: SpiffWorkflow's workflow with a cheaper search for the tasks to run and the waiting
tasks to update, whose subprocesses start as copies of their predicted trees too. Importing this module also
replaces SpiffWorkflow's `Task._set_state` with one that builds its log record only when the `spiff.task` logger
is enabled (same states and times; in every process that runs the engine).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import orjson
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from domain.process import TOP, InstanceState
from processes.runtime import register_clock_timers

_REGISTRY = BpmnWorkflowSerializer.configure()
register_clock_timers(_REGISTRY)
Fingerprint = tuple[int, float, int, bool, bytes]


_FUTURE, _WAITING, _READY = TaskState.FUTURE, TaskState.WAITING, TaskState.READY


def ready_tasks(workflow: Any) -> list[Task]:
    """The READY automatic tasks of a workflow in the order SpiffWorkflow's `get_tasks(state=READY)` finds them
    (depth first; a task's subprocess before its children), without descending into completed subprocesses
    (they hold none). SpiffWorkflow's iterator filters every task through generic objects: that search was a
    quarter of a step of a call activity run for ten items."""
    found: list[Task] = []
    subprocesses = workflow.top_workflow.subprocesses
    stack: list[Task] = [workflow.task_tree]
    while stack:
        task = stack.pop()
        state = task._state
        if state & _READY and not task.task_spec.manual:
            found.append(task)
        sub = subprocesses.get(task.id)
        nested: list[Task] = []
        if sub is not None and not sub.completed:
            nested.append(sub.task_tree)
        if task._children and (state >= _FUTURE or sub is not None):
            tasks = task.workflow.tasks
            nested.extend(tasks[child] for child in task._children)
        if nested:
            stack.extend(reversed(nested))
    return found


def _waiting(workflow: Any) -> Iterator[Task]:
    """The WAITING tasks of one (sub)workflow, found lazily in the order of SpiffWorkflow's `TaskIterator(state=
    WAITING)`: a task's children are taken when it is reached (so an update adding children to an earlier one
    does not add to the walk, as there)."""
    tasks = workflow.tasks
    stack: list[Task] = [workflow.task_tree]
    while stack:
        task = stack.pop()
        if task._children and task._state >= _FUTURE:
            stack.extend(tasks[child] for child in reversed(task._children))
        if task._state & _WAITING:
            yield task


class _FastWaiting:
    """`update_waiting_tasks` (run after every completed task) walking the tree by `_waiting`."""

    def update_waiting_tasks(self) -> None:
        for task in _waiting(self):
            task.task_spec._update(task)


class ZeebeSubWorkflow(_FastWaiting, BpmnSubWorkflow):  # type: ignore[misc]
    """SpiffWorkflow's BpmnSubWorkflow with the cheaper update of waiting tasks."""


_task_log = logging.getLogger("spiff.task")


def _set_state(self: Task, value: int) -> None:
    """SpiffWorkflow's `Task._set_state`, building its log record only when someone listens (it built the record,
    with a task-state name lookup, on every state change: a twentieth of a call activity's step)."""
    if value != self._state:
        now = time.time()
        elapsed = now - self.last_state_change
        self.last_state_change = now
        self._state = value
        if _task_log.isEnabledFor(logging.INFO):
            _task_log.info(f"State changed to {TaskState.get_name(value)}",
                           extra=self.collect_log_extras({"elapsed": elapsed}))
    elif _task_log.isEnabledFor(logging.DEBUG):
        _task_log.debug(f"State set to {TaskState.get_name(value)}", extra=self.collect_log_extras())


Task._set_state = _set_state


class ZeebeWorkflow(_FastWaiting, BpmnWorkflow):  # type: ignore[misc]
    """SpiffWorkflow's BpmnWorkflow; its engine steps run the same tasks in the same order, found by `ready_tasks`,
    and its subprocesses are ZeebeSubWorkflows."""

    def create_subprocess(self, my_task: Any, spec_name: str) -> Any:
        """A subprocess at its start, copied from its spec's predicted tree when it has one (as `new_workflow`)."""
        spec = self.subprocess_specs[spec_name]
        template = _template(spec, self.subprocess_specs)
        subprocess = ZeebeSubWorkflow(spec, parent_task_id=my_task.id, top_workflow=self,
                                      deserializing=template is not None)
        if template is not None:
            data = subprocess.data  # a subprocess's own (its data objects are the top workflow's)
            _copy_template(subprocess, template)
            subprocess.data = data
        self.subprocesses[my_task.id] = subprocess
        return subprocess

    def _do_engine_steps(self, will_complete_task: Any = None, did_complete_task: Any = None) -> bool:
        def update_workflow(wf: Any) -> int:
            count = 0
            for task in ready_tasks(wf):
                if task._state & _READY:  # still ready: running an earlier one may have cancelled it
                    if will_complete_task is not None:
                        will_complete_task(task)
                    task.run()
                    count += 1
                    if did_complete_task is not None:
                        did_complete_task(task)
            return count

        active = self.get_active_subprocesses()
        for subprocess in sorted(active, key=lambda v: v.depth, reverse=True):
            while update_workflow(subprocess) > 0:
                pass
            if subprocess.parent_task_id is not None:
                task = self.get_task_from_id(subprocess.parent_task_id)
                task.task_spec._update(task)
        count = update_workflow(self)
        return count > 0 or len(self.get_active_subprocesses()) > len(active)


def _key(workflow: Any) -> str:
    return TOP if workflow.parent_task_id is None else str(workflow.parent_task_id)


def _workflows(workflow: BpmnWorkflow) -> dict[str, Any]:
    found: dict[str, Any] = {TOP: workflow}
    for task_id, sub in workflow.subprocesses.items():
        found[str(task_id)] = sub
    return found


def _blob(task: Task) -> bytes:
    if not task.internal_data and not task.data:
        return b""
    return orjson.dumps([_REGISTRY.convert(task.internal_data), _REGISTRY.convert(task.data)],
                        default=str, option=orjson.OPT_SORT_KEYS)


def _fingerprint(task: Task) -> Fingerprint:
    return task._state, task.last_state_change, len(task._children), task.triggered, _blob(task)


def task_to_dict(task: Task, text: Callable[[UUID], str] = str) -> dict[str, Any]:
    """A task as JSON-ready data (the spec by name; data and internal data through Spiff's registry); `text` writes
    a task id (a tracker remembers them: formatting uuids was a third of a step's delta)."""
    return {
        "id": text(task.id),
        "parent": text(task._parent) if task._parent is not None else None,
        "children": [text(c) for c in task._children],
        "state": task._state,
        "spec": task.task_spec.name,
        "triggered": task.triggered,
        "lsc": task.last_state_change,
        "internal": _REGISTRY.convert(task.internal_data) if task.internal_data else {},
        "data": _REGISTRY.convert(task.data) if task.data else {},
    }


def _workflow_attrs(workflow: Any) -> dict[str, Any]:
    return {
        "completed": workflow.completed,
        "success": workflow.success,
        "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
        "root": str(workflow.task_tree.id),
        "correlations": workflow.correlations,
    }


class WorkflowTracker:
    """Remembers task fingerprints between steps so each step stores only what changed."""

    def __init__(self) -> None:
        self.prints: dict[str, dict[UUID, Fingerprint]] = {}
        self.attrs: dict[str, dict[str, Any]] = {}
        self._texts: dict[UUID, str] = {}  # task id -> its text, for the tasks the workflows hold
        self.variables: dict[str, dict[str, Any]] = {}  # a called process's own variables, as last saved

    def _text(self, task_id: UUID) -> str:
        text = self._texts.get(task_id)
        if text is None:
            text = self._texts[task_id] = str(task_id)
        return text

    def delta(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        """What changed since the last call (everything, the first time); remembers the new fingerprints."""
        changes: dict[str, Any] = {}
        current = _workflows(workflow)
        dropped = [key for key in self.prints if key not in current]
        for key in dropped:
            for task_id in self.prints.pop(key, {}):
                self._texts.pop(task_id, None)
            self.attrs.pop(key, None)
            self.variables.pop(key, None)
        for key, wf in current.items():
            before = self.prints.get(key, {})
            if wf.completed and self.attrs.get(key, {}).get("completed") and len(wf.tasks) == len(before):
                continue  # saved as completed: a finished (sub)workflow's tasks do not change any more
            after: dict[UUID, Fingerprint] = {}
            tasks: dict[str, Any] = {}
            for task_id, task in wf.tasks.items():
                fp = _fingerprint(task)
                after[task_id] = fp
                if before.get(task_id) != fp:
                    tasks[self._text(task_id)] = task_to_dict(task, self._text)
            removed = [self._texts.pop(t, "") or str(t) for t in before if t not in after]
            attrs = _workflow_attrs(wf)
            changed_attrs = {k: v for k, v in attrs.items() if self.attrs.get(key, {}).get(k) != v}
            self.prints[key], self.attrs[key] = after, attrs
            change: dict[str, Any] = {}
            if tasks:
                change["tasks"] = tasks
            if removed:
                change["removed"] = removed
            if changed_attrs:
                change["attrs"] = changed_attrs
            own = getattr(wf, "variables", None)  # a called process's scope (processes/call_activity.py)
            if own is not None:
                change.update(self._variable_delta(key, own))
            if change:
                changes[key] = change
        delta: dict[str, Any] = {}
        if changes:
            delta["w"] = changes
        if dropped:
            delta["dropped"] = dropped
        return delta


    def _variable_delta(self, key: str, own: dict[str, Any]) -> dict[str, Any]:
        """A called process's variables set or removed since the last delta (at first all of them, even none:
        the stored scope marks the subprocess as a called process)."""
        current: dict[str, Any] = orjson.loads(orjson.dumps(own, default=str))
        saved = self.variables.get(key)
        self.variables[key] = current
        if saved is None:
            return {"vars": current}
        change: dict[str, Any] = {}
        changed = {k: v for k, v in current.items() if saved.get(k, _ABSENT) != v}
        unset = [k for k in saved if k not in current]
        if changed:
            change["vars"] = changed
        if unset:
            change["unset"] = unset
        return change


_ABSENT = object()


def _restore_tasks(workflow: Any, tasks: dict[str, dict[str, Any]]) -> None:
    event_manager = workflow.top_workflow.event_manager
    for dct in tasks.values():  # creation order: parents come before their children
        spec = workflow.spec.task_specs.get(dct["spec"])
        if spec is None:
            raise ValueError(f"stored task {dct['id']} names element {dct['spec']!r}, which the process lacks")
        task = Task(workflow, spec, state=dct["state"], id=UUID(dct["id"]))
        task._parent = UUID(dct["parent"]) if dct["parent"] is not None else None
        task._children = [UUID(c) for c in dct["children"]]
        task.last_state_change = dct["lsc"]
        task.triggered = dct["triggered"]
        task.internal_data = _REGISTRY.restore(dct["internal"])
        task.data = _REGISTRY.restore(dct["data"])
        if isinstance(spec, CatchingEvent) and task.has_state(TaskState.WAITING):
            event_manager.add_task(task)


def _apply_attrs(workflow: Any, attrs: dict[str, Any]) -> None:
    workflow.task_tree = workflow.tasks[UUID(attrs["root"])]
    workflow.completed = attrs.get("completed", False)
    workflow.success = attrs.get("success", True)
    workflow.correlations = dict(attrs.get("correlations") or {})
    last = attrs.get("last_task")
    workflow.last_task = workflow.tasks.get(UUID(last)) if last else None


@dataclass(frozen=True)
class _Template:
    """A new workflow's predicted tasks (parents before children) and its attributes, to copy."""

    spec: Any  # kept: the cache is keyed by its id()
    tasks: tuple[tuple[UUID, UUID | None, tuple[UUID, ...], int, Any, bool, dict[str, Any], dict[str, Any]], ...]
    root: UUID
    data: dict[str, Any]


_templates: dict[int, _Template | None] = {}  # id(spec) -> its template, None when it is not copied
_templates_lock = threading.Lock()


def _template(spec: Any, subprocess_specs: Any) -> _Template | None:
    key = id(spec)
    with _templates_lock:
        if key in _templates:
            known = _templates[key]
            if known is None or known.spec is spec:
                return known
        workflow = ZeebeWorkflow(spec, subprocess_specs)
        template = None
        if not workflow.subprocesses and workflow.last_task is None and not workflow.completed:
            template = _Template(
                spec,
                tuple((t.id, t._parent, tuple(t._children), t._state, t.task_spec, t.triggered,
                       t.internal_data, t.data) for t in workflow.tasks.values()),
                workflow.task_tree.id, workflow.data)
        _templates[key] = template
        return template


def new_workflow(spec: Any, subprocess_specs: Any, script_engine: Any) -> BpmnWorkflow:
    """A new workflow of spec at its start, as `BpmnWorkflow(spec, subprocess_specs, script_engine=...)` builds it."""
    template = _template(spec, subprocess_specs)
    if template is None:
        return ZeebeWorkflow(spec, subprocess_specs, script_engine=script_engine)
    workflow = ZeebeWorkflow(spec, subprocess_specs, script_engine=script_engine, deserializing=True)
    _copy_template(workflow, template)
    return workflow


def _copy_template(workflow: Any, template: _Template) -> None:
    """Give a workflow built for deserializing the template's tasks, with fresh task ids."""
    # one random base per copy, each task its own low bits: unique within the workflow and as unlikely to meet
    # another's as uuid4 ids, for one random draw (an os.urandom call) per copy instead of one per task
    base = uuid4().int
    ids = {old: UUID(int=base ^ n) for n, (old, *_) in enumerate(template.tasks)}
    now = time.time()
    for old, parent, children, state, task_spec, triggered, internal, data in template.tasks:
        task = Task(workflow, task_spec, state=state, id=ids[old])
        task._parent = ids[parent] if parent is not None else None
        task._children = [ids[child] for child in children]
        task.last_state_change = now
        task.triggered = triggered
        task.internal_data = copy.deepcopy(internal) if internal else {}
        task.data = copy.deepcopy(data) if data else {}
    workflow.task_tree = workflow.tasks[ids[template.root]]
    workflow.data = copy.deepcopy(template.data)


def restore_workflow(spec: Any, subprocess_specs: Any, state: InstanceState, script_engine: Any) -> BpmnWorkflow:
    """Rebuild the workflow of an instance from its folded state."""
    workflow = ZeebeWorkflow(spec, subprocess_specs, script_engine=script_engine, deserializing=True)
    top = state.workflows[TOP]
    _restore_tasks(workflow, top.tasks)
    _apply_attrs(workflow, top.attrs)
    pending = {k: v for k, v in state.workflows.items() if k != TOP}
    while pending:  # a subprocess is restored after the workflow holding its parent task
        progressed = False
        for key in list(pending):
            parent = workflow.get_task_from_id(UUID(key))
            if parent is None:
                continue
            wf_state = pending.pop(key)
            sub = ZeebeSubWorkflow(subprocess_specs[parent.task_spec.spec], parent.id, workflow, deserializing=True)
            _restore_tasks(sub, wf_state.tasks)
            _apply_attrs(sub, wf_state.attrs)
            if wf_state.variables is not None:  # a called process's own scope
                sub.variables = dict(wf_state.variables)
            workflow.subprocesses[parent.id] = sub
            sub.completed_event.connect(parent.task_spec._on_subworkflow_completed, parent)
            progressed = True
        if not progressed:
            raise ValueError(f"stored subprocesses {sorted(pending)} have no parent task")
    return workflow
