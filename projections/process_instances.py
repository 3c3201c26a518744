"""The `process_instances` read model: one document per process instance for operators — its state, open
incidents, variables and the elements it is at now (folded from the deltas its events carry).

Variables are kept as a JSON text (`variables_json`): their names are the process's own and may not be valid
document keys in every store (MongoDB refuses dots and leading dollars).
"""

from __future__ import annotations

from typing import Any

import orjson

from domain import process as p
from domain.events import Event
from projections.base import Doc, Fold, Projection
from projections.texts import iso_text, uuid_text

# SpiffWorkflow task states an operator sees as "the instance is here": waiting, ready, started, failed
ACTIVE_STATES = {8: "waiting", 16: "ready", 32: "active", 128: "failed"}


def _elements(elements: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """The active elements after a step's delta: key `<workflow>/<task id>` -> {element_id, state}."""
    dropped = tuple(f"{wf}/" for wf in delta.get("dropped", ()))
    changes = delta.get("w", {})
    if not dropped and not changes:
        return elements
    new = {k: v for k, v in elements.items() if not (dropped and k.startswith(dropped))}
    for wf, change in changes.items():
        for task_id in change.get("removed", ()):
            new.pop(f"{wf}/{task_id}", None)
        for task_id, task in change.get("tasks", {}).items():
            key, spec, state = f"{wf}/{task_id}", str(task.get("spec", "")), ACTIVE_STATES.get(task.get("state", 0))
            if state is None or "." in spec or not spec:  # internal SpiffWorkflow tasks are named "<x>.<y>"
                new.pop(key, None)
            else:
                new[key] = {"element_id": spec, "state": state}
    return new


def _variables(text: str, delta: dict[str, Any]) -> str:
    if "vars" not in delta and "unset" not in delta:
        return text
    values = orjson.loads(text)
    values.update(delta.get("vars", {}))
    for name in delta.get("unset", ()):
        values.pop(name, None)
    return orjson.dumps(values, default=str).decode()


def started(_doc: Doc | None, e: p.ProcessStarted) -> Doc:
    at = iso_text(e.occurred_at)
    doc: Doc = {
        "id": uuid_text(e.aggregate_id),
        "tenant": e.tenant,
        "instance_key": e.instance_key,
        "process_id": e.process_id,
        "process_name": e.process_name,
        "definition_hash": e.definition_hash,
        "case_id": e.case_id,
        "state": p.RUNNING,
        "open_incidents": 0,
        "has_incident": False,
        "started_at": at,
        "updated_at": at,
        "ended_at": None,
        "variables_json": orjson.dumps(e.variables, default=str).decode(),
        "elements": {},
        "version": e.version,
    }
    return _stepped(doc, e)


def _stepped(doc: Doc, e: p.ProcessEvent) -> Doc:
    doc["elements"] = _elements(doc["elements"], e.delta)
    doc["variables_json"] = _variables(doc["variables_json"], e.delta)
    doc["updated_at"] = iso_text(e.occurred_at)
    doc["version"] = e.version
    return doc


def stepped(doc: Doc | None, e: p.ProcessEvent) -> Doc | None:
    if doc is None:
        return None
    new = _stepped(dict(doc), e)
    if isinstance(e, p.IncidentRaised):
        new["open_incidents"] = doc["open_incidents"] + 1
    elif isinstance(e, p.IncidentResolved):
        new["open_incidents"] = max(doc["open_incidents"] - 1, 0)
    elif isinstance(e, p.ProcessCompleted | p.ProcessCancelled):
        new["state"] = p.COMPLETED if isinstance(e, p.ProcessCompleted) else p.CANCELLED
        new["ended_at"] = new["updated_at"]
        new["elements"] = {}
    new["has_incident"] = new["open_incidents"] > 0
    return new


FOLDS: dict[type[Event], Fold] = {
    p.ProcessStarted: started,
    # every step event (those other engine features add too) carries a delta to fold
    **{cls: stepped for cls in (*p.STEP_EVENTS.values(), p.IncidentResolved, p.ProcessVariablesModified)
       if cls is not p.ProcessStarted},
}

PROCESS_INSTANCES = Projection(
    collection="process_instances",
    folds=FOLDS,
    indexes=("process_id", "case_id", "state", "has_incident", "started_at"),
    order="started_at",
)
