"""Small Zeebe-dialect BPMN models for the embedded-engine tests, and the test-only job types they use."""

from __future__ import annotations

from typing import Any

from processes.jobs import BpmnError, CommandSender, Job, task_type

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions '
        'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="Defs" targetNamespace="http://casestream.test">')

JOBS: list[Job] = []
FAILURES: dict[str, int] = {}  # job key -> failures so far (test.flaky fails twice, then succeeds)


@task_type("test.record")
def record(job: Job, send: CommandSender) -> dict[str, Any]:
    """Remember the job; return `result` from the `answer` header if given."""
    JOBS.append(job)
    return {"recorded": job.element_id, **({"answer": job.headers["answer"]} if "answer" in job.headers else {})}


@task_type("test.fail")
def fail(job: Job, send: CommandSender) -> dict[str, Any]:
    JOBS.append(job)
    raise RuntimeError("the backend is down")


@task_type("test.flaky")
def flaky(job: Job, send: CommandSender) -> dict[str, Any]:
    JOBS.append(job)
    FAILURES[job.key] = FAILURES.get(job.key, 0) + 1
    if FAILURES[job.key] <= 2:
        raise ConnectionError("try again")
    return {"attempts": FAILURES[job.key]}


@task_type("test.reject")
def reject(job: Job, send: CommandSender) -> dict[str, Any]:
    JOBS.append(job)
    raise BpmnError(str(job.variables.get("code", "rejected")), "refused by the backend", {"why": "policy"})


def service(element_id: str, job_type: str, incoming: str, outgoing: str, extra: str = "", name: str = "") -> str:
    return (f'<bpmn:serviceTask id="{element_id}" name="{name or element_id}"><bpmn:extensionElements>'
            f'<zeebe:taskDefinition type="{job_type}" retries="3"/>{extra}</bpmn:extensionElements>'
            f'<bpmn:incoming>{incoming}</bpmn:incoming><bpmn:outgoing>{outgoing}</bpmn:outgoing></bpmn:serviceTask>')


def flow(flow_id: str, source: str, target: str, condition: str | None = None) -> str:
    body = (f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression>'
            if condition else "")
    return f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}">{body}</bpmn:sequenceFlow>'


def process(process_id: str, body: str, head_extra: str = "") -> bytes:
    return (f'{HEAD}{head_extra}<bpmn:process id="{process_id}" name="{process_id}" isExecutable="true">{body}'
            "</bpmn:process></bpmn:definitions>").encode()


# start -> service (inputs/outputs/headers) -> gateway on the result -> big / small end
SIMPLE = process("simple", (
    '<bpmn:startEvent id="Begin"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>' + flow("f1", "Begin", "Work")
    + service("Work", "test.record", "f1", "f2",
              '<zeebe:ioMapping><zeebe:input source="=amount * 2" target="doubled"/>'
              '<zeebe:output source="=recorded" target="done.by"/></zeebe:ioMapping>'
              '<zeebe:taskHeaders><zeebe:header key="answer" value="=string(amount)"/></zeebe:taskHeaders>')
    + flow("f2", "Work", "Gate")
    + '<bpmn:exclusiveGateway id="Gate" default="small"><bpmn:incoming>f2</bpmn:incoming>'
      '<bpmn:outgoing>big</bpmn:outgoing><bpmn:outgoing>small</bpmn:outgoing></bpmn:exclusiveGateway>'
    + flow("big", "Gate", "EndBig", "=amount &gt; 1000") + flow("small", "Gate", "EndSmall")
    + '<bpmn:endEvent id="EndBig"><bpmn:incoming>big</bpmn:incoming></bpmn:endEvent>'
    + '<bpmn:endEvent id="EndSmall"><bpmn:incoming>small</bpmn:incoming></bpmn:endEvent>'))

