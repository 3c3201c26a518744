"""Deploy-time checking of Camunda 8 (Zeebe) BPMN, and parsing it with SpiffWorkflow.

`check_bpmn(xml, known_task_types)` refuses a file with every problem found (each names the element id and
what is wrong) before anything runs: invalid XML, no executable process, service tasks without a known
`zeebe:taskDefinition` type, FEEL outside our subset (processes.feel) in conditions, io mappings, task
headers and other `=`-expressions, message catches without a `zeebe:subscription correlationKey`, timers
without a valid ISO-8601 date/duration/cycle. When those checks pass, the file is parsed by SpiffWorkflow
(XSD-validated, then `BpmnParser` with our zeebe-aware service-task parser), so the returned spec knows each
service task's job type, headers and io mappings.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser, BpmnValidator
from SpiffWorkflow.bpmn.parser.event_parsers import (
    CONDITIONAL_EVENT_XPATH,
    ERROR_EVENT_XPATH,
    ESCALATION_EVENT_XPATH,
    MESSAGE_EVENT_XPATH,
    SIGNAL_EVENT_XPATH,
    TIMER_EVENT_XPATH,
    BoundaryEventParser,
    StartEventParser,
)
from SpiffWorkflow.bpmn.parser.node_parser import DEFAULT_NSMAP
from SpiffWorkflow.bpmn.parser.task_parsers import SubWorkflowParser
from SpiffWorkflow.bpmn.parser.TaskParser import TaskParser
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.defaults import ServiceTask, UserTask
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask as SubWorkflowMixin

from processes.call_activity import CalledSpecs, ZeebeCallActivity
from processes.element_checks import element_problems
from processes.event_subprocesses import arm_event_subprocesses, use_zeebe_end_joins
from processes.feel import Expression, FeelError, compile_feel
from processes.mappings import ZeebeBoundaryEvent, ZeebeSubProcess
from processes.multi_instance import ZeebeParallelMultiInstance, ZeebeSequentialMultiInstance
from processes.zeebe_tasks import DecisionTask, FeelScriptTask, PassThroughManualTask, PassThroughTask, ZeebeStartEvent

__all__ = [
    "BPMN_NS",
    "ZEEBE_NS",
    "BpmnRejected",
    "DeployedProcess",
    "Problem",
    "ZeebeBpmnParser",
    "ZeebeServiceTask",
    "check_bpmn",
    "zeebe_extensions",
]

BPMN_NS: Final = "http://www.omg.org/spec/BPMN/20100524/MODEL"
ZEEBE_NS: Final = "http://camunda.org/schema/zeebe/1.0"
NSMAP: Final[dict[str, str]] = {**DEFAULT_NSMAP, "zeebe": ZEEBE_NS}

_TARGET_PATH: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_DURATION: Final = re.compile(
    r"P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(?:[.,]\d+)?S)?)?"
)
# Elements Zeebe runs as jobs: the tasks here run as service tasks; job-worker events are refused.
_JOB_TASKS: Final = (".//bpmn:serviceTask | .//bpmn:sendTask"
                     " | .//bpmn:scriptTask[bpmn:extensionElements/zeebe:taskDefinition]"
                     " | .//bpmn:businessRuleTask[bpmn:extensionElements/zeebe:taskDefinition]")
_JOB_ELEMENTS: Final = ("intermediateThrowEvent", "endEvent")


# ------------------------------------------------------------------------------------------------- results

@dataclass(frozen=True)
class Problem:
    """One reason a BPMN file is refused. `element_id` is None for document-level problems."""

    element_id: str | None
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.element_id or '<document>'}: {self.message}{where}"


class BpmnRejected(ValueError):
    """The BPMN file cannot be deployed; `problems` lists every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("BPMN rejected:\n" + "\n".join(f"- {p}" for p in problems))


