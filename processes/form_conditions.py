"""A Camunda form's conditions at task completion: what form-js would submit, and whether it is complete.

A field with a `conditional.hide` FEEL expression (listed by processes/forms.py under `x-form-conditions` of its
object schema) is hidden when any of its expressions (its own, and those of the groups around it) is `true` against
the submitted data: form-js then neither validates nor submits it, so its value is dropped and it is not required. A
shown field is required when its form says so. Inside a group with a path or a dynamic list's item, the names of
that object are seen over the whole form's data. Only the submitted data is seen: process variables the form does
not submit are not in the expression's context.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from domain.errors import FieldError, ValidationFailed
from domain.schema import validate
from processes.feel import Expression, compile_feel
from processes.forms import CONDITIONS_KEY

__all__ = ["submitted"]


@functools.lru_cache(maxsize=1024)
def _compiled(text: str) -> Expression:
    return compile_feel(text)  # compiled when the form was deployed: a failure here is a bug, said loudly


def _has_conditions(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    if CONDITIONS_KEY in schema:
        return True
    inner = [*(schema.get("properties") or {}).values(), schema.get("items")]
    return any(_has_conditions(s) for s in inner)


def submitted(schema: dict[str, Any], data: dict[str, Any], prefix: str = "data") -> dict[str, Any]:
    """The data without the fields its conditions hide, valid against the schema with each shown conditional field
    required as its form says; ValidationFailed names every failing field."""
    if not _has_conditions(schema):
        validate(schema, data, prefix)
        return data
    kept = copy.deepcopy(data)  # the caller's data stays as sent
    missing: list[FieldError] = []
    _apply(schema, kept, {}, prefix, missing)
    errors: list[FieldError] = []
    try:
        validate(schema, kept, prefix)
    except ValidationFailed as exc:
        errors = list(exc.errors)
    named = {e.path for e in errors}
    errors += [e for e in missing if e.path not in named]
    if errors:
        errors.sort(key=lambda e: e.path)
        summary = "; ".join(f"{e.path}: {e.message}" for e in errors[:5])
        raise ValidationFailed(f"{prefix} is not valid: {summary}", errors)
    return kept


def _apply(schema: dict[str, Any], obj: dict[str, Any], outer: dict[str, Any], path: str,
           missing: list[FieldError]) -> None:
    """Drop the hidden fields of one object (and of the objects within), noting the shown required ones absent."""
    context = {**outer, **obj}
    for entry in schema.get(CONDITIONS_KEY, []):
        parts: list[str] = entry["path"]
        if any(_compiled(text).test(context) for text in entry["hide"]):
            _drop(obj, parts)
        elif entry["required"] and _get(obj, parts) is None:
            missing.append(FieldError(".".join([path, *parts]), "is required (its form shows it)"))
    for name, prop in (schema.get("properties") or {}).items():
        value = obj.get(name)
        if isinstance(prop, dict) and isinstance(value, dict):
            _apply(prop, value, context, f"{path}.{name}", missing)
        elif isinstance(prop, dict) and isinstance(value, list) and isinstance(prop.get("items"), dict):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    _apply(prop["items"], item, context, f"{path}.{name}[{i}]", missing)


def _get(obj: dict[str, Any], parts: list[str]) -> Any:
    for part in parts:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)  # type: ignore[assignment]
    return obj


def _drop(obj: dict[str, Any], parts: list[str]) -> None:
    parent = _get(obj, parts[:-1]) if len(parts) > 1 else obj
    if isinstance(parent, dict):
        parent.pop(parts[-1], None)
