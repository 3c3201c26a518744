"""Camunda forms (form-js JSON) translated into the JSON Schema a task completion is validated with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from domain.errors import ValidationFailed
from domain.schema import validate
from processes.forms import FORM_JS_KEY, FormRejected, embedded_forms, form_schema


def schema_of(*components: dict[str, Any]) -> dict[str, Any]:
    return form_schema({"id": "f", "schemaVersion": 16, "components": list(components)})


def refused(schema: dict[str, Any], data: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationFailed) as caught:
        validate(schema, data)
    return {f.path for f in caught.value.errors}


def test_textfield_and_textarea_take_required_lengths_and_pattern() -> None:
    schema = schema_of(
        {"type": "textfield", "key": "code", "label": "Code",
         "validate": {"required": True, "minLength": 2, "maxLength": 4, "pattern": "^[A-Z]+$"}},
        {"type": "textarea", "key": "note", "validate": {"maxLength": 5}},
        {"type": "textfield", "key": "mail", "validate": {"validationType": "email"}},
    )
    assert schema["properties"]["code"] == {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[A-Z]+$",
                                            "title": "Code"}
    assert schema["required"] == ["code"]
    validate(schema, {"code": "AB", "note": "short", "mail": "a@b.io"})
    assert refused(schema, {}) == {"data.code"}
    assert refused(schema, {"code": "A"}) == {"data.code"}
    assert refused(schema, {"code": "ABCDE"}) == {"data.code"}
    assert refused(schema, {"code": "ab"}) == {"data.code"}
    assert refused(schema, {"code": "AB", "note": "too long"}) == {"data.note"}
    assert refused(schema, {"code": "AB", "mail": "nope"}) == {"data.mail"}


def test_number_takes_min_max_and_integers_when_no_decimals() -> None:
    schema = schema_of({"type": "number", "key": "amount", "validate": {"min": 1, "max": "100"}},
                       {"type": "number", "key": "count", "decimalDigits": 0})
    assert schema["properties"]["amount"] == {"type": "number", "minimum": 1, "maximum": 100}
    validate(schema, {"amount": 50.5, "count": 3})
    assert refused(schema, {"amount": 0}) == {"data.amount"}
    assert refused(schema, {"amount": 101}) == {"data.amount"}
    assert refused(schema, {"amount": "ten"}) == {"data.amount"}
    assert refused(schema, {"count": 1.5}) == {"data.count"}
    digits = schema_of({"type": "number", "key": "big", "serializeToString": True})
    validate(digits, {"big": "12345678901234567890.5"})
    assert refused(digits, {"big": "12a"}) == {"data.big"}
    with pytest.raises(FormRejected, match=r"'big' .*serialized to a string"):
        schema_of({"type": "number", "key": "big", "serializeToString": True, "validate": {"min": 1}})


def test_checkbox_is_a_boolean() -> None:
    schema = schema_of({"type": "checkbox", "key": "ok", "validate": {"required": True}})
    validate(schema, {"ok": False})
    assert refused(schema, {"ok": "yes"}) == {"data.ok"}
    assert refused(schema, {}) == {"data.ok"}


def test_select_and_radio_allow_only_their_values_and_dynamic_values_allow_any() -> None:
    values = [{"label": "Low", "value": "low"}, {"label": "High", "value": "high"}]
    schema = schema_of({"type": "select", "key": "risk", "values": values},
                       {"type": "radio", "key": "pick", "values": values},
                       {"type": "select", "key": "free", "valuesKey": "options"})
    assert schema["properties"]["risk"] == {"enum": ["low", "high"]}
    assert schema["properties"]["free"] == {}
    validate(schema, {"risk": "low", "pick": "high", "free": "anything"})
    assert refused(schema, {"risk": "medium"}) == {"data.risk"}
    assert refused(schema, {"pick": 3}) == {"data.pick"}


def test_checklist_and_taglist_are_arrays_of_their_values_required_means_one() -> None:
    values = [{"label": "A", "value": "a"}, {"label": "B", "value": "b"}]
    schema = schema_of({"type": "checklist", "key": "docs", "values": values, "validate": {"required": True}},
                       {"type": "taglist", "key": "tags", "values": values})
    validate(schema, {"docs": ["a", "b"], "tags": []})
    assert refused(schema, {"docs": []}) == {"data.docs"}
    assert refused(schema, {"docs": ["c"]}) == {"data.docs[0]"}
    assert refused(schema, {"docs": ["a", "a"]}) == {"data.docs"}


def test_datetime_subtypes_are_string_formats() -> None:
    schema = schema_of({"type": "datetime", "key": "on", "subtype": "date"},
                       {"type": "datetime", "key": "at", "subtype": "datetime"},
                       {"type": "datetime", "key": "time", "subtype": "time"})
    assert [schema["properties"][k]["format"] for k in ("on", "at", "time")] == ["date", "date-time", "time"]
    validate(schema, {"on": "2026-12-07", "at": "2026-12-07T22:15:00.000Z", "time": "22:15"})
    validate(schema, {"at": "2026-12-07T22:15+01:00"})
    assert refused(schema, {"on": 20260101}) == {"data.on"}
    assert refused(schema, {"on": "7 Dec 2026", "at": "2026-12-07", "time": "late"}) == {"data.on", "data.at",
                                                                                          "data.time"}


def test_groups_flatten_or_nest_by_path_dotted_keys_nest_and_display_components_add_nothing() -> None:
    schema = schema_of(
        {"type": "text", "text": "# Heading"},
        {"type": "group", "label": "Plain", "components": [{"type": "textfield", "key": "a"}]},
        {"type": "group", "path": "address", "components": [
            {"type": "textfield", "key": "city", "validate": {"required": True}}]},
        {"type": "textfield", "key": "person.name", "validate": {"required": True}},
        {"type": "dynamiclist", "path": "items", "components": [{"type": "number", "key": "qty"}]},
    )
    assert set(schema["properties"]) == {"a", "address", "person", "items"}
    assert schema["properties"]["address"]["required"] == ["city"]
    assert schema["properties"]["person"]["required"] == ["name"]
    validate(schema, {"a": "x", "address": {"city": "Oslo"}, "person": {"name": "N"}, "items": [{"qty": 1}]})
    assert refused(schema, {"address": {}, "person": {"name": "N"}}) == {"data.address.city"}
    assert refused(schema, {"person": {"name": "N"}, "items": [{"qty": "x"}]}) == {"data.items[0].qty"}


def test_the_form_js_json_is_kept_for_a_renderer() -> None:
    form = {"id": "f", "components": [{"type": "textfield", "key": "a"}]}
    assert form_schema(form)[FORM_JS_KEY] == form


@pytest.mark.parametrize(("component", "named"), [
    ({"type": "filepicker", "key": "upload"}, "'upload' (type 'filepicker')"),
    ({"type": "expression", "key": "total"}, "'total' (type 'expression')"),
    ({"type": "textfield"}, "needs a `key`"),
    ({"type": "select", "key": "s"}, "'s' (type 'select'): needs `values`"),
    ({"type": "number", "key": "n", "validate": {"min": "lots"}}, "'n' (type 'number'): validate.min"),
    ({"type": "datetime", "key": "d", "subtype": "week"}, "'d' (type 'datetime')"),
    ({"type": "textfield", "key": "p", "validate": {"pattern": "(?<=x)y"}}, "pattern"),
])
def test_unsupported_components_and_bad_rules_are_refused_naming_the_component(
        component: dict[str, Any], named: str) -> None:
    with pytest.raises(FormRejected) as caught:
        schema_of(component)
    assert named in str(caught.value)


def test_two_components_with_one_key_are_refused() -> None:
    with pytest.raises(FormRejected, match="'a' is used by two"):
        schema_of({"type": "textfield", "key": "a"}, {"type": "number", "key": "a"})


def test_embedded_user_task_forms_are_read_from_the_bpmn() -> None:
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="D">
  <bpmn:process id="p"><bpmn:extensionElements>
    <zeebe:userTaskForm id="UserTaskForm_1">{"components": [{"type": "checkbox", "key": "ok"}]}</zeebe:userTaskForm>
    <zeebe:userTaskForm id="UserTaskForm_2">not json</zeebe:userTaskForm>
  </bpmn:extensionElements></bpmn:process>
</bpmn:definitions>"""
    found = embedded_forms(xml)
    assert found["UserTaskForm_1"] == (5, {"components": [{"type": "checkbox", "key": "ok"}]})
    line, problem = found["UserTaskForm_2"]
    assert line == 6 and isinstance(problem, str) and "not JSON" in problem


def test_the_forms_embedded_in_camundas_tutorial_models_translate() -> None:
    models = Path(__file__).resolve().parents[1] / "data" / "camunda_models"
    answer = embedded_forms((models / "tutorials_enforcing-sla.bpmn").read_bytes())["userTaskForm_06crl4e"][1]
    assert isinstance(answer, dict)
    schema = form_schema(answer)
    assert set(schema["properties"]) == {"inquiry", "answer", "key"}
    assert schema["required"] == ["answer", "key"]
    assert refused(schema, {"answer": "we fixed it"}) == {"data.key"}
    for path in models.glob("*.bpmn"):
        for form_id, (_line, form) in embedded_forms(path.read_bytes()).items():
            assert isinstance(form, dict), (path.name, form_id)
            form_schema(form)


def test_disabled_and_read_only_fields_are_never_required() -> None:
    schema = schema_of({"type": "textfield", "key": "a", "disabled": True, "validate": {"required": True}},
                       {"type": "textfield", "key": "b", "readonly": True, "validate": {"required": True}})
    assert "required" not in schema
    validate(schema, {})
