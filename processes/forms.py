"""Camunda forms (form-js JSON) as the JSON Schema a task's completion is validated with and the portal renders.

`form_schema(form)` translates a form-js form (Camunda Modeler's `.form` file, or the JSON of an embedded
`zeebe:userTaskForm`) into a JSON Schema: each input component becomes a property (its `key`, dotted keys nest)
with its type and `validate` rules (required, min/max, minLength/maxLength, pattern, the values of a select, radio,
checklist or taglist as an enum); display-only components (text, image, spacer, ...) add nothing. The form-js JSON
itself is kept under `x-form-js` for a renderer that speaks it. A field with a `conditional.hide` FEEL expression (or
inside a group that has one) is listed under `x-form-conditions` of its object: at completion it is required only
while shown, and dropped while hidden (processes/form_conditions.py). A component this cannot validate is refused with
`FormRejected` naming its key and type, so a deploy fails instead of a task accepting anything.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Final

import orjson
from lxml import etree

from domain.errors import ValidationFailed
from domain.schema import check_schema
from processes.feel import FeelError, compile_feel

__all__ = ["FormLink", "FormRejected", "embedded_forms", "form_schema", "linked_forms"]

ZEEBE_NS: Final = "http://camunda.org/schema/zeebe/1.0"
FORM_JS_KEY: Final = "x-form-js"
CONDITIONS_KEY: Final = "x-form-conditions"  # on an object schema: its fields' `conditional.hide`, see _add
_DISPLAY: Final = frozenset({"text", "html", "image", "spacer", "separator", "button", "iframe", "table",
                             "documentPreview"})
_STRINGS: Final = frozenset({"textfield", "textarea"})
_CHOICE: Final = frozenset({"select", "radio"})
_MULTI: Final = frozenset({"checklist", "taglist"})
_INPUTS: Final = frozenset({*_STRINGS, *_CHOICE, *_MULTI, "number", "checkbox", "datetime"})
_CONTAINERS: Final = frozenset({"group", "dynamiclist"})
_DATE_FORMATS: Final = {"date": "date", "time": "time", "datetime": "date-time"}
_ZONE: Final = "(Z|[+-][0-9]{2}:[0-9]{2})?"
# `format` is only an annotation to the validator: the shape form-js submits is checked by a pattern
_DATE_PATTERNS: Final = {
    "date": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    "time": f"^[0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}})?{_ZONE}$",
    "datetime": f"^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T[0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}}(\\.[0-9]+)?)?{_ZONE}$",
}
_EMAIL: Final = "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"
_PHONE: Final = "^\\+?[0-9 ()./-]{5,}$"


class FormRejected(ValueError):
    """A form this engine cannot validate; the message names the component (key and type)."""


def _name(component: dict[str, Any]) -> str:
    return f"component {component.get('key') or component.get('id') or '?'!r} (type {component.get('type')!r})"


def _number(component: dict[str, Any], rules: dict[str, Any], rule: str) -> float | int | None:
    value = rules.get(rule)
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise FormRejected(f"{_name(component)}: validate.{rule} must be a number, not {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise FormRejected(f"{_name(component)}: validate.{rule} must be a number, not {value!r}") from None
    return int(number) if number.is_integer() else number


def _values(component: dict[str, Any]) -> list[Any] | None:
    """The static values of a choice component (None when they come from a variable: any value is taken)."""
    values = component.get("values")
    if values is None:
        if component.get("valuesKey") or component.get("valuesExpression"):
            return None
        raise FormRejected(f"{_name(component)}: needs `values` (static options) or a valuesKey")
    if not isinstance(values, list) or not all(isinstance(v, dict) and "value" in v for v in values):
        raise FormRejected(f"{_name(component)}: `values` must be a list of {{label, value}}")
    return [v["value"] for v in values]


def _property(component: dict[str, Any]) -> dict[str, Any]:
    kind = component["type"]
    rules = component.get("validate") or {}
    if not isinstance(rules, dict):
        raise FormRejected(f"{_name(component)}: `validate` must be an object")
    prop: dict[str, Any] = {}
    if kind in _STRINGS:
        prop["type"] = "string"
        for rule, keyword in (("minLength", "minLength"), ("maxLength", "maxLength")):
            value = _number(component, rules, rule)
            if value is not None:
                prop[keyword] = int(value)
        pattern = rules.get("pattern") or {"email": _EMAIL, "phone": _PHONE}.get(str(rules.get("validationType")))
        if pattern:
            prop["pattern"] = str(pattern)
    elif kind == "number" and component.get("serializeToString"):  # form-js submits the digits as a string
        if _number(component, rules, "min") is not None or _number(component, rules, "max") is not None:
            raise FormRejected(f"{_name(component)}: min/max cannot be checked on a number serialized to a string")
        prop.update(type="string", pattern="^-?[0-9]+([.][0-9]+)?$")
    elif kind == "number":
        prop["type"] = "integer" if component.get("decimalDigits") == 0 else "number"
        for rule, keyword in (("min", "minimum"), ("max", "maximum")):
            value = _number(component, rules, rule)
            if value is not None:
                prop[keyword] = value
    elif kind == "checkbox":
        prop["type"] = "boolean"
    elif kind == "datetime":
        subtype = str(component.get("subtype") or "date")
        if subtype not in _DATE_FORMATS:
            raise FormRejected(f"{_name(component)}: datetime subtype {subtype!r} is not date, time or datetime")
        prop.update(type="string", format=_DATE_FORMATS[subtype], pattern=_DATE_PATTERNS[subtype])
    elif kind in _CHOICE:
        values = _values(component)
        if values is not None:
            prop["enum"] = values
    else:  # checklist, taglist: several of the values
        values = _values(component)
        prop.update(type="array", uniqueItems=True, items={"enum": values} if values is not None else {})
        if rules.get("required"):
            prop["minItems"] = 1
    if isinstance(component.get("label"), str) and component["label"]:
        prop["title"] = component["label"]
    if isinstance(component.get("description"), str) and component["description"]:
        prop["description"] = component["description"]
    if "defaultValue" in component:
        prop["default"] = component["defaultValue"]
    return prop


def _place(schema: dict[str, Any], path: list[str], prop: dict[str, Any], required: bool) -> None:
    """Put a property at a dotted key's path, creating the objects between."""
    target = schema
    for part in path[:-1]:
        target = target.setdefault("properties", {}).setdefault(part, {"type": "object", "properties": {}})
    target.setdefault("properties", {})[path[-1]] = prop
    if required:
        target.setdefault("required", []).append(path[-1])