@dataclass(frozen=True)
class DeployedProcess:
    """A checked process: its id, the job types its service tasks use, and SpiffWorkflow's parsed spec."""

    process_id: str
    name: str | None
    task_types: frozenset[str]
    service_tasks: Mapping[str, str]  # element id -> job type
    spec: Any = field(repr=False)  # SpiffWorkflow BpmnProcessSpec
    subprocess_specs: Mapping[str, Any] = field(repr=False)
    expressions: Mapping[str, Expression] = field(repr=False)  # compiled FEEL, keyed by source text


# -------------------------------------------------------------------------------------- zeebe extensions

def _local(el: Any) -> str:
    return str(etree.QName(el).localname)


def zeebe_extensions(node: Any) -> dict[str, Any]:
    """The `zeebe:*` extension elements of a BPMN node as plain (serialisable) data."""
    ext: dict[str, Any] = {}
    for el in node.xpath("./bpmn:extensionElements/zeebe:*", namespaces=NSMAP):
        name = _local(el)
        if name == "ioMapping":
            ext[name] = {
                "inputs": [dict(i.attrib) for i in el.xpath("./zeebe:input", namespaces=NSMAP)],
                "outputs": [dict(o.attrib) for o in el.xpath("./zeebe:output", namespaces=NSMAP)],
            }
        elif name == "taskHeaders":
            ext[name] = {h.get("key"): h.get("value") for h in el.xpath("./zeebe:header", namespaces=NSMAP)}
        elif name == "properties":
            ext[name] = {p.get("name"): p.get("value") for p in el.xpath("./zeebe:property", namespaces=NSMAP)}
        else:
            ext[name] = dict(el.attrib)
    return ext


