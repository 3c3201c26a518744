"""form-js `conditional.hide` at task completion: a hidden field is neither required nor submitted (its value is
dropped), a shown required field is required; groups hide their fields; dynamic list items decide each alone."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import ValidationFailed
from processes.form_conditions import submitted
from processes.forms import FormRejected, form_schema

REASON: dict[str, Any] = {"type": "textfield", "key": "reason", "validate": {"required": True, "minLength": 3},
                          "conditional": {"hide": "=approved = true"}}
APPROVED: dict[str, Any] = {"type": "checkbox", "key": "approved"}


def schema_of(*components: dict[str, Any]) -> dict[str, Any]:
    return form_schema({"id": "f", "components": list(components)})


def refused(schema: dict[str, Any], data: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationFailed) as caught:
        submitted(schema, data)
    return {f.path for f in caught.value.errors}


def test_a_shown_conditional_field_is_required_and_a_hidden_one_is_not_and_its_value_dropped() -> None:
    schema = schema_of(APPROVED, REASON)
    assert "required" not in schema  # decided on the data, not fixed in the schema
    assert refused(schema, {"approved": False}) == {"data.reason"}  # shown (not approved): required
    assert refused(schema, {}) == {"data.reason"}
    assert refused(schema, {"approved": False, "reason": "no"}) == {"data.reason"}  # shown: its rules hold
    assert submitted(schema, {"approved": False, "reason": "too risky"}) == {"approved": False, "reason": "too risky"}
    sent = {"approved": True, "reason": 7}  # hidden: a value of the wrong type is dropped, not refused
    assert submitted(schema, sent) == {"approved": True}
    assert sent == {"approved": True, "reason": 7}  # the caller's data is left as it was


def test_a_hidden_group_hides_its_fields_and_a_hidden_container_drops_its_whole_value() -> None:
    schema = schema_of(
        {"type": "checkbox", "key": "company"},
        {"type": "group", "conditional": {"hide": "=not(company)"}, "components": [
            {"type": "textfield", "key": "vat", "validate": {"required": True}}]},
        {"type": "group", "path": "address", "conditional": {"hide": "=company"}, "components": [
            {"type": "textfield", "key": "city", "validate": {"required": True}}]},
    )
    assert refused(schema, {"company": True}) == {"data.vat"}
    assert submitted(schema, {"company": True, "vat": "DE1", "address": {"city": 5}}) == {"company": True,
                                                                                          "vat": "DE1"}
    assert submitted(schema, {"company": False, "vat": 1, "address": {"city": "Oslo"}}) == {
        "company": False, "address": {"city": "Oslo"}}
    assert refused(schema, {"company": False, "address": {}}) == {"data.address.city"}


def test_each_item_of_a_dynamic_list_decides_its_own_fields() -> None:
    schema = schema_of({"type": "dynamiclist", "path": "items", "components": [
        {"type": "checkbox", "key": "gift"},
        {"type": "textfield", "key": "message", "validate": {"required": True},
         "conditional": {"hide": "=gift != true"}}]})
    data = {"items": [{"gift": True, "message": "hi"}, {"gift": False, "message": "dropped"}]}
    assert submitted(schema, data) == {"items": [{"gift": True, "message": "hi"}, {"gift": False}]}
    assert refused(schema, {"items": [{"gift": False}, {"gift": True}]}) == {"data.items[1].message"}


def test_a_condition_that_does_not_compile_is_refused_at_deploy_naming_the_component() -> None:
    with pytest.raises(FormRejected, match=r"'reason' .*conditional\.hide"):
        schema_of({**REASON, "conditional": {"hide": "=approved = = true"}})
    with pytest.raises(FormRejected, match="needs a `hide`"):
        schema_of({**REASON, "conditional": {"show": "=x"}})
