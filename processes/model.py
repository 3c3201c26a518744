"""A deployed process as the embedded engine runs it: the checked spec plus what Spiff does not keep.

SpiffWorkflow's parser drops most zeebe extensions (io mappings of events, message correlation keys) and
does not support compensation (SpiffWorkflow 3.2.0 has no compensation events at all). `prepare_model`
reads those from the XML itself: every element's `zeebe:*` extensions, each message's correlation key,
compensation boundary events with their handlers (taken out of the XML Spiff parses, because its boundary
parser refuses them) and compensation throw events (made to wait while the engine runs the handlers).
"""

from __future__ import annotations

import hashlib
from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import IntermediateThrowEvent

from processes.bpmn import NSMAP, BpmnRejected, DeployedProcess, Problem, check_bpmn, zeebe_extensions
from processes.runtime import use_engine_clock


@dataclass(frozen=True)
class Handler:
    """A compensation handler: the service task that undoes an activity."""

    element_id: str
    task_type: str
    retries: int
    extensions: dict[str, Any]


@dataclass
class ProcessModel:
    """A deployment: its content hash, Spiff spec and the zeebe details the engine needs at run time."""

    deployed: DeployedProcess
    content_hash: str
    xml: bytes
    filename: str
    extensions: dict[str, dict[str, Any]] = field(default_factory=dict)  # element id -> zeebe extensions
    names: dict[str, str] = field(default_factory=dict)  # element id -> name
    correlation_keys: dict[str, str] = field(default_factory=dict)  # message name -> correlationKey
    compensation: dict[str, Handler] = field(default_factory=dict)  # activity id -> its handler
    compensation_throws: dict[str, str | None] = field(default_factory=dict)  # throw event id -> activityRef
    inner: dict[str, str] = field(default_factory=dict)  # inner task spec name of a multi-instance -> element id

    @property
    def process_id(self) -> str:
        return self.deployed.process_id

    def name_of(self, element_id: str) -> str:
        return self.names.get(element_id) or element_id

    def element_of(self, spec_name: str) -> str:
        """The BPMN element id behind a task spec name (a multi-instance body's inner task is "<id> [child]")."""
        return self.inner.get(spec_name, spec_name)


class _CompensationThrow:
    """Mixin: a compensation throw event waits (STARTED) until the engine has run the handlers."""

    def _run_hook(self, my_task: Any) -> None:
        return None


_WAITING_THROWS: dict[type[Any], type[Any]] = {}


def _make_waiting(task_spec: Any) -> None:
    cls = type(task_spec)
    waiting = _WAITING_THROWS.get(cls)
    if waiting is None:
        waiting = type(f"Compensation{cls.__name__}", (_CompensationThrow, cls), {})
        _WAITING_THROWS[cls] = waiting
    task_spec.__class__ = waiting


def content_hash(xml: bytes) -> str:
    """The identity of a deployment: the same bytes deploy once."""
    return hashlib.sha256(xml).hexdigest()


def _xp(el: Any, path: str) -> list[Any]:
    return list(el.xpath(path, namespaces=NSMAP))


def _compensation(root: Any, known: Set[str]) -> tuple[dict[str, Handler], dict[str, str | None], list[Problem]]:
    problems: list[Problem] = []
    handlers: dict[str, Handler] = {}
    by_id = {el.get("id"): el for el in root.iter() if isinstance(el.tag, str) and el.get("id")}
    associations = {a.get("sourceRef"): a.get("targetRef") for a in _xp(root, "//bpmn:association")}
    for boundary in _xp(root, "//bpmn:boundaryEvent[bpmn:compensateEventDefinition]"):
        bid, activity = boundary.get("id"), boundary.get("attachedToRef")
        handler = by_id.get(associations.get(bid, ""))
        if handler is None:
            problems.append(Problem(bid, "compensation boundary event has no association to a handler task",
                                    boundary.sourceline))
        elif etree.QName(handler).localname != "serviceTask" or handler.get("isForCompensation") != "true":
            problems.append(Problem(handler.get("id"), "a compensation handler must be a serviceTask with "
                                    'isForCompensation="true"', handler.sourceline))
        else:
            ext = zeebe_extensions(handler)
            definition = ext.get("taskDefinition", {})
            task_type = definition.get("type", "")
            if task_type not in known:
                problems.append(Problem(handler.get("id"), f"unknown task type {task_type!r} for a compensation "
                                        "handler", handler.sourceline))
            retries = str(definition.get("retries", "3"))
            handlers[activity] = Handler(handler.get("id"), task_type, int(retries) if retries.isdigit() else 3,
                                         ext)
        boundary.getparent().remove(boundary)  # Spiff's boundary parser refuses compensation events
    throws: dict[str, str | None] = {}
    for event in _xp(root, "//bpmn:intermediateThrowEvent[bpmn:compensateEventDefinition] | "
                           "//bpmn:endEvent[bpmn:compensateEventDefinition]"):
        ref = _xp(event, "./bpmn:compensateEventDefinition")[0].get("activityRef")
        if ref and ref not in by_id:
            problems.append(Problem(event.get("id"), f"compensation activityRef {ref!r} names no element",
                                    event.sourceline))
        throws[event.get("id")] = ref or None
    return handlers, throws, problems


def prepare_model(xml: bytes, known_task_types: Set[str], filename: str) -> ProcessModel:
    """Check and parse a Zeebe BPMN file for the embedded engine; raise BpmnRejected naming each problem."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as e:
        raise BpmnRejected([Problem(None, f"invalid XML: {e}", e.lineno)]) from None
    handlers, throws, problems = _compensation(root, known_task_types)
    problems += [
        Problem(el.get("id"), f"element id {el.get('id')!r} is reserved by the embedded engine (SpiffWorkflow names "
                "its own internal steps so); rename the element", el.sourceline)
        for el in _xp(root, "//*[@id='Start' or @id='End']")
    ]
    if problems:
        raise BpmnRejected(problems)
    parse_xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8") if handlers else xml
    deployed = check_bpmn(parse_xml, known_task_types, filename=filename)
    specs = [deployed.spec, *deployed.subprocess_specs.values()]
    use_engine_clock(specs)
    for spec in specs:
        for name, task_spec in spec.task_specs.items():
            if name in throws and isinstance(task_spec, (IntermediateThrowEvent, EndEvent)):
                _make_waiting(task_spec)
    model = ProcessModel(deployed, content_hash(xml), xml, filename, compensation=handlers,
                         compensation_throws=throws)
    for el in root.iter():
        if not isinstance(el.tag, str) or not el.get("id"):
            continue
        ext = zeebe_extensions(el)
        if ext:
            model.extensions[el.get("id")] = ext
        if el.get("name"):
            model.names[el.get("id")] = el.get("name")
    for spec in specs:  # a multi-instance element's inner task shares the element's id, name and extensions
        for name, task_spec in spec.task_specs.items():
            element = getattr(task_spec, "bpmn_id", None)
            if element and name != element:
                model.inner[name] = element
                if element in model.extensions:
                    model.extensions[name] = model.extensions[element]
                if element in model.names:
                    model.names[name] = model.names[element]
    for message in _xp(root, "./bpmn:message"):
        subs = _xp(message, "./bpmn:extensionElements/zeebe:subscription")
        if message.get("name") and subs and subs[0].get("correlationKey"):
            model.correlation_keys[message.get("name")] = subs[0].get("correlationKey")
    return model
