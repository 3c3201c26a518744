"""What a user-supplied JSON Schema may contain: it is data, never fetched, and cannot stall the server.

Checked once, when the schema is published (a case definition, a record type, a task form):
- every `$ref` points inside the document (`#...`); `$dynamicRef` / `$recursiveRef` are refused, so nothing is
  ever retrieved (the validators also run on a registry that cannot retrieve: see domain/schema.py);
- references may not form a cycle (a schema that refers to itself without consuming input recurses forever);
- every regular expression (`pattern`, `patternProperties` keys) compiles on RE2, the linear-time engine the
  validators use, so no pattern can backtrack exponentially;
- nesting depth and the number of subschemas are bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import re2

from domain.errors import FieldError, ValidationFailed

MAX_DEPTH = 32  # nested objects/arrays in one schema
MAX_NODES = 5_000  # objects and arrays in one schema
MAX_PATTERN_LENGTH = 1_000
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is answered to the client, not logged by the C++ library
_OPTIONS.max_mem = 8 << 20


class UnsafePattern(ValueError):
    """A regular expression RE2 cannot run (look-around, back-references) or that is too large."""


@lru_cache(maxsize=1024)
def compiled(pattern: str) -> re2._Regexp[str]:
    """The RE2 program of pattern (cached); UnsafePattern when RE2 refuses it."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise UnsafePattern(f"longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        message = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise UnsafePattern(message) from None


def _pointer_text(parts: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _refuse(field: str, parts: tuple[str | int, ...], message: str) -> ValidationFailed:
    where = field + _pointer_text(parts)
    return ValidationFailed(f"invalid JSON Schema at {where}: {message}", [FieldError(where, message)])


def _walk(node: Any, parts: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every object and array of the schema with its path, parents first."""
    yield parts, node
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict | list):
                yield from _walk(value, (*parts, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, dict | list):
                yield from _walk(value, (*parts, index))


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _target(schema: Any, ref: str) -> tuple[str | int, ...] | None:
    """The path a local `#/a/b` or `#anchor` reference names, or None if it names nothing."""
    fragment = ref[1:]
    if fragment and not fragment.startswith("/"):  # a plain-name anchor
        for parts, node in _walk(schema):
            if isinstance(node, dict) and node.get("$anchor") == fragment:
                return parts
        return None
    node, parts = schema, ()
    for raw in fragment.split("/")[1:] if fragment else []:
        token = _unescape(raw)
        if isinstance(node, dict) and token in node:
            node, parts = node[token], (*parts, token)
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node, parts = node[int(token)], (*parts, int(token))
        else:
            return None
    return parts


def check_rules(schema: dict[str, Any], field: str) -> None:
    """Refuse what domain/schema_rules.py's docstring lists, naming the path (field.…) of the first offence."""
    refs: dict[tuple[str | int, ...], tuple[str | int, ...]] = {}  # where a $ref sits -> what it names
    count = 0
    for parts, node in _walk(schema):
        count += 1
        if count > MAX_NODES:
            raise _refuse(field, (), f"more than {MAX_NODES} subschemas")
        if len(parts) > MAX_DEPTH:
            raise _refuse(field, parts, f"nested deeper than {MAX_DEPTH} levels")
        if not isinstance(node, dict):
            continue
        for keyword in ("$dynamicRef", "$recursiveRef"):
            if keyword in node:
                raise _refuse(field, (*parts, keyword), f"{keyword} is not supported; use a local $ref")
        ref = node.get("$ref")
        if ref is not None:
            if not isinstance(ref, str) or not ref.startswith("#"):
                raise _refuse(field, (*parts, "$ref"), f"only references inside the schema (#/...) are allowed, "
                                                        f"not {str(ref)[:200]!r}; nothing is ever fetched")
            target = _target(schema, ref)
            if target is None:
                raise _refuse(field, (*parts, "$ref"), f"{ref[:200]!r} names nothing in this schema")
            refs[parts] = target
        _check_patterns(node, parts, field)
    _check_cycles(refs, field)


def _check_patterns(node: dict[str, Any], parts: tuple[str | int, ...], field: str) -> None:
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        try:
            compiled(pattern)
        except UnsafePattern as exc:
            raise _refuse(field, (*parts, "pattern"), f"pattern is not supported: {exc}") from None
    properties = node.get("patternProperties")
    if isinstance(properties, dict):
        for key in properties:
            try:
                compiled(key)
            except UnsafePattern as exc:
                raise _refuse(field, (*parts, "patternProperties", key), f"pattern is not supported: {exc}") from None


def _check_cycles(refs: dict[tuple[str | int, ...], tuple[str | int, ...]], field: str) -> None:
    """A reference whose target (or what that target refers to, transitively) contains the reference itself
    loops without consuming input."""
    def inside(path: tuple[str | int, ...], root: tuple[str | int, ...]) -> bool:
        return path[: len(root)] == root

    # an edge from each reference to every reference inside its target's subtree
    edges = {ref: [other for other in refs if inside(other, target)] for ref, target in refs.items()}
    state: dict[tuple[str | int, ...], int] = {}  # 1 visiting, 2 done

    def visit(ref: tuple[str | int, ...]) -> None:
        state[ref] = 1
        for nxt in edges[ref]:
            if state.get(nxt) == 1:
                raise _refuse(field, (*nxt, "$ref"), "recursive reference: following $ref from here comes back "
                                                    "to it (a schema may not refer to itself)")
            if nxt not in state:
                visit(nxt)
        state[ref] = 2

    for ref in refs:
        if ref not in state:
            visit(ref)
