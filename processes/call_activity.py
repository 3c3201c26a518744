"""Zeebe call activities: `zeebe:calledElement processId="..."` runs another deployed process.

The called process runs inside the calling instance as a SpiffWorkflow subprocess (its steps are saved with
the caller's events, so it recovers with it). Its spec is looked up when the call starts, in the newest
deployment of that process id (Zeebe's default binding, "latest"); a process that is not deployed then is an
error of that step, so an incident, as in Zeebe.

Variables follow Zeebe: the called process has its own scope (the subprocess's `variables`, saved in its steps by
processes/state.py; runtime.process_scope finds it for every task inside), so parallel calls (a multi-instance)
never see each other's values. It starts with a copy of what the call activity sees plus its input mappings
(`propagateAllParentVariables`, true by default; when false, only the input mappings and the inner instance's own
variables). When it completes, all its variables are copied out (`propagateAllChildVariables`, true by default),
each to the nearest scope that has it (a multi-instance's inner instance) or the caller's process scope; input
mapping targets end with the call; output mappings are evaluated over the child's variables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from SpiffWorkflow.bpmn.specs.defaults import CallActivity

from processes.runtime import FeelScriptEngine, evaluate, local_scope, process_scope, scoped, set_path

__all__ = ["CalledSpecs", "ZeebeCallActivity", "link_calls"]


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
    """A call activity whose called process has its own variables, propagated as Zeebe does."""

    def __init__(self, wf_spec: Any, bpmn_id: str, subworkflow_spec: str, propagate_child: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, subworkflow_spec, **kwargs)
        self.propagate_child = propagate_child

    def get_missing_subworkflow_error(self, my_task: Any) -> str:
        return f"call activity {self.bpmn_id}: the called process {self.spec!r} is not deployed"

    def _io(self, direction: str) -> list[dict[str, str]]:
        return getattr(self, "extensions", {}).get("ioMapping", {}).get(direction, [])  # type: ignore[no-any-return]

    def _caller(self, my_task: Any) -> dict[str, Any]:
        """The process scope the call activity runs in (the caller's; a called process's own, when nested)."""
        engine = my_task.workflow.top_workflow.script_engine
        scope: dict[str, Any] = (process_scope(engine.variables, my_task) if isinstance(engine, FeelScriptEngine)
                                 else my_task.data)
        return scope

    def copy_data(self, my_task: Any, subworkflow: Any) -> None:
        visible = dict(scoped(self._caller(my_task), my_task))
        mapped: dict[str, Any] = {}
        for mapping in self._io("inputs"):
            set_path(mapped, mapping["target"], evaluate(mapping["source"], {**visible, **mapped}))
        parent = getattr(self, "extensions", {}).get("calledElement", {}).get("propagateAllParentVariables")
        # propagateAllParentVariables="false": only the call's own variables (input mappings, an item) go in
        given = visible if parent != "false" else dict(local_scope(my_task))
        subworkflow.variables = _copy({**given, **mapped})  # the called process's own scope (runtime.process_scope)

    def update_data(self, my_task: Any, subworkflow: Any) -> None:
        caller = self._caller(my_task)
        local = local_scope(my_task)
        child: dict[str, Any] = _copy(getattr(subworkflow, "variables", None) or {})
        own = {mapping["target"].split(".")[0] for mapping in self._io("inputs")}  # end with the call
        if self.propagate_child:
            for name, value in child.items():
                if name not in own:
                    (local if name in local else caller)[name] = value
        scope = {**scoped(caller, my_task), **child}
        for mapping in self._io("outputs"):
            target = mapping["target"]
            set_path(local if target.split(".")[0] in local else caller, target,
                     evaluate(mapping["source"], scope))
        my_task.data = dict(local)  # the called process's task data stays in it


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