# a user task (assignee and groups from the model) with a non-interrupting SLA timer, in parallel with a timer
# catch; both branches must finish
REVIEW = process("review", (
    '<bpmn:startEvent id="Begin"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>' + flow("f1", "Begin", "Split")
    + '<bpmn:parallelGateway id="Split"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>a1</bpmn:outgoing>'
      '<bpmn:outgoing>b1</bpmn:outgoing></bpmn:parallelGateway>'
    + flow("a1", "Split", "Review")
    + '<bpmn:userTask id="Review" name="Review the claim"><bpmn:extensionElements>'
      '<zeebe:assignmentDefinition assignee="=reviewer" candidateGroups="claims, senior"/>'
      '<zeebe:priorityDefinition priority="=if amount &gt; 1000 then 80 else 40"/>'
      '<zeebe:taskHeaders><zeebe:header key="formSchema" value="{&quot;type&quot;: &quot;object&quot;}"/>'
      '</zeebe:taskHeaders>'
      '</bpmn:extensionElements><bpmn:incoming>a1</bpmn:incoming><bpmn:outgoing>a2</bpmn:outgoing></bpmn:userTask>'
    + '<bpmn:boundaryEvent id="Sla" name="Review SLA" attachedToRef="Review" cancelActivity="false">'
      '<bpmn:outgoing>s1</bpmn:outgoing><bpmn:timerEventDefinition><bpmn:timeDuration>PT48H</bpmn:timeDuration>'
      '</bpmn:timerEventDefinition></bpmn:boundaryEvent>'
    + flow("s1", "Sla", "Escalate") + service("Escalate", "test.record", "s1", "s2") + flow("s2", "Escalate", "EndSla")
    + '<bpmn:endEvent id="EndSla"><bpmn:incoming>s2</bpmn:incoming></bpmn:endEvent>'
    + flow("a2", "Review", "Join")
    + flow("b1", "Split", "Wait")
    + '<bpmn:intermediateCatchEvent id="Wait" name="Cooling-off hour"><bpmn:incoming>b1</bpmn:incoming>'
      '<bpmn:outgoing>b2</bpmn:outgoing><bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration>'
      '</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>'
    + flow("b2", "Wait", "AfterWait")
    + service("AfterWait", "test.record", "b2", "b3") + flow("b3", "AfterWait", "Join")
    + '<bpmn:parallelGateway id="Join"><bpmn:incoming>a2</bpmn:incoming><bpmn:incoming>b3</bpmn:incoming>'
      '<bpmn:outgoing>f9</bpmn:outgoing></bpmn:parallelGateway>'
    + flow("f9", "Join", "Finish") + '<bpmn:endEvent id="Finish"><bpmn:incoming>f9</bpmn:incoming></bpmn:endEvent>'))

# a user task cut short by an interrupting timer
DEADLINE = process("deadline", (
    '<bpmn:startEvent id="Begin"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>' + flow("f1", "Begin", "Answer")
    + '<bpmn:userTask id="Answer" name="Answer the customer"><bpmn:incoming>f1</bpmn:incoming>'
      '<bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>'
    + '<bpmn:boundaryEvent id="Deadline" attachedToRef="Answer"><bpmn:outgoing>t1</bpmn:outgoing>'
      '<bpmn:timerEventDefinition><bpmn:timeDuration>=limit</bpmn:timeDuration></bpmn:timerEventDefinition>'
      '</bpmn:boundaryEvent>'
    + flow("f2", "Answer", "EndAnswered")
    + '<bpmn:endEvent id="EndAnswered"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
    + flow("t1", "Deadline", "EndLate")
    + '<bpmn:endEvent id="EndLate"><bpmn:incoming>t1</bpmn:incoming></bpmn:endEvent>'))

MESSAGE_HEAD = ('<bpmn:message id="Msg" name="customer-replied"><bpmn:extensionElements>'
                '<zeebe:subscription correlationKey="=caseId"/></bpmn:extensionElements></bpmn:message>')