class ZeebeServiceTask(ServiceTask):  # type: ignore[misc]
    """A service task that knows its Zeebe job type. Spiff leaves it STARTED until completed from outside."""

    def __init__(
        self,
        wf_spec: Any,
        bpmn_id: str,
        task_type: str,
        retries: str | None = None,
        headers: Mapping[str, str] | None = None,
        input_mappings: list[dict[str, str]] | None = None,
        output_mappings: list[dict[str, str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.task_type = task_type
        self.retries = retries
        self.headers = dict(headers or {})
        self.input_mappings = list(input_mappings or [])
        self.output_mappings = list(output_mappings or [])


class ZeebeTaskParser(TaskParser):  # type: ignore[misc]
    """Keeps a task's zeebe extensions in `task_spec.extensions`; reads Zeebe's multi-instance."""

    task: Any

    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        return zeebe_extensions(self.node if node is None else node)

    def _add_multiinstance_task(self, loop_characteristics: Any) -> None:
        found = loop_characteristics.xpath("./bpmn:extensionElements/zeebe:loopCharacteristics", namespaces=NSMAP)
        attrs = dict(found[0].attrib) if found else {}
        if not attrs.get("inputCollection"):
            self.raise_validation_exception("multi-instance needs zeebe:loopCharacteristics inputCollection")
        conditions = loop_characteristics.xpath("./bpmn:completionCondition", namespaces=NSMAP)
        condition = (conditions[0].text or "").strip() or None if conditions else None
        original = self.spec.task_specs.pop(self.task.name)
        cls = (ZeebeSequentialMultiInstance if loop_characteristics.get("isSequential") == "true"
               else ZeebeParallelMultiInstance)
        self.task = cls(self.spec, original.name, "", attrs["inputCollection"], attrs.get("inputElement"),
                        attrs.get("outputCollection"), attrs.get("outputElement"), condition,
                        bpmn_name=original.bpmn_name, description="Multi-instance")
        self._copy_task_attrs(original, loop_characteristics)
        original.completed_event.connect(self.task.merge_child)  # also for instances restored from their events


class ZeebeScriptTaskParser(ZeebeTaskParser):
    """`zeebe:script expression resultVariable`: a FEEL script task."""

    def create_task(self) -> Any:
        if "taskDefinition" in zeebe_extensions(self.node):
            return _job_task(self)
        script = zeebe_extensions(self.node).get("script", {})
        if not script.get("expression") or not script.get("resultVariable"):
            self.raise_validation_exception("script task without zeebe:script expression and resultVariable")
        return self.spec_class(self.spec, self.bpmn_id, expression=script["expression"],
                               result_variable=script["resultVariable"], **self.bpmn_attributes)


class ZeebeBusinessRuleTaskParser(ZeebeTaskParser):
    """`zeebe:calledDecision decisionId resultVariable`: a DMN decision evaluated by the engine."""

    def create_task(self) -> Any:
        if "taskDefinition" in zeebe_extensions(self.node):
            return _job_task(self)
        called = zeebe_extensions(self.node).get("calledDecision", {})
        if not called.get("decisionId") or not called.get("resultVariable"):
            self.raise_validation_exception("business rule task without zeebe:calledDecision decisionId and "
                                            "resultVariable")
        return self.spec_class(self.spec, self.bpmn_id, decision_id=called["decisionId"],
                               result_variable=called["resultVariable"], **self.bpmn_attributes)


class ZeebeStartEventParser(ZeebeTaskParser, StartEventParser):  # type: ignore[misc]
    """A start event that keeps its zeebe extensions (output mappings) and knows error and escalation start
    events (of event sub-processes; SpiffWorkflow's parser takes them for plain start events) and
    `isInterrupting`."""

    def create_task(self) -> Any:
        event_definition = self.get_event_definition(
            [MESSAGE_EVENT_XPATH, SIGNAL_EVENT_XPATH, TIMER_EVENT_XPATH, CONDITIONAL_EVENT_XPATH, ERROR_EVENT_XPATH,
             ESCALATION_EVENT_XPATH])
        task = self._create_task(event_definition)
        task.interrupting = self.node.get("isInterrupting") != "false"
        self.spec.start.connect(task)
        return task


class ZeebeBoundaryEventParser(ZeebeTaskParser, BoundaryEventParser):  # type: ignore[misc]
    """A boundary event that keeps its zeebe extensions (an error boundary's output mappings)."""


class ZeebeSubProcessParser(ZeebeTaskParser, SubWorkflowParser):  # type: ignore[misc]
    """An embedded or event sub-process that keeps its zeebe extensions (io mappings, multi-instance)."""

    def create_task(self) -> Any:
        task = super().create_task()
        task.event_subprocess = self.node.get("triggeredByEvent") == "true"  # see processes/event_subprocesses.py
        return task


class ZeebeCallActivityParser(ZeebeTaskParser):
    """`zeebe:calledElement processId`: the called process is looked up when the call starts."""

    def create_task(self) -> Any:
        called = zeebe_extensions(self.node).get("calledElement", {})
        if not called.get("processId"):
            self.raise_validation_exception("call activity without zeebe:calledElement processId")
        propagate = called.get("propagateAllChildVariables", "true") != "false"
        return self.spec_class(self.spec, self.bpmn_id, called["processId"], propagate_child=propagate,
                               **self.bpmn_attributes)


def _job_task(parser: Any) -> ZeebeServiceTask:
    """A task Zeebe hands to a job worker (service, send, and script or business-rule tasks with a task
    definition): the embedded engine runs each as a service task."""
    ext = zeebe_extensions(parser.node)
    definition = ext.get("taskDefinition", {})
    if not definition.get("type"):
        parser.raise_validation_exception("task without zeebe:taskDefinition type")
    io = ext.get("ioMapping", {})
    return ZeebeServiceTask(
        parser.spec,
        parser.bpmn_id,
        task_type=definition["type"],
        retries=definition.get("retries"),
        headers=ext.get("taskHeaders", {}),
        input_mappings=io.get("inputs", []),
        output_mappings=io.get("outputs", []),
        **parser.bpmn_attributes,
    )


class ZeebeServiceTaskParser(ZeebeTaskParser):
    def create_task(self) -> Any:
        if self.spec_class is not ZeebeServiceTask:
            return _job_task(self)
        ext = zeebe_extensions(self.node)
        definition = ext.get("taskDefinition", {})
        if not definition.get("type"):
            self.raise_validation_exception("service task without zeebe:taskDefinition type")
        io = ext.get("ioMapping", {})
        return self.spec_class(
            self.spec,
            self.bpmn_id,
            task_type=definition["type"],
            retries=definition.get("retries"),
            headers=ext.get("taskHeaders", {}),
            input_mappings=io.get("inputs", []),
            output_mappings=io.get("outputs", []),
            **self.bpmn_attributes,
        )


class ZeebeBpmnParser(BpmnParser):  # type: ignore[misc]
    """SpiffWorkflow's BpmnParser reading service-task types and user-task assignment from the zeebe namespace."""

    OVERRIDE_PARSER_CLASSES: Final = {
        full_tag("serviceTask"): (ZeebeServiceTaskParser, ZeebeServiceTask),
        full_tag("userTask"): (ZeebeTaskParser, UserTask),
        full_tag("task"): (ZeebeTaskParser, PassThroughTask),
        full_tag("sendTask"): (ZeebeServiceTaskParser, ZeebeServiceTask),
        full_tag("manualTask"): (ZeebeTaskParser, PassThroughManualTask),
        full_tag("startEvent"): (ZeebeStartEventParser, ZeebeStartEvent),
        full_tag("scriptTask"): (ZeebeScriptTaskParser, FeelScriptTask),
        full_tag("businessRuleTask"): (ZeebeBusinessRuleTaskParser, DecisionTask),
        full_tag("subProcess"): (ZeebeSubProcessParser, ZeebeSubProcess),
        full_tag("boundaryEvent"): (ZeebeBoundaryEventParser, ZeebeBoundaryEvent),
        full_tag("callActivity"): (ZeebeCallActivityParser, ZeebeCallActivity),
    }

    def __init__(self, validator: Any = None) -> None:
        super().__init__(namespaces=dict(NSMAP), validator=validator)


_validator: BpmnValidator | None = None
# lxml schema objects keep an error log per instance: one deploy at a time uses the shared validator.
_spiff_lock: Final = threading.Lock()


def _bpmn_validator() -> Any:
    global _validator
    if _validator is None:
        _validator = BpmnValidator()  # BPMN 2.0 XSD shipped with SpiffWorkflow; zeebe elements are lax
    return _validator


# ------------------------------------------------------------------------------------------------ timers

def _valid_duration(text: str) -> bool:
    if not _DURATION.fullmatch(text.upper()):
        return False
    try:  # the embedded engine must be able to run it too
        TimerEventDefinition.parse_iso_duration(text)
    except Exception:
        return False
    return True


def _valid_date(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


def _valid_cycle(text: str) -> bool:
    m = re.fullmatch(r"R(\d*)/(.+)", text)
    if not m:
        return False
    parts = m.group(2).split("/")
    if len(parts) == 1:
        ok = _valid_duration(parts[0])
    elif len(parts) == 2:
        ok = (_valid_date(parts[0]) and _valid_duration(parts[1])) or (
            _valid_duration(parts[0]) and _valid_date(parts[1]))
    else:
        ok = False
    if not ok:
        return False
    try:
        TimerEventDefinition.parse_iso_recurring_interval(text)
    except Exception:
        return False
    return True


_TIMER_KINDS: Final = {
    "timeDuration": ("an ISO-8601 duration such as PT48H", _valid_duration),
    "timeDate": ("an ISO-8601 date-time with a zone offset such as 2026-01-01T09:00:00Z", _valid_date),
    "timeCycle": ("an ISO-8601 repeating interval such as R3/PT1H", _valid_cycle),
}


# ------------------------------------------------------------------------------------------------ checker

class _Checker:
    def __init__(self, known_task_types: Set[str]) -> None:
        self.known = known_task_types
        self.problems: list[Problem] = []
        self.expressions: dict[str, Expression] = {}
        self.service_tasks: dict[str, str] = {}

    def problem(self, el: Any, message: str) -> None:
        element_id = el.get("id") if el is not None else None
        line = el.sourceline if el is not None else None
        self.problems.append(Problem(element_id, message, line))

    def feel(self, el: Any, text: str | None, what: str) -> None:
        if text is None or not text.strip() or text.strip() == "=":
            self.problem(el, f"{what} is empty")
            return
        try:
            self.expressions[text] = compile_feel(text)
        except FeelError as e:
            self.problem(el, f"{what}: unsupported FEEL: {e}")

    def xp(self, el: Any, path: str) -> list[Any]:
        return list(el.xpath(path, namespaces=NSMAP))

    def check(self, root: Any) -> Any:
        if root.tag != full_tag("definitions"):
            self.problem(None, f"not a BPMN 2.0 document: the root element is {root.tag!r}, not bpmn:definitions")
            return None
        processes = self.xp(root, "./bpmn:process")
        executable = [p for p in processes if p.get("isExecutable") == "true"]
        if not executable:
            ids = ", ".join(p.get("id") for p in processes) or "none"
            self.problem(root, f'no executable process (a bpmn:process with isExecutable="true"; processes: {ids})')
            return None
        if len(executable) > 1:
            ids = ", ".join(p.get("id") for p in executable)
            self.problem(root, f"more than one executable process ({ids}); deploy one per file")
            return None
        process = executable[0]
        messages = {m.get("id"): m for m in self.xp(root, "./bpmn:message")}
        self.check_jobs(process)
        for el, message in element_problems(process):
            self.problem(el, message)
        self.check_flows(process)
        self.check_io_and_headers(process)
        self.check_messages(process, messages)
        self.check_timers(process)
        self.check_other_expressions(process)
        return process

    def check_jobs(self, process: Any) -> None:
        for task in self.xp(process, _JOB_TASKS):
            definitions = self.xp(task, "./bpmn:extensionElements/zeebe:taskDefinition")
            job_type = definitions[0].get("type") if definitions else None
            if not job_type:
                kind = "service task" if _local(task) == "serviceTask" else _local(task)
                self.problem(task, f"{kind} has no zeebe:taskDefinition type")
                continue
            if job_type.startswith("="):
                self.problem(task, f"job type {job_type!r} is an expression; it must be a fixed known type")
                continue
            if job_type not in self.known:
                known = ", ".join(sorted(self.known)) or "none"
                self.problem(task, f"unknown task type {job_type!r} (known: {known})")
                continue
            self.service_tasks[task.get("id")] = job_type
            retries = definitions[0].get("retries")
            if retries is not None and not retries.startswith("=") and not retries.strip().isdigit():
                self.problem(task, f"retries {retries!r} is not a whole number")
        for tag in _JOB_ELEMENTS:
            for el in self.xp(process, f".//bpmn:{tag}[bpmn:extensionElements/zeebe:taskDefinition]"):
                self.problem(el, f"{tag} as a job worker is not supported by the embedded engine; use a serviceTask")

    def check_flows(self, process: Any) -> None:
        nodes = {el.get("id"): el for el in process.iter() if el.get("id")}
        for flow in self.xp(process, ".//bpmn:sequenceFlow"):
            source = nodes.get(flow.get("sourceRef"))
            for attr in ("sourceRef", "targetRef"):
                if flow.get(attr) not in nodes:
                    self.problem(flow, f"{attr} {flow.get(attr)!r} does not name an element of the process")
            conditions = self.xp(flow, "./bpmn:conditionExpression")
            if not conditions:
                continue
            gateway = source is not None and _local(source) in ("exclusiveGateway", "inclusiveGateway")
            if not gateway:
                self.problem(flow, "a condition is only allowed on a flow leaving an exclusive or inclusive gateway")
            text = (conditions[0].text or "").strip()
            if text and not text.startswith("="):
                self.problem(flow, f"condition {text!r} is not a FEEL expression (Zeebe expressions start with '=')")
                continue
            self.feel(flow, text, "condition")
        for gateway in self.xp(process, ".//bpmn:exclusiveGateway | .//bpmn:inclusiveGateway"):
            outgoing = [f for f in self.xp(process, ".//bpmn:sequenceFlow") if f.get("sourceRef") == gateway.get("id")]
            if len(outgoing) < 2:
                continue
            for flow in outgoing:
                if flow.get("id") != gateway.get("default") and not self.xp(flow, "./bpmn:conditionExpression"):
                    self.problem(flow, f"flow leaving gateway {gateway.get('id')!r} has no condition and is not "
                                       "the gateway's default")

    def check_io_and_headers(self, process: Any) -> None:
        for owner in self.xp(process, ".//*[bpmn:extensionElements/zeebe:ioMapping]"):
            for mapping in self.xp(owner, "./bpmn:extensionElements/zeebe:ioMapping/zeebe:*"):
                kind = _local(mapping)
                if kind not in ("input", "output"):
                    self.problem(owner, f"unknown zeebe:ioMapping entry zeebe:{kind}")
                    continue
                target = mapping.get("target")
                if not target or not _TARGET_PATH.fullmatch(target):
                    self.problem(owner, f"{kind} mapping target {target!r} is not a variable name or path")
                source = mapping.get("source")
                if source is not None and source.strip() and not source.strip().startswith("="):
                    continue  # a static value (Zeebe: a source without '=' is the text itself)
                self.feel(owner, source, f"{kind} mapping source for {target!r}")
        for owner in self.xp(process, ".//*[bpmn:extensionElements/zeebe:taskHeaders]"):
            seen: set[str] = set()
            for header in self.xp(owner, "./bpmn:extensionElements/zeebe:taskHeaders/zeebe:header"):
                key, value = header.get("key"), header.get("value")
                if not key:
                    self.problem(owner, "task header without a key")
                    continue
                if key in seen:
                    self.problem(owner, f"task header {key!r} is defined twice")
                seen.add(key)
                if value is not None and value.startswith("="):
                    self.feel(owner, value, f"task header {key!r}")

    def check_messages(self, process: Any, messages: Mapping[str, Any]) -> None:
        catchers = [
            (el, d.get("messageRef"))
            for el in self.xp(process, ".//bpmn:intermediateCatchEvent | .//bpmn:boundaryEvent")
            for d in self.xp(el, "./bpmn:messageEventDefinition")
        ]
        catchers += [(el, el.get("messageRef")) for el in self.xp(process, ".//bpmn:receiveTask")]
        for el, ref in catchers:
            kind = _local(el)
            if not ref:
                self.problem(el, f"{kind} has no messageRef")
                continue
            message = messages.get(ref)
            if message is None:
                self.problem(el, f"{kind} refers to message {ref!r}, which is not defined")
                continue
            name = message.get("name")
            if not name:
                self.problem(el, f"message {ref!r} has no name")
            elif name.startswith("="):
                self.feel(el, name, f"name of message {ref!r}")
            subs = self.xp(message, "./bpmn:extensionElements/zeebe:subscription")
            key = subs[0].get("correlationKey") if subs else None
            if not key or not key.strip():
                self.problem(el, f"message {ref!r} caught here has no zeebe:subscription correlationKey")
                continue
            self.feel(el, key, f"correlation key of message {ref!r}")
        for start in self.xp(process, ".//bpmn:startEvent[bpmn:messageEventDefinition]"):
            for d in self.xp(start, "./bpmn:messageEventDefinition"):
                ref = d.get("messageRef")
                if not ref or ref not in messages:
                    self.problem(start, f"message start event refers to undefined message {ref!r}")

    def check_timers(self, process: Any) -> None:
        for definition in self.xp(process, ".//bpmn:timerEventDefinition"):
            event = definition.getparent()
            values = [(_local(v), (v.text or "").strip()) for v in definition if _local(v) in _TIMER_KINDS]
            if len(values) != 1:
                self.problem(event, "a timer needs exactly one of timeDate, timeDuration or timeCycle")
                continue
            kind, text = values[0]
            if text.startswith("="):
                self.feel(event, text, f"timer {kind}")
                continue
            expected, valid = _TIMER_KINDS[kind]
            if not valid(text):
                self.problem(event, f"timer {kind} {text!r} is not {expected}")

    def check_other_expressions(self, process: Any) -> None:
        """Any other zeebe attribute written as an expression ('=...'), e.g. assignee or inputCollection."""
        handled = {("input", "source"), ("output", "source"), ("header", "value"), ("taskDefinition", "type")}
        for el in self.xp(process, ".//zeebe:*"):
            owner = next((a for a in el.iterancestors() if a.get("id")), process)
            for attr, value in el.attrib.items():
                if (_local(el), attr) not in handled and value.startswith("="):
                    self.feel(owner, value, f"zeebe:{_local(el)} {attr}")
        for condition in self.xp(process, ".//bpmn:multiInstanceLoopCharacteristics/bpmn:completionCondition"):
            owner = condition.getparent().getparent()
            self.feel(owner, (condition.text or "").strip(), "multi-instance completionCondition")


def _embedded_specs(spiff: Any, process_id: str) -> dict[str, Any]:
    """The specs of the sub-processes within a process (and within those); called processes are found later."""
    found: dict[str, Any] = {}
    pending = [spiff.get_spec(process_id)]
    while pending:
        for task_spec in pending.pop().task_specs.values():
            if isinstance(task_spec, SubWorkflowMixin) and not isinstance(task_spec, ZeebeCallActivity):
                name = task_spec.spec
                if name not in found:
                    found[name] = spiff.get_spec(name)
                    pending.append(found[name])
    return found


def _spiff_problem(e: Exception, root: Any) -> Problem:
    if isinstance(e, ValidationException):
        line = e.line_number if isinstance(e.line_number, int) else None
        message = str(e.args[0]) if e.args else str(e)
        element_id = e.id or None
        if element_id is None and line is not None:  # XSD errors carry only a line: name the element on it
            element_id = next((el.get("id") for el in root.iter() if el.sourceline == line and el.get("id")), None)
        return Problem(element_id, f"SpiffWorkflow: {message}", line)
    return Problem(None, f"SpiffWorkflow could not parse the process: {type(e).__name__}: {e}")


def check_bpmn(xml: bytes, known_task_types: Set[str], *, filename: str | None = None) -> DeployedProcess:
    """Check a Zeebe-dialect BPMN file and parse it with SpiffWorkflow; raise BpmnRejected with every problem."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        tree = etree.ElementTree(etree.fromstring(xml, parser))
    except etree.XMLSyntaxError as e:
        raise BpmnRejected([Problem(None, f"invalid XML: {e}", e.lineno)]) from None
    if tree.docinfo.doctype:
        raise BpmnRejected([Problem(None, "a DOCTYPE is not allowed in a BPMN file")])
    checker = _Checker(known_task_types)
    process = checker.check(tree.getroot())
    if checker.problems or process is None:
        raise BpmnRejected(checker.problems)
    process_id = process.get("id")
    try:
        with _spiff_lock:
            spiff = ZeebeBpmnParser(validator=_bpmn_validator())
            spiff.add_bpmn_xml(tree, filename=filename)
            spec = spiff.get_spec(process_id)
            subprocess_specs = CalledSpecs(_embedded_specs(spiff, process_id))
            use_zeebe_end_joins([spec, *subprocess_specs.values()])
            arm_event_subprocesses([spec, *subprocess_specs.values()])
    except Exception as e:  # SpiffWorkflow raises ValidationException and, on odd input, anything else
        raise BpmnRejected([_spiff_problem(e, tree.getroot())]) from e
    return DeployedProcess(
        process_id=process_id,
        name=process.get("name"),
        task_types=frozenset(checker.service_tasks.values()),
        service_tasks=dict(checker.service_tasks),
        spec=spec,
        subprocess_specs=subprocess_specs,
        expressions=dict(checker.expressions),
    )
