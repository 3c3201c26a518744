"""Field-level diffs of case data: what a change set, replaced or removed, path by path."""

from __future__ import annotations

import copy
from typing import Any

import orjson

MISSING = {"$missing": True}


def _canonical(value: Any) -> bytes:
    """JSON as stored: tells 1 from 1.0 from True, also inside lists."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def diff(old: dict[str, Any], new: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Changes turning old into new: [{"path": [...], "old": v|None, "new": v|None, "op": set|remove}].

    Nested objects are compared key by key; lists and scalars are compared whole.
    """
    changes: list[dict[str, Any]] = []
    for key in sorted(set(old) | set(new)):
        path = (*prefix, key)
        if key not in new:
            changes.append({"op": "remove", "path": list(path), "old": old[key], "new": None})
        elif key not in old:
            changes.append({"op": "set", "path": list(path), "old": None, "new": new[key]})
        elif isinstance(old[key], dict) and isinstance(new[key], dict):
            changes.extend(diff(old[key], new[key], path))
        elif _canonical(old[key]) != _canonical(new[key]):
            changes.append({"op": "set", "path": list(path), "old": old[key], "new": new[key]})
    return changes


def apply_changes(data: dict[str, Any], changes: list[dict[str, Any]]) -> dict[str, Any]:
    """Return data with the changes applied (the inverse of diff), leaving the input untouched.

    Only the objects along each changed path are copied; untouched branches are shared, which is safe
    because neither folds nor aggregates ever mutate a data value in place.
    """
    result = dict(data)
    for change in changes:
        *parents, last = change["path"]
        target = result
        for part in parents:
            child = target.get(part)
            target[part] = dict(child) if isinstance(child, dict) else {}
            target = target[part]
        if change["op"] == "remove":
            target.pop(last, None)
        else:
            target[last] = copy.deepcopy(change["new"])
    return result


def merge_patch(data: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 JSON merge patch: objects merge, null removes, anything else replaces."""
    result = copy.deepcopy(data)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            base = result.get(key)
            result[key] = merge_patch(base if isinstance(base, dict) else {}, value)
        else:
            result[key] = copy.deepcopy(value)
    return result