# waits for a message correlated by case id, then records
WAIT_REPLY = process("wait-reply", (
    '<bpmn:startEvent id="Begin"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>' + flow("f1", "Begin", "Reply")
    + '<bpmn:intermediateCatchEvent id="Reply"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
      '<bpmn:messageEventDefinition messageRef="Msg"/></bpmn:intermediateCatchEvent>'
    + flow("f2", "Reply", "After") + service("After", "test.record", "f2", "f3") + flow("f3", "After", "Finish")
    + '<bpmn:endEvent id="Finish"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>'), MESSAGE_HEAD)

ERROR_HEAD = '<bpmn:error id="Err" name="Rejected" errorCode="rejected"/>'
# a service task whose BPMN error "rejected" is caught by a boundary event; other codes are not
CATCH_ERROR = process("catch-error", (
    '<bpmn:startEvent id="Begin"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>' + flow("f1", "Begin", "Call")
    + service("Call", "test.reject", "f1", "f2") + flow("f2", "Call", "EndOk")
    + '<bpmn:endEvent id="EndOk"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
    + '<bpmn:boundaryEvent id="OnRejected" attachedToRef="Call"><bpmn:outgoing>e1</bpmn:outgoing>'
      '<bpmn:errorEventDefinition errorRef="Err"/></bpmn:boundaryEvent>'
    + flow("e1", "OnRejected", "Handle") + service("Handle", "test.record", "e1", "e2") + flow("e2", "Handle", "EndErr")
    + '<bpmn:endEvent id="EndErr"><bpmn:incoming>e2</bpmn:incoming></bpmn:endEvent>'), ERROR_HEAD)


def one_task(process_id: str, job_type: str) -> bytes:
    return process(process_id, (
        '<bpmn:startEvent id="Begin"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>' + flow("f1", "Begin", "Job")
        + service("Job", job_type, "f1", "f2") + flow("f2", "Job", "Finish")
        + '<bpmn:endEvent id="Finish"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'))


def _compensable(element_id: str, incoming: str, outgoing: str) -> str:
    return (service(element_id, "test.record", incoming, outgoing)
            + f'<bpmn:boundaryEvent id="Comp_{element_id}" attachedToRef="{element_id}">'
              "<bpmn:compensateEventDefinition/></bpmn:boundaryEvent>"
            + f'<bpmn:serviceTask id="Undo_{element_id}" isForCompensation="true"><bpmn:extensionElements>'
              '<zeebe:taskDefinition type="test.record"/></bpmn:extensionElements></bpmn:serviceTask>')


def _association(element_id: str) -> str:
    # artifacts follow all flow elements in a bpmn:process (the XSD's order)
    return (f'<bpmn:association id="A_{element_id}" associationDirection="One" sourceRef="Comp_{element_id}" '
            f'targetRef="Undo_{element_id}"/>')


# saga: reserve, provision, then a failing welcome step; its error boundary compensates and ends
SAGA = process("saga", (
    '<bpmn:startEvent id="Begin"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>' + flow("f1", "Begin", "Reserve")
    + _compensable("Reserve", "f1", "f2") + flow("f2", "Reserve", "Provision")
    + _compensable("Provision", "f2", "f3") + flow("f3", "Provision", "Welcome")
    + service("Welcome", "test.reject", "f3", "f4") + flow("f4", "Welcome", "EndOk")
    + '<bpmn:endEvent id="EndOk"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>'
    + '<bpmn:boundaryEvent id="WelcomeFailed" attachedToRef="Welcome"><bpmn:outgoing>c1</bpmn:outgoing>'
      '<bpmn:errorEventDefinition errorRef="Err"/></bpmn:boundaryEvent>'
    + flow("c1", "WelcomeFailed", "Undo")
    + '<bpmn:intermediateThrowEvent id="Undo" name="Undo earlier steps"><bpmn:incoming>c1</bpmn:incoming>'
      '<bpmn:outgoing>c2</bpmn:outgoing><bpmn:compensateEventDefinition/></bpmn:intermediateThrowEvent>'
    + flow("c2", "Undo", "EndUndone")
    + '<bpmn:endEvent id="EndUndone"><bpmn:incoming>c2</bpmn:incoming></bpmn:endEvent>'
    + _association("Reserve") + _association("Provision")),
    ERROR_HEAD)
