"""The compiled schema check (domain/schema_compiled.py) agrees with the full validator on every instance."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from casestream.demo_data import CLAIM_LIVE
from domain import schema as full
from domain.errors import ValidationFailed
from domain.schema_compiled import compile_check

FORMATS = Draft202012Validator.FORMAT_CHECKER

# every keyword compile_check reproduces, each near values that pass and values that do not
SCHEMAS: list[dict[str, Any]] = [
    CLAIM_LIVE["schema"],
    {"type": ["integer", "null"], "minimum": -2, "exclusiveMaximum": 3},
    {"type": "number", "exclusiveMinimum": 0.5, "maximum": 2},
    {"type": "string", "minLength": 1, "maxLength": 3, "pattern": "^[a-c]+$"},
    {"enum": ["a", "b"]},
    {"const": "a"},
    {"format": "date"},
    {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2},
    {"type": "object", "required": ["a"], "minProperties": 1, "maxProperties": 2,
     "properties": {"a": {"type": "boolean"}, "b": {"type": "object", "additionalProperties": {"type": "string"}}},
     "additionalProperties": False},
    {"properties": {"a": True}, "additionalProperties": {"enum": ["x"]}, "title": "annotations only", "$comment": "x"},
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-4, 4) | st.sampled_from([0.5, 1.0, 2.0, 2.5, -2.0, 1e20])
    | st.sampled_from(["", "a", "b", "abc", "abcd", "x", "2026-09-01", "2026-13-01", "POL-1234567", "POL-123",
                       "ab\u0661", "EUR", "storm", "Jan Smit", "J"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["a", "b", "c", "amount", "currency", "category", "policy_number",
                                       "claimant_name", "incident_date", "fraud_score"]), children, max_size=7),
    max_leaves=12,
)


def fully_valid(schema: dict[str, Any], instance: Any) -> bool:
    validator = full.SafeValidator(schema, format_checker=FORMATS)
    return not any(True for _ in validator.iter_errors(instance))


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: str(s.get("title") or s)[:40])
@settings(max_examples=300, deadline=None)
@given(instance=json_values)
def test_the_check_says_valid_exactly_when_the_full_validator_does(schema: dict[str, Any], instance: Any) -> None:
    check = compile_check(schema, full._matches, FORMATS)
    assert check is not None
    assert check(instance) is fully_valid(schema, instance)


def test_claims_of_the_demo_are_checked_by_the_compiled_check() -> None:
    schema = CLAIM_LIVE["schema"]
    check = compile_check(schema, full._matches, FORMATS)
    assert check is not None
    claim = {"policy_number": "POL-1234567", "claimant_name": "Jan Smit", "incident_date": "2026-09-01",
             "amount": 1200, "currency": "EUR", "category": "storm"}
    assert check(claim)
    assert not check({**claim, "policy_number": "POL-123456\u0667"})  # RE2's [0-9] is ASCII, as the full one
    assert not check({**claim, "amount": True})  # a boolean is no number


@pytest.mark.parametrize("schema", [
    {"$ref": "#/$defs/a", "$defs": {"a": {"type": "string"}}},
    {"allOf": [{"type": "string"}]},
    {"if": {"type": "string"}, "then": {"minLength": 2}},
    {"patternProperties": {"^a": {"type": "string"}}},
    {"enum": [1, "a"]},  # jsonschema's equality of numbers and booleans is not reproduced
    {"properties": {"a": {"not": {"type": "string"}}}},
    {"prefixItems": [{"type": "string"}], "items": {"type": "integer"}},
    {"type": "decimal"},
    {"minLength": -1},
    {"uniqueItems": True},
    {"multipleOf": 2},
    False,
])
def test_other_keywords_are_left_to_the_full_validator(schema: Any) -> None:
    assert compile_check(schema, full._matches, FORMATS) is None


def test_an_invalid_instance_still_gets_every_field_named() -> None:
    schema = CLAIM_LIVE["schema"]
    with pytest.raises(ValidationFailed) as refused:
        full.validate(schema, {"policy_number": "nope", "claimant_name": "J", "incident_date": "2026-09-01",
                               "amount": -1, "currency": "EUR", "category": "storm"})
    assert [e.path for e in refused.value.errors] == ["data.amount", "data.claimant_name", "data.policy_number"]
    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    assert full._validator(key)[1] is not None  # the claim's schema is one the fast check covers
