"""Deploy-time checking of Camunda 8 (Zeebe) BPMN, and parsing it with SpiffWorkflow.

`check_bpmn(xml, known_task_types)` refuses a file with every problem found (each names the element id and
what is wrong) before anything runs: invalid XML, no executable process, service tasks without a known
`zeebe:taskDefinition` type, FEEL outside our subset (processes.feel) in conditions, io mappings, task
headers and other `=`-expressions, message catches without a `zeebe:subscription correlationKey`, timers
without a valid ISO-8601 date/duration/cycle. When those checks pass, the file is parsed by SpiffWorkflow
(XSD-validated, then `BpmnParser` with our zeebe-aware parsers), so the returned spec knows each service
task's job type, headers and io mappings. Elements Zeebe defines through its extensions get our task specs:
FEEL script tasks and DMN business-rule tasks (processes/zeebe_tasks.py), multi-instance
(processes/multi_instance.py), call activities (processes/call_activity.py), event sub-processes
(processes/event_subprocesses.py), sub-process and error-boundary mappings (processes/mappings.py); the
elements the engine does not run are refused in Camunda's terms by processes/element_checks.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from lxml import etree
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from processes.call_activity import CalledSpecs
from processes.element_checks import element_problems
from processes.event_subprocesses import arm_event_subprocesses, use_zeebe_end_joins
from processes.feel import Expression, FeelError, compile_feel
from processes.zeebe_parser import ZeebeBpmnParser, ZeebeServiceTask, bpmn_validator, embedded_specs, spiff_lock
from processes.zeebe_xml import BPMN_NS, NSMAP, ZEEBE_NS, zeebe_extensions
from processes.zeebe_xml import local_name as _local

__all__ = [
    "BPMN_NS",
    "NSMAP",
    "ZEEBE_NS",
    "BpmnRejected",
    "DeployedProcess",
    "Problem",
    "ZeebeBpmnParser",
    "ZeebeServiceTask",
    "check_bpmn",
    "zeebe_extensions",
]


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
        with spiff_lock:
            spiff = ZeebeBpmnParser(validator=bpmn_validator())
            spiff.add_bpmn_xml(tree, filename=filename)
            spec = spiff.get_spec(process_id)
            subprocess_specs = CalledSpecs(embedded_specs(spiff, process_id))
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
