"""JSON Schema checks that name the failing field paths."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from domain.errors import FieldError, ValidationFailed

_VALIDATORS: dict[int, Draft202012Validator] = {}


def _path(prefix: str, parts: Any) -> str:
    text = prefix
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def check_schema(schema: Any, field: str = "schema") -> None:
    """Refuse a JSON Schema that is itself invalid."""
    if not isinstance(schema, dict):
        raise ValidationFailed("schema must be a JSON object", [FieldError(field, "must be an object")])
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = _path(field, exc.absolute_path)
        problem = FieldError(where, exc.message)
        raise ValidationFailed(f"invalid JSON Schema at {where}: {exc.message}", [problem]) from None


def validate(schema: dict[str, Any], instance: Any, prefix: str = "data") -> None:
    """Raise ValidationFailed listing every field path of instance that breaks schema."""
    key = id(schema)
    validator = _VALIDATORS.get(key)
    if validator is None or validator.schema is not schema:
        validator = Draft202012Validator(schema)
        _VALIDATORS[key] = validator
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        fields = [FieldError(_path(prefix, e.absolute_path), e.message) for e in errors]
        summary = "; ".join(f"{f.path}: {f.message}" for f in fields[:5])
        raise ValidationFailed(f"{prefix} is not valid: {summary}", fields)