def _hide(component: dict[str, Any]) -> str | None:
    """A component's `conditional.hide` FEEL expression, compiled here so a deploy refuses one that cannot run."""
    conditional = component.get("conditional")
    if conditional in (None, {}):
        return None
    hide = conditional.get("hide") if isinstance(conditional, dict) else None
    if not isinstance(hide, str) or not hide.strip():
        raise FormRejected(f"{_name(component)}: `conditional` needs a `hide` FEEL expression")
    try:
        compile_feel(hide)
    except FeelError as exc:
        raise FormRejected(f"{_name(component)}: conditional.hide is not FEEL this engine runs: {exc}") from None
    return hide


def _add(schema: dict[str, Any], components: Any, seen: set[str], hides: tuple[str, ...] = ()) -> None:
    """Add each input component of a list to an object schema; `hides` are the conditions of the groups around."""
    if not isinstance(components, list):
        raise FormRejected("`components` must be a list")
    for component in components:
        if not isinstance(component, dict) or not isinstance(component.get("type"), str):
            raise FormRejected(f"every component needs a `type`; got {component!r:.80}")
        kind = component["type"]
        if kind in _DISPLAY:
            continue
        hide = _hide(component)
        own = (*hides, hide) if hide is not None else hides
        if kind == "group" and not component.get("path"):
            _add(schema, component.get("components", []), seen, own)  # its fields hide with it
            continue
        if kind not in _INPUTS and kind not in _CONTAINERS:
            raise FormRejected(f"{_name(component)}: form-js component type {kind!r} is not supported (supported: "
                               f"{', '.join(sorted(_INPUTS | _CONTAINERS))}; display-only: "
                               f"{', '.join(sorted(_DISPLAY))})")
        key = component.get("path") if kind in _CONTAINERS else component.get("key")
        if not isinstance(key, str) or not key.strip(". "):
            raise FormRejected(f"{_name(component)}: an input component needs a `key` (a container a `path`)")
        if key in seen:
            raise FormRejected(f"{_name(component)}: key {key!r} is used by two components")
        seen.add(key)
        rules = component.get("validate") or {}
        # form-js neither validates nor submits a disabled or read-only field
        required = bool(isinstance(rules, dict) and rules.get("required")) and not any(
            component.get(flag) for flag in ("disabled", "readonly"))
        if kind in _CONTAINERS:
            inner: dict[str, Any] = {"type": "object", "properties": {}}
            _add(inner, component.get("components", []), set())
            prop: dict[str, Any] = inner if kind == "group" else {"type": "array", "items": inner}
            if isinstance(component.get("label"), str) and component["label"]:
                prop["title"] = component["label"]
        else:
            prop = _property(component)
        if own:  # required only while shown, and dropped while hidden: decided on the data (form_conditions.py)
            schema.setdefault(CONDITIONS_KEY, []).append({"path": key.split("."), "hide": list(own),
                                                          "required": required})
        _place(schema, key.split("."), prop, required and not own)


