"""BPMN text the process API tests share: a service task that queues the case, then the end."""

from __future__ import annotations


def queue_then_finish(incoming: str, queue: str, outgoing: str = "F3") -> str:
    """`Queue_it` (a `case.set-queue` job putting the case in `queue`, an expression or a literal), then `Finish`."""
    return f"""    <bpmn:serviceTask id="Queue_it" name="Queue">
      <bpmn:extensionElements>
        <zeebe:taskDefinition type="case.set-queue" />
        <zeebe:taskHeaders><zeebe:header key="queue" value="{queue}" /></zeebe:taskHeaders>
      </bpmn:extensionElements>
      <bpmn:incoming>{incoming}</bpmn:incoming><bpmn:outgoing>{outgoing}</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="{outgoing}" sourceRef="Queue_it" targetRef="Finish" />
    <bpmn:endEvent id="Finish"><bpmn:incoming>{outgoing}</bpmn:incoming></bpmn:endEvent>
"""
