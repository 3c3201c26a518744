"""SpiffWorkflow's BPMN parser reading the Camunda 8 (Zeebe) dialect into our task specs.

`ZeebeBpmnParser` maps each BPMN element to a parser and spec that know its zeebe extensions: job tasks
(service, send, and script or business-rule tasks with a task definition), FEEL script and DMN business-rule
tasks, pass-through tasks, start events (error and escalation starts, output mappings), boundary events,
sub-processes (mappings, event sub-processes), call activities and Zeebe's multi-instance; signal throw and end
events broadcast (processes/signals.py).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Final

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
from SpiffWorkflow.bpmn.parser.task_parsers import SubWorkflowParser
from SpiffWorkflow.bpmn.parser.TaskParser import TaskParser
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.specs.defaults import ServiceTask, UserTask
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask as SubWorkflowMixin

from processes.call_activity import ZeebeCallActivity
from processes.mappings import ZeebeBoundaryEvent, ZeebeSubProcess
from processes.multi_instance import ZeebeParallelMultiInstance, ZeebeSequentialMultiInstance
from processes.signals import broadcast_throws
from processes.zeebe_tasks import DecisionTask, FeelScriptTask, PassThroughManualTask, PassThroughTask, ZeebeStartEvent
from processes.zeebe_xml import NSMAP, zeebe_extensions

__all__ = ["ZeebeBpmnParser", "ZeebeServiceTask", "bpmn_validator", "embedded_specs", "spiff_lock"]


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

    def get_spec(self, process_id: str, required: bool = True) -> Any:
        """A process spec whose signal throw and end events broadcast (processes/signals.py)."""
        spec = super().get_spec(process_id, required)
        if spec is not None:
            broadcast_throws([spec])
        return spec


_validator: BpmnValidator | None = None
# lxml schema objects keep an error log per instance: one deploy at a time uses the shared validator.
spiff_lock: Final = threading.Lock()


def bpmn_validator() -> Any:
    global _validator
    if _validator is None:
        _validator = BpmnValidator()  # BPMN 2.0 XSD shipped with SpiffWorkflow; zeebe elements are lax
    return _validator



def embedded_specs(spiff: Any, process_id: str) -> dict[str, Any]:
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

