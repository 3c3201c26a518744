"""Zeebe call activities: `zeebe:calledElement processId="..."` runs another deployed process.

The called process runs inside the calling instance as a SpiffWorkflow subprocess (its steps are saved with
the caller's events, so it recovers with it). Its spec is looked up when the call starts, in the newest
deployment of that process id (Zeebe's default binding, "latest"); a process that is not deployed then is an
error of that step, so an incident, as in Zeebe. Variables follow Zeebe: the call activity's input mappings
are the called process's local variables on top of what it sees; when it ends, what it changed is kept
(`propagateAllChildVariables`, true by default) or, when that is false, undone, and the output mappings are
evaluated over the child's variables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from SpiffWorkflow.bpmn.specs.defaults import CallActivity

from processes.runtime import FeelScriptEngine, evaluate, local_scope, scoped, set_path

__all__ = ["CalledSpecs", "ZeebeCallActivity", "link_calls"]

_ABSENT = "__absent__"


def _copy(value: Mapping[str, Any]) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(value, default=str))  # type: ignore[no-any-return]


class CalledSpecs(dict[str, Any]):
    """A process's subprocess specs, plus those of the processes it calls, found when first needed."""

    resolver: Callable[[str], Any] | None = None

    def __bool__(self) -> bool:  # Spiff replaces an empty mapping with a new dict
        return True

    def __missing__(self, name: str) -> Any:
        spec = self.resolver(name) if self.resolver is not None else None
        if spec is None:
            raise KeyError(name)
        return spec

    def __contains__(self, name: object) -> bool:
        if dict.__contains__(self, name):
            return True
        return isinstance(name, str) and self.resolver is not None and self.resolver(name) is not None

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default


class ZeebeCallActivity(CallActivity):  # type: ignore[misc]
    """A call activity with Zeebe's variable propagation."""

    def __init__(self, wf_spec: Any, bpmn_id: str, subworkflow_spec: str, propagate_child: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, subworkflow_spec, **kwargs)
        self.propagate_child = propagate_child

    def get_missing_subworkflow_error(self, my_task: Any) -> str:
        return f"call activity {self.bpmn_id}: the called process {self.spec!r} is not deployed"

    def _variables(self, my_task: Any) -> dict[str, Any]:
        engine = my_task.workflow.top_workflow.script_engine
        return engine.variables if isinstance(engine, FeelScriptEngine) else my_task.data

    def copy_data(self, my_task: Any, subworkflow: Any) -> None:
        variables = self._variables(my_task)
        local = dict(local_scope(my_task))
        visible = dict(scoped(variables, my_task))
        for mapping in getattr(self, "extensions", {}).get("ioMapping", {}).get("inputs", []):
            set_path(local, mapping["target"], evaluate(mapping["source"], {**visible, **local}))
        my_task.internal_data["call_before"] = _copy(variables)
        start = subworkflow.get_next_task(subworkflow.task_tree, skip_subprocesses=True, spec_name="Start")
        start.set_data(**local)

    def update_data(self, my_task: Any, subworkflow: Any) -> None:
        variables = self._variables(my_task)
        before: dict[str, Any] = my_task.internal_data.pop("call_before", {})
        last = subworkflow.last_task
        child = {k: v for k, v in _copy(variables).items() if before.get(k, _ABSENT) != v}
        child.update(local_scope(last) if last is not None else {})
        if not self.propagate_child:
            for name in list(variables):
                if name in child and name not in local_scope(my_task):
                    if name in before:
                        variables[name] = before[name]
                    else:
                        del variables[name]
        outputs = getattr(self, "extensions", {}).get("ioMapping", {}).get("outputs", [])
        scope = {**variables, **child}
        for mapping in outputs:
            set_path(variables, mapping["target"], evaluate(mapping["source"], scope))
        my_task.data = dict(local_scope(my_task))


def link_calls(model: Any, models: Mapping[str, Any]) -> None:
    """Let a deployment's call activities find the called processes among `models` (process id -> newest
    ProcessModel) when a call starts. The called process's element extensions (io mappings, headers) join the
    caller's, which the engine reads by element id."""

    def resolve(name: str) -> Any:
        called = models.get(name)
        if called is None:
            for other in list(models.values()):
                spec = dict.get(other.deployed.subprocess_specs, name)
                if spec is not None:
                    return spec
            return None
        for element, ext in called.extensions.items():
            model.extensions.setdefault(element, ext)
        for spec_name, element in called.inner.items():
            model.inner.setdefault(spec_name, element)
        return called.deployed.spec

    specs = model.deployed.subprocess_specs
    if isinstance(specs, CalledSpecs):
        specs.resolver = resolve