def _translate(form: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": {}}
    _add(schema, form.get("components", []), set())
    _check(schema)  # a pattern that does not compile is refused here, at deploy, not when a task is created
    if isinstance(form.get("id"), str):
        schema["title"] = form["id"]
    schema[FORM_JS_KEY] = form
    return schema


def _check(schema: dict[str, Any]) -> None:
    try:
        check_schema(schema, "form")
    except ValidationFailed as exc:
        raise FormRejected(f"the form's rules are not valid: {exc.detail}") from None


@functools.lru_cache(maxsize=256)
def _cached(canonical: bytes) -> bytes:
    return orjson.dumps(_translate(orjson.loads(canonical)))


def form_schema(form: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a form-js form (a fresh dict each call); FormRejected names the component refused."""
    if not isinstance(form, dict):
        raise FormRejected("a form must be a JSON object with `components`")
    return orjson.loads(_cached(orjson.dumps(form, option=orjson.OPT_SORT_KEYS)))  # type: ignore[no-any-return]


def embedded_forms(xml: bytes) -> dict[str, tuple[int | None, dict[str, Any] | str]]:
    """The `zeebe:userTaskForm` elements of a BPMN file: id -> (line, its form JSON, or why it is not JSON)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError:
        return {}  # the BPMN check reports the XML itself
    found: dict[str, tuple[int | None, dict[str, Any] | str]] = {}
    for el in root.iter(f"{{{ZEEBE_NS}}}userTaskForm"):
        form_id = el.get("id") or ""
        try:
            parsed = json.loads(el.text or "")
        except ValueError as exc:
            found[form_id] = (el.sourceline, f"the embedded form is not JSON: {exc}")
            continue
        found[form_id] = (el.sourceline, parsed if isinstance(parsed, dict) else "the embedded form is not an object")
    return found


@dataclass(frozen=True)
class FormLink:
    """A user task's `zeebe:formDefinition formId`: the element, its line, the form id and how it is bound."""

    element_id: str | None
    line: int | None
    form_id: str
    binding: str  # latest (Zeebe's default), deployment or versionTag
    version_tag: str | None


def linked_forms(xml: bytes) -> list[FormLink]:
    """The `zeebe:formDefinition formId` links of a BPMN file (formKey and externalReference are not links)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError:
        return []  # the BPMN check reports the XML itself
    links: list[FormLink] = []
    for el in root.iter(f"{{{ZEEBE_NS}}}formDefinition"):
        if el.get("formId") is None:
            continue
        holder = el.getparent()  # extensionElements, whose parent is the user task
        task = holder.getparent() if holder is not None else None
        links.append(FormLink(task.get("id") if task is not None else None, el.sourceline, el.get("formId") or "",
                              el.get("bindingType") or "latest", el.get("versionTag")))
    return links
