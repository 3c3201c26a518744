"""A JSON Schema compiled once into plain Python checks that say whether an instance is certainly valid.

jsonschema's validator walks the schema for every instance (~70 µs for the demo claim, the largest single cost of
opening a case). `compile_check` turns a schema that uses only the keywords below into nested closures (~5 µs).
The check answers True only for an instance the full validator (domain/schema.py: Draft 2020-12, RE2 patterns,
the same format checker) accepts; False means invalid *or* unsure, and the caller then runs the full validator,
which names every failing field. A schema with any other keyword (`$ref`, `allOf`, `if`, `patternProperties`, an
enum of non-strings, ...) is not compiled at all (None): it is always checked the full way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jsonschema import FormatChecker

Check = Callable[[Any], bool]

# keywords that never make an instance invalid (annotations, and what only a `$ref`, refused here, would use)
_ANNOTATIONS = frozenset({
    "$schema", "$id", "$comment", "$defs", "definitions", "$anchor", "$dynamicAnchor", "$vocabulary", "title",
    "description", "default", "examples", "readOnly", "writeOnly", "deprecated", "contentMediaType",
    "contentEncoding", "contentSchema",
})
_TYPES: dict[str, Check] = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    # as jsonschema: a float with no fractional part is an integer too
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}


class Unsupported(Exception):
    """The schema uses something compile_check does not reproduce exactly."""


def compile_check(schema: Any, matches: Callable[[str, str], bool], formats: FormatChecker) -> Check | None:
    """The check of schema (see the module's docstring), or None when it cannot be compiled. `matches(pattern,
    text)` and `formats` must be the full validator's own."""
    try:
        return _compile(schema, matches, formats)
    except (Unsupported, TypeError, ValueError, AttributeError):
        return None


def _compile(schema: Any, matches: Callable[[str, str], bool], formats: FormatChecker) -> Check:
    if schema is True:
        return lambda _v: True
    if not isinstance(schema, dict):
        raise Unsupported("a false or malformed schema")
    checks: list[Check] = []
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        checks.append(_keyword(keyword, value, schema, matches, formats))
    if len(checks) == 1:
        return checks[0]
    return _every(tuple(checks))


def _every(checks: tuple[Check, ...]) -> Check:
    def check(v: Any) -> bool:
        for one in checks:  # noqa: SIM110 - a loop, not all(<generator>): it runs per field of every instance
            if not one(v):
                return False
        return True

    return check


def _keyword(keyword: str, value: Any, schema: dict[str, Any], matches: Callable[[str, str], bool],
             formats: FormatChecker) -> Check:
    """The check of one keyword; Unsupported for any keyword or value not reproduced exactly."""
    if keyword == "type":
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or any(n not in _TYPES for n in names):
            raise Unsupported(keyword)
        tests = [_TYPES[n] for n in names]
        return tests[0] if len(tests) == 1 else (lambda v: any(t(v) for t in tests))
    if keyword in ("enum", "const"):
        options = value if keyword == "enum" else [value]
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise Unsupported(keyword)  # jsonschema's equality (1 == 1.0, True != 1) is kept out of it
        allowed = frozenset(options)
        return lambda v: isinstance(v, str) and v in allowed
    if keyword in ("minLength", "maxLength"):
        limit = _count(value, keyword)
        if keyword == "minLength":
            return lambda v: not isinstance(v, str) or len(v) >= limit
        return lambda v: not isinstance(v, str) or len(v) <= limit
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return _bound(keyword, value)
    if keyword == "pattern":
        if not isinstance(value, str):
            raise Unsupported(keyword)
        return lambda v: not isinstance(v, str) or matches(value, v)
    if keyword == "format":
        if not isinstance(value, str):
            raise Unsupported(keyword)
        return lambda v: formats.conforms(v, value)
    if keyword == "required":
        if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
            raise Unsupported(keyword)
        names = tuple(value)
        return lambda v: not isinstance(v, dict) or all(n in v for n in names)
    if keyword in ("minProperties", "maxProperties", "minItems", "maxItems"):
        return _size(keyword, _count(value, keyword))
    if keyword == "properties":
        if not isinstance(value, dict):
            raise Unsupported(keyword)
        subs = tuple((name, _compile(sub, matches, formats)) for name, sub in value.items())

        def properties(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            for name, sub in subs:  # noqa: SIM110 - as in _every
                if name in v and not sub(v[name]):
                    return False
            return True

        return properties
    if keyword == "additionalProperties":
        known = schema.get("properties", {})
        if not isinstance(known, dict):
            raise Unsupported(keyword)
        if value is False:
            return lambda v: not isinstance(v, dict) or all(k in known for k in v)
        extra = _compile(value, matches, formats)
        return lambda v: not isinstance(v, dict) or all(extra(x) for k, x in v.items() if k not in known)
    if keyword == "items" and "prefixItems" not in schema:
        each = _compile(value, matches, formats)
        return lambda v: not isinstance(v, list) or all(each(x) for x in v)
    raise Unsupported(keyword)


def _count(value: Any, keyword: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Unsupported(keyword)
    return value


def _bound(keyword: str, value: Any) -> Check:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unsupported(keyword)
    number = _TYPES["number"]
    if keyword == "minimum":
        return lambda v: not number(v) or v >= value
    if keyword == "maximum":
        return lambda v: not number(v) or v <= value
    if keyword == "exclusiveMinimum":
        return lambda v: not number(v) or v > value
    return lambda v: not number(v) or v < value


def _size(keyword: str, limit: int) -> Check:
    kind: type[dict[Any, Any]] | type[list[Any]] = dict if keyword.endswith("Properties") else list
    if keyword.startswith("min"):
        return lambda v: not isinstance(v, kind) or len(v) >= limit
    return lambda v: not isinstance(v, kind) or len(v) <= limit
