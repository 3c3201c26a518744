"""JSON Schema checks that name the failing field paths."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from domain.errors import FieldError, ValidationFailed


@lru_cache(maxsize=256)
def _validator(schema_json: bytes) -> Draft202012Validator:
    """Compiled validators, keyed by the schema's canonical JSON (definitions are replayed into new dicts)."""
    return Draft202012Validator(orjson.loads(schema_json), format_checker=Draft202012Validator.FORMAT_CHECKER)


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
    validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        fields = [FieldError(_error_path(prefix, e), e.message) for e in errors]
        summary = "; ".join(f"{f.path}: {f.message}" for f in fields[:5])
        raise ValidationFailed(f"{prefix} is not valid: {summary}", fields)
