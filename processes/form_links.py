"""Deploy-time check of a BPMN file's linked forms: each `zeebe:formDefinition formId` must find a deployed form.

Zeebe accepts a link to a form that is not deployed and raises an incident when the user task activates; here the
deploy is refused instead, naming the user task and the form id, so a model never waits on a form nobody deployed
(the binding is still resolved when the task is created: processes/form_registry.py). Bindings as Camunda 8:
`latest` (default) needs some version of the form, deployed before or in the same request; `deployment` needs the
form in the same request; `versionTag` needs a version (deployed before or in the request) with that `versionTag`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from processes.bpmn import Problem
from processes.form_registry import BINDINGS
from processes.forms import FormLink

__all__ = ["link_problems"]


def link_problems(links: Sequence[FormLink], request: Mapping[str, dict[str, Any]],
                  stored: Callable[[str], list[dict[str, Any]]]) -> list[Problem]:
    """A problem per link that no form satisfies: `request` holds the forms of the same deployment (id -> JSON),
    `stored(form_id)` the tenant's (and shipped) stored versions of a form, oldest first."""
    problems: list[Problem] = []
    for link in links:
        message = _unresolved(link, request, stored)
        if message is not None:
            problems.append(Problem(link.element_id, f"zeebe:formDefinition formId {link.form_id!r}: {message}",
                                    link.line))
    return problems


def _unresolved(link: FormLink, request: Mapping[str, dict[str, Any]],
                stored: Callable[[str], list[dict[str, Any]]]) -> str | None:
    if not link.form_id or link.form_id.startswith("="):
        return "must name a deployed form (a form id, not an expression)"
    if link.binding not in BINDINGS:
        return f"bindingType {link.binding!r} is not one of {', '.join(sorted(BINDINGS))}"
    if link.binding == "deployment":
        return None if link.form_id in request else (
            "bindingType deployment needs the form (a .form file with this id) in the same deployment")
    candidates = [*stored(link.form_id), *([request[link.form_id]] if link.form_id in request else [])]
    if link.binding == "versionTag":
        if not link.version_tag:
            return "bindingType versionTag needs a versionTag attribute"
        if not any(form.get("versionTag") == link.version_tag for form in candidates):
            return f"no deployed version of the form has versionTag {link.version_tag!r}"
        return None
    return None if candidates else "no form with this id is deployed (deploy its .form file first, or with this BPMN)"
