"""FEEL context functions, `not`, `get or else` and Camunda's `to json` / `from json`."""

from __future__ import annotations

import json
from typing import Any, Final

from processes.feel.builtins_lists import Impl, varargs_list
from processes.feel.values import Function, Range, from_py, to_py


def _get_value(ctx: Any, key: Any) -> Any:
    keys = key if isinstance(key, list) else [key]
    cur = ctx
    for k in keys:
        if not isinstance(cur, dict) or not isinstance(k, str):
            return None
        cur = cur.get(k)
    return cur


def _context_put(ctx: Any, key: Any, value: Any) -> Any:
    keys = key if isinstance(key, list) else [key]
    if not isinstance(ctx, dict) or not keys or not all(isinstance(k, str) for k in keys):
        return None
    head, rest = keys[0], keys[1:]
    if rest:
        inner = ctx.get(head)
        value = _context_put(inner if isinstance(inner, dict) else {}, rest, value)
    return {**ctx, head: value}


def _get_entries(ctx: Any) -> Any:
    if not isinstance(ctx, dict):
        return None
    return [{"key": k, "value": v} for k, v in ctx.items()]


def _context_merge(*contexts: Any) -> Any:
    items = varargs_list(contexts)
    if items is None or not all(isinstance(c, dict) for c in items):
        return None
    merged: dict[str, Any] = {}
    for c in items:
        merged.update(c)
    return merged


def _context(entries: Any) -> Any:
    if not isinstance(entries, list):
        return None
    out: dict[str, Any] = {}
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("key"), str) or "value" not in e:
            return None
        out[e["key"]] = e["value"]
    return out


def _not(v: Any) -> Any:
    return (not v) if isinstance(v, bool) else None


def _get_or_else(value: Any, default: Any) -> Any:
    return default if value is None else value


def _to_json(value: Any) -> Any:
    """to json(value): the value as JSON text (temporal values as their ISO strings); null for a range or lambda."""
    if isinstance(value, Range | Function):
        return None
    return json.dumps(to_py(value), ensure_ascii=False, separators=(",", ":"))


def _from_json(text: Any) -> Any:
    """from json(text): the FEEL value of JSON text (dates stay strings); null when it is not JSON."""
    if not isinstance(text, str):
        return None
    try:
        return from_py(json.loads(text))
    except ValueError:
        return None


CONTEXT_FUNCTIONS: Final[dict[str, tuple[Impl, int, int | None]]] = {
    "get value": (_get_value, 2, 2),
    "context put": (_context_put, 3, 3),
    "get entries": (_get_entries, 1, 1),
    "context merge": (_context_merge, 1, None),
    "context": (_context, 1, 1),
    "not": (_not, 1, 1),
    "get or else": (_get_or_else, 2, 2),
    "to json": (_to_json, 1, 1),
    "from json": (_from_json, 1, 1),
}
