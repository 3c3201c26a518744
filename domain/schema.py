"""JSON Schema checks that name the failing field paths, run on RE2 with no reference ever fetched."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable

from domain.errors import FieldError, ValidationFailed
from domain.schema_compiled import Check, compile_check
from domain.schema_rules import UnsafePattern, check_rules, compiled


def _no_retrieval(uri: str) -> Resource[Any]:
    """User schemas are data: a reference outside the document is never fetched (no http://, no file://)."""
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


_REGISTRY: Registry[Any] = Registry(retrieve=_no_retrieval)  # type: ignore[call-arg]


def _matches(pattern: str, text: str) -> bool:
    try:
        return compiled(pattern).search(text) is not None
    except UnsafePattern:
        return False  # refused at publish; a schema stored before that rule matches nothing rather than stall


def _pattern(validator: Any, pattern: str, instance: Any, _schema: dict[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _matches(pattern, instance):
        shown = instance if len(instance) <= 60 else instance[:60] + "…"
        yield ValidationError(f"{shown!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, _schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _matches(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    known, patterns = schema.get("properties", {}), list(schema.get("patternProperties", {}))
    extras = sorted(
        (k for k in instance if k not in known and not any(_matches(p, k) for p in patterns)), key=str
    )
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif additional is False and extras:
        names = ", ".join(repr(e) for e in extras)
        if patterns:
            yield ValidationError(f"{names} {'does' if len(extras) == 1 else 'do'} not match any of the regexes: "
                                  + ", ".join(repr(p) for p in sorted(patterns)))
        else:
            yield ValidationError(f"Additional properties are not allowed ({names} "
                                  f"{'was' if len(extras) == 1 else 'were'} unexpected)")


# Draft 2020-12 with its three regular-expression keywords on RE2 (linear time) instead of Python's re
SafeValidator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {"pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties},
)


@lru_cache(maxsize=256)
def _validator(schema_json: bytes) -> tuple[Any, Check | None]:
    """The validator of a schema and its compiled check (domain/schema_compiled.py: True only for a certainly valid
    instance; None when the schema cannot be compiled), keyed by the schema's canonical JSON (definitions are
    replayed into new dicts)."""
    schema = orjson.loads(schema_json)
    formats = Draft202012Validator.FORMAT_CHECKER
    return (SafeValidator(schema, registry=_REGISTRY, format_checker=formats),
            compile_check(schema, _matches, formats))


_REQUIRED = re.compile(r"^'(?P<name>[^']+)' is a required property$")


def _error_path(prefix: str, error: ValidationError) -> str:
    """The path of the failing field; a missing required field is named itself, not its parent."""
    path = _path(prefix, error.absolute_path)
    match = _REQUIRED.match(error.message) if error.validator == "required" else None
    return f"{path}.{match['name']}" if match else path


def _path(prefix: str, parts: Any) -> str:
    text = prefix
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


_CHECKED: dict[bytes, None] = {}  # canonical JSON of schemas that passed (every process task repeats its form's)
_CHECKED_MAX = 256
_CHECKED_LOCK = threading.Lock()


def _canonical(schema: dict[str, Any]) -> bytes | None:
    try:
        return orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # not plain JSON (checked the long way, and refused there if it is wrong)
        return None


def check_schema(schema: Any, field: str = "schema") -> None:
    """Refuse a JSON Schema that is invalid, refers outside itself or to itself, or has a pattern RE2 refuses."""
    if not isinstance(schema, dict):
        raise ValidationFailed("schema must be a JSON object", [FieldError(field, "must be an object")])
    key = _canonical(schema)
    if key is not None and key in _CHECKED:
        return
    _check_schema(schema, field)
    if key is not None:
        with _CHECKED_LOCK:
            if len(_CHECKED) >= _CHECKED_MAX:
                _CHECKED.pop(next(iter(_CHECKED)))
            _CHECKED[key] = None


def _check_schema(schema: dict[str, Any], field: str) -> None:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = _path(field, exc.absolute_path)
        problem = FieldError(where, exc.message)
        raise ValidationFailed(f"invalid JSON Schema at {where}: {exc.message}", [problem]) from None
    except RecursionError:
        raise ValidationFailed(f"invalid JSON Schema at {field}: nested too deeply",
                               [FieldError(field, "nested too deeply")]) from None
    check_rules(schema, field)


def validate(schema: dict[str, Any], instance: Any, prefix: str = "data") -> None:
    """Raise ValidationFailed listing every field path of instance that breaks schema."""
    validator, check = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
    if check is not None and check(instance):
        return  # certainly valid; anything else is walked by the full validator, which names the failing fields
    try:
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    except Unresolvable as exc:  # only a schema stored before publish-time checks existed can get here
        raise ValidationFailed(f"the schema refers to {exc.ref!r}, which is not in it",
                               [FieldError(prefix, "schema reference cannot be resolved")]) from None
    except RecursionError:
        raise ValidationFailed(f"{prefix} is nested too deeply for its schema",
                               [FieldError(prefix, "nested too deeply")]) from None
    if errors:
        fields = [FieldError(_error_path(prefix, e), e.message) for e in errors]
        summary = "; ".join(f"{f.path}: {f.message}" for f in fields[:5])
        raise ValidationFailed(f"{prefix} is not valid: {summary}", fields)
