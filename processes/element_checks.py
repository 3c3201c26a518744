"""Deploy-time checks of the BPMN elements themselves, in Camunda 8's terms, before SpiffWorkflow parses them.

Each supported element must carry the zeebe extension it runs on (a script task its `zeebe:script`, a call
activity its `zeebe:calledElement`, ...); an element the embedded engine does not run is refused by its BPMN
name and what to use instead, never with SpiffWorkflow's wording. docs/processes.md has the full table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from lxml import etree

__all__ = ["UNSUPPORTED", "element_problems"]

ZEEBE: Final = "{http://camunda.org/schema/zeebe/1.0}"

# element (or event definition) -> why it is refused; the text is shown after the element id
UNSUPPORTED: Final[dict[str, str]] = {
    "complexGateway": "a complex gateway is not supported (Camunda 8 does not run it either); use an inclusive "
                      "gateway",
    "transaction": "a transaction sub-process is not supported by Camunda 8; use an embedded sub-process with "
                   "compensation",
    "adHocSubProcess": "an ad-hoc sub-process is not supported by the embedded engine",
    "standardLoopCharacteristics": "a standard loop is not supported by Camunda 8; use multi-instance "
                                   "(zeebe:loopCharacteristics)",
    "conditionalEventDefinition": "a conditional event is not supported by the embedded engine",
    "linkEventDefinition": "a link event is not supported by the embedded engine; draw the sequence flow",
    "cancelEventDefinition": "a cancel event is not supported by Camunda 8",
    "dataStoreReference": "a data store is not supported by Camunda 8",
}


def _local(el: Any) -> str:
    return str(etree.QName(el).localname)


def _zeebe(el: Any, name: str) -> Any:
    found = el.find(f"./{{*}}extensionElements/{ZEEBE}{name}")
    return found


def element_problems(process: Any) -> Iterator[tuple[Any, str]]:
    """(element, message) for each element of the process the embedded engine cannot run as written."""
    for el in process.iter():
        if not isinstance(el.tag, str) or not el.tag.startswith("{http://www.omg.org/spec/BPMN/20100524/MODEL}"):
            continue
        kind = _local(el)
        if kind in UNSUPPORTED:
            owner = el if el.get("id") else el.getparent()
            yield owner, UNSUPPORTED[kind]
        elif kind == "scriptTask":
            yield from _script(el)
        elif kind == "businessRuleTask":
            yield from _business_rule(el)
        elif kind == "callActivity":
            yield from _call(el)
        elif kind == "multiInstanceLoopCharacteristics":
            yield from _multi_instance(el)
        elif kind == "signalEventDefinition":
            yield from _signal(el, process)


def _script(el: Any) -> Iterator[tuple[Any, str]]:
    if _zeebe(el, "taskDefinition") is not None:
        return  # a job worker script task: refused by the job checks
    script = _zeebe(el, "script")
    if script is None:
        language = el.get("scriptFormat")
        detail = f" (a bpmn:script in {language} is Camunda 7)" if language else ""
        yield el, f"script task without zeebe:script expression and resultVariable{detail}"
        return
    if not (script.get("expression") or "").strip().startswith("="):
        yield el, "zeebe:script expression must be a FEEL expression starting with '='"
    if not script.get("resultVariable"):
        yield el, "zeebe:script has no resultVariable"


def _business_rule(el: Any) -> Iterator[tuple[Any, str]]:
    if _zeebe(el, "taskDefinition") is not None:
        return
    called = _zeebe(el, "calledDecision")
    if called is None:
        yield el, "business rule task without zeebe:calledDecision decisionId and resultVariable"
        return
    decision = called.get("decisionId") or ""
    if not decision or decision.startswith("="):
        yield el, f"zeebe:calledDecision decisionId {decision!r} must name a deployed decision (not an expression)"
    if not called.get("resultVariable"):
        yield el, "zeebe:calledDecision has no resultVariable"


def _call(el: Any) -> Iterator[tuple[Any, str]]:
    called = _zeebe(el, "calledElement")
    process_id = called.get("processId") if called is not None else None
    if not process_id:
        yield el, "call activity without zeebe:calledElement processId"
    elif process_id.startswith("="):
        yield el, f"zeebe:calledElement processId {process_id!r} is an expression; name the process"


def _multi_instance(el: Any) -> Iterator[tuple[Any, str]]:
    owner = el.getparent()
    loop = _zeebe(el, "loopCharacteristics")
    if loop is None or not loop.get("inputCollection"):
        cardinality = el.find("./{*}loopCardinality") is not None
        detail = " (loopCardinality is Camunda 7)" if cardinality else ""
        yield owner, f"multi-instance needs zeebe:loopCharacteristics inputCollection{detail}"
        return
    if not loop.get("inputCollection", "").startswith("="):
        yield owner, "zeebe:loopCharacteristics inputCollection must be a FEEL expression starting with '='"
    if bool(loop.get("outputCollection")) != bool(loop.get("outputElement")):
        yield owner, "zeebe:loopCharacteristics needs both outputCollection and outputElement, or neither"


def _signal(el: Any, process: Any) -> Iterator[tuple[Any, str]]:
    owner = el.getparent()
    ref = el.get("signalRef")
    root = process.getroottree().getroot()
    signal = next((s for s in root.iterfind("{*}signal") if s.get("id") == ref), None) if ref else None
    name = (signal.get("name") or "").strip() if signal is not None else ""
    if not ref or signal is None:
        yield owner, "signal event without a signalRef to a bpmn:signal (Camunda 8 needs a named signal)"
    elif not name:
        yield owner, f"bpmn:signal {ref!r} has no name"
    elif name.startswith("="):
        yield owner, f"signal name {name!r} is an expression; name the signal"
