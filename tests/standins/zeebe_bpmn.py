"""BPMN for the Zeebe gateway STAND-IN: the graph of a deployed process, read after our deploy-time checks.

Part of the stand-in (tests/standins/zeebe_gateway.py, semantics in tests/standins/zeebe_model.py); not Zeebe.
It accepts none start and end events, service tasks, exclusive gateways, message intermediate catch events and
error boundary events, and refuses any other element naming it.
"""

from __future__ import annotations

from collections.abc import Iterator, Set
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from processes.bpmn import NSMAP, BpmnRejected, Problem, check_bpmn
from processes.feel import Expression, compile_feel

_RUNNABLE = {"startEvent", "endEvent", "serviceTask", "exclusiveGateway", "intermediateCatchEvent", "boundaryEvent"}


class _AnyTaskType(Set[str]):
    """Zeebe accepts any job type: the deploy check is asked with this 'every type' set."""

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@dataclass
class Element:
    """One flow node of a deployed process, with what the stand-in needs to run it."""

    id: str
    kind: str
    outgoing: list[str] = field(default_factory=list)  # flow ids
    job_type: str = ""
    retries: int = 3
    headers: dict[str, str] = field(default_factory=dict)
    inputs: list[tuple[Expression, str]] = field(default_factory=list)
    outputs: list[tuple[Expression, str]] = field(default_factory=list)
    default_flow: str | None = None
    message_name: str = ""
    correlation_key: Expression | None = None
    attached_to: str | None = None
    error_code: str | None = None  # boundary: None catches every error


@dataclass
class Flow:
    id: str
    target: str
    condition: Expression | None


@dataclass
class Definition:
    """A deployed process version."""

    key: int
    process_id: str
    version: int
    resource_name: str
    tenant: str
    elements: dict[str, Element]
    flows: dict[str, Flow]
    start: str


def _local_name(el: Any) -> str:
    return str(etree.QName(el).localname)


def _mappings(node: Any, kind: str) -> list[tuple[Expression, str]]:
    path = f"./bpmn:extensionElements/zeebe:ioMapping/zeebe:{kind}"
    return [(compile_feel(m.get("source")), m.get("target")) for m in node.xpath(path, namespaces=NSMAP)]


def parse_definition(xml: bytes, key: int, version: int, resource_name: str, tenant: str) -> Definition:
    """Check with processes.bpmn (any job type allowed, as in Zeebe), then read the graph the stand-in runs."""
    deployed = check_bpmn(xml, _AnyTaskType(), filename=resource_name)
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    process = root.xpath(f"./bpmn:process[@id='{deployed.process_id}']", namespaces=NSMAP)[0]
    messages = {m.get("id"): m for m in root.xpath("./bpmn:message", namespaces=NSMAP)}
    errors = {e.get("id"): e.get("errorCode") for e in root.xpath("./bpmn:error", namespaces=NSMAP)}
    elements: dict[str, Element] = {}
    flows: dict[str, Flow] = {}
    problems: list[Problem] = []
    for node in process:
        if not isinstance(node.tag, str) or node.get("id") is None:
            continue
        kind = _local_name(node)
        if kind == "sequenceFlow":
            condition = node.xpath("./bpmn:conditionExpression", namespaces=NSMAP)
            flows[node.get("id")] = Flow(
                node.get("id"), node.get("targetRef"), compile_feel(condition[0].text) if condition else None
            )
            continue
        if kind not in _RUNNABLE:
            problems.append(Problem(node.get("id"), f"the Zeebe stand-in does not run {kind} elements"))
            continue
        definitions = [_local_name(d) for d in node if isinstance(d.tag, str) and d.tag.endswith("EventDefinition")]
        element = Element(node.get("id"), kind, default_flow=node.get("default"), attached_to=node.get("attachedToRef"))
        if kind == "serviceTask":
            task = node.xpath("./bpmn:extensionElements/zeebe:taskDefinition", namespaces=NSMAP)[0]
            element.job_type, element.retries = task.get("type"), int(task.get("retries") or 3)
            element.headers = {
                h.get("key"): h.get("value") or ""
                for h in node.xpath("./bpmn:extensionElements/zeebe:taskHeaders/zeebe:header", namespaces=NSMAP)
            }
            element.inputs, element.outputs = _mappings(node, "input"), _mappings(node, "output")
        elif kind == "intermediateCatchEvent" and definitions == ["messageEventDefinition"]:
            message = messages[node.xpath("./bpmn:messageEventDefinition", namespaces=NSMAP)[0].get("messageRef")]
            subscription = message.xpath("./bpmn:extensionElements/zeebe:subscription", namespaces=NSMAP)[0]
            element.message_name = message.get("name")
            element.correlation_key = compile_feel(subscription.get("correlationKey"))
        elif kind == "boundaryEvent" and definitions == ["errorEventDefinition"]:
            ref = node.xpath("./bpmn:errorEventDefinition", namespaces=NSMAP)[0].get("errorRef")
            element.error_code = errors.get(ref) if ref else None
        elif definitions or kind in ("intermediateCatchEvent", "boundaryEvent"):
            problems.append(Problem(node.get("id"), f"the Zeebe stand-in does not run {kind} with {definitions}"))
        elements[element.id] = element
    for flow_node in process.xpath("./bpmn:sequenceFlow", namespaces=NSMAP):
        source = elements.get(flow_node.get("sourceRef"))
        if source is not None:
            source.outgoing.append(flow_node.get("id"))
    starts = [e.id for e in elements.values() if e.kind == "startEvent"]
    if len(starts) != 1:
        problems.append(Problem(deployed.process_id, f"the Zeebe stand-in needs exactly one start event, not {starts}"))
    if problems:
        raise BpmnRejected(problems)
    return Definition(key, deployed.process_id, version, resource_name, tenant, elements, flows, starts[0])
