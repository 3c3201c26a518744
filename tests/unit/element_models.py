"""Camunda-Modeler-style models of the BPMN elements added for issue 15 (script, event-based gateway,
multi-instance, call activity, event sub-processes, business-rule tasks), built from engine_models' pieces."""

from __future__ import annotations

from xml.sax.saxutils import escape

from tests.unit.engine_models import flow, process, service

START = '<bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>'


def end(element_id: str, incoming: str) -> str:
    return f'<bpmn:endEvent id="{element_id}"><bpmn:incoming>{incoming}</bpmn:incoming></bpmn:endEvent>'


def script(element_id: str, expression: str, result: str, incoming: str, outgoing: str, extra: str = "") -> str:
    return (f'<bpmn:scriptTask id="{element_id}" name="{element_id}"><bpmn:extensionElements>'
            f'<zeebe:script expression="{expression}" resultVariable="{result}"/>{extra}</bpmn:extensionElements>'
            f'<bpmn:incoming>{incoming}</bpmn:incoming><bpmn:outgoing>{outgoing}</bpmn:outgoing></bpmn:scriptTask>')


def loop(collection: str, element: str, output: str = "", output_element: str = "", sequential: bool = False,
         completion: str = "") -> str:
    out = f' outputCollection="{output}" outputElement="{output_element}"' if output else ""
    cond = (f'<bpmn:completionCondition xsi:type="bpmn:tFormalExpression">{completion}</bpmn:completionCondition>'
            if completion else "")
    flag = ' isSequential="true"' if sequential else ""
    return (f'<bpmn:multiInstanceLoopCharacteristics{flag}>'
            f'<bpmn:extensionElements><zeebe:loopCharacteristics inputCollection="{collection}" '
            f'inputElement="{element}"{out}/></bpmn:extensionElements>{cond}'
            '</bpmn:multiInstanceLoopCharacteristics>')


def mi_service(element_id: str, incoming: str, outgoing: str, characteristics: str, extra: str = "") -> str:
    return service(element_id, "test.record", incoming, outgoing, extra).replace(
        "</bpmn:serviceTask>", f"{characteristics}</bpmn:serviceTask>")


SCRIPT = process("script", (
    START + flow("f0", "StartEvent_1", "Sum")
    + script("Sum", "=a + b", "sum", "f0", "f1") + flow("f1", "Sum", "Label")
    + script("Label", '=&quot;total &quot; + string(sum * factor)', "label", "f1", "f2",
             '<zeebe:ioMapping><zeebe:input source="=10" target="factor"/>'
             '<zeebe:output source="=upper case(label)" target="shout"/></zeebe:ioMapping>')
    + flow("f2", "Label", "Check") + service("Check", "test.record", "f2", "f3") + flow("f3", "Check", "EndEvent_1")
    + end("EndEvent_1", "f3")))

GATEWAY_HEAD = ('<bpmn:message id="Message_approved" name="approved"><bpmn:extensionElements>'
                '<zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements></bpmn:message>'
                '<bpmn:message id="Message_cancelled" name="cancelled"><bpmn:extensionElements>'
                '<zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements></bpmn:message>')
EVENT_GATEWAY = process("event-gateway", (
    START + flow("f0", "StartEvent_1", "Gateway_1")
    + '<bpmn:eventBasedGateway id="Gateway_1"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>g1</bpmn:outgoing>'
      '<bpmn:outgoing>g2</bpmn:outgoing><bpmn:outgoing>g3</bpmn:outgoing></bpmn:eventBasedGateway>'
    + flow("g1", "Gateway_1", "Approved")
    + '<bpmn:intermediateCatchEvent id="Approved"><bpmn:incoming>g1</bpmn:incoming><bpmn:outgoing>a1</bpmn:outgoing>'
      '<bpmn:messageEventDefinition messageRef="Message_approved"/></bpmn:intermediateCatchEvent>'
    + flow("a1", "Approved", "Ship") + service("Ship", "test.record", "a1", "a2") + flow("a2", "Ship", "EndShipped")
    + end("EndShipped", "a2")
    + flow("g2", "Gateway_1", "Cancelled")
    + '<bpmn:intermediateCatchEvent id="Cancelled"><bpmn:incoming>g2</bpmn:incoming><bpmn:outgoing>c1</bpmn:outgoing>'
      '<bpmn:messageEventDefinition messageRef="Message_cancelled"/></bpmn:intermediateCatchEvent>'
    + flow("c1", "Cancelled", "Refund") + service("Refund", "test.record", "c1", "c2")
    + flow("c2", "Refund", "EndRefunded") + end("EndRefunded", "c2")
    + flow("g3", "Gateway_1", "Timeout")
    + '<bpmn:intermediateCatchEvent id="Timeout"><bpmn:incoming>g3</bpmn:incoming><bpmn:outgoing>t1</bpmn:outgoing>'
      '<bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition>'
      '</bpmn:intermediateCatchEvent>'
    + flow("t1", "Timeout", "Remind") + service("Remind", "test.record", "t1", "t2")
    + flow("t2", "Remind", "EndReminded") + end("EndReminded", "t2")), GATEWAY_HEAD)


def multi_service(process_id: str, sequential: bool) -> bytes:
    """Each item goes to a job (its header answers the item); the answers are collected in order."""
    return process(process_id, (
        START + flow("f0", "StartEvent_1", "Each")
        + mi_service("Each", "f0", "f1", loop("=items", "item", "answers", "=answer", sequential),
                     '<zeebe:taskHeaders><zeebe:header key="answer" value="=string(item * loopCounter)"/>'
                     '</zeebe:taskHeaders>')
        + flow("f1", "Each", "After") + service("After", "test.record", "f1", "f2") + flow("f2", "After", "EndEvent_1")
        + end("EndEvent_1", "f2")))


MULTI_USER = process("multi-user", (
    START + flow("f0", "StartEvent_1", "Approve")
    + '<bpmn:userTask id="Approve" name="Approve the payment"><bpmn:extensionElements>'
      '<zeebe:assignmentDefinition assignee="=approver"/></bpmn:extensionElements>'
      '<bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>'
    + loop("=approvers", "approver", "decisions", "=approved") + '</bpmn:userTask>'
    + flow("f1", "Approve", "After") + service("After", "test.record", "f1", "f2") + flow("f2", "After", "EndEvent_1")
    + end("EndEvent_1", "f2")))

MULTI_SUBPROCESS = process("multi-sub", (
    START + flow("f0", "StartEvent_1", "PerItem")
    + '<bpmn:subProcess id="PerItem"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>'
    + loop("=orders", "order", "totals", "=total", sequential=True)
    + '<bpmn:startEvent id="SubStart"><bpmn:outgoing>s0</bpmn:outgoing></bpmn:startEvent>'
    + flow("s0", "SubStart", "Price") + script("Price", "=order.qty * order.price", "total", "s0", "s1")
    + flow("s1", "Price", "Book") + service("Book", "test.record", "s1", "s2") + flow("s2", "Book", "SubEnd")
    + end("SubEnd", "s2") + '</bpmn:subProcess>'
    + flow("f1", "PerItem", "After") + service("After", "test.record", "f1", "f2") + flow("f2", "After", "EndEvent_1")
    + end("EndEvent_1", "f2")))


def call_parent(process_id: str, called: str, propagate: bool = True) -> bytes:
    flag = "" if propagate else ' propagateAllChildVariables="false"'
    return process(process_id, (
        START + flow("f0", "StartEvent_1", "Call")
        + f'<bpmn:callActivity id="Call" name="Check the customer"><bpmn:extensionElements>'
          f'<zeebe:calledElement processId="{called}"{flag}/><zeebe:ioMapping>'
          '<zeebe:input source="=customer.name" target="who"/>'
          '<zeebe:output source="=verdict" target="checkResult"/></zeebe:ioMapping></bpmn:extensionElements>'
          '<bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing></bpmn:callActivity>'
        + flow("f1", "Call", "After") + service("After", "test.record", "f1", "f2")
        + flow("f2", "After", "EndEvent_1") + end("EndEvent_1", "f2")))


CALLED = process("check-customer", (
    START + flow("f0", "StartEvent_1", "Verdict")
    + script("Verdict", '=if who = &quot;Ann&quot; then &quot;ok&quot; else &quot;review&quot;', "verdict", "f0",
             "f1")
    + flow("f1", "Verdict", "Inner") + service("Inner", "test.record", "f1", "f2") + flow("f2", "Inner", "EndEvent_1")
    + end("EndEvent_1", "f2")))

CALL_MULTI = process("call-multi", (
    START + flow("f0", "StartEvent_1", "CallEach")
    + '<bpmn:callActivity id="CallEach"><bpmn:extensionElements><zeebe:calledElement processId="check-customer"/>'
      '</bpmn:extensionElements><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>'
    + loop("=names", "who", "verdicts", "=verdict", sequential=True) + '</bpmn:callActivity>'
    + flow("f1", "CallEach", "EndEvent_1") + end("EndEvent_1", "f1")))

DECISION = process("decide", (
    START + flow("f0", "StartEvent_1", "Decide")
    + '<bpmn:businessRuleTask id="Decide" name="Decide the discount"><bpmn:extensionElements>'
      '<zeebe:calledDecision decisionId="discount" resultVariable="discount"/></bpmn:extensionElements>'
      '<bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing></bpmn:businessRuleTask>'
    + flow("f1", "Decide", "After") + service("After", "test.record", "f1", "f2") + flow("f2", "After", "EndEvent_1")
    + end("EndEvent_1", "f2")))

DMN_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" '
            'id="Defs" name="Discounts" namespace="http://camunda.org/schema/1.0/dmn">')


def table(decision_id: str, hit_policy: str, rules: list[tuple[str, str, str]], aggregation: str = "") -> str:
    """A decision table on customer type and amount with one output `rate`."""
    agg = f' aggregation="{aggregation}"' if aggregation else ""
    body = "".join(
        f'<rule id="{decision_id}_r{n}"><inputEntry id="{decision_id}_i{n}a"><text>{escape(kind)}</text></inputEntry>'
        f'<inputEntry id="{decision_id}_i{n}b"><text>{escape(amount)}</text></inputEntry>'
        f'<outputEntry id="{decision_id}_o{n}"><text>{rate}</text></outputEntry></rule>'
        for n, (kind, amount, rate) in enumerate(rules))
    return (f'<decision id="{decision_id}" name="{decision_id}"><decisionTable id="{decision_id}_t" '
            f'hitPolicy="{hit_policy}"{agg}>'
            f'<input id="{decision_id}_in1" label="Customer"><inputExpression id="{decision_id}_e1" typeRef="string">'
            '<text>customer.kind</text></inputExpression></input>'
            f'<input id="{decision_id}_in2" label="Amount"><inputExpression id="{decision_id}_e2" typeRef="number">'
            '<text>amount</text></inputExpression></input>'
            f'<output id="{decision_id}_out" name="rate" typeRef="number"/>{body}</decisionTable></decision>')


DMN = (DMN_HEAD
       + table("discount", "UNIQUE", [('"gold"', ">= 1000", "0.15"), ('"gold"', "< 1000", "0.1"),
                                      ('"silver", "bronze"', "[100..1000]", "0.05"), ("-", "-", "0")][:3])
       + table("first", "FIRST", [('"gold"', "-", "1"), ("-", "> 10", "2"), ("-", "-", "3")])
       + table("collect", "COLLECT", [('"gold"', "-", "1"), ("-", "> 10", "2"), ("-", "-", "3")])
       + table("total", "COLLECT", [('"gold"', "-", "1"), ("-", "> 10", "2"), ("-", "-", "3")], "SUM")
       + table("overlap", "UNIQUE", [("-", "> 10", "1"), ("-", "> 20", "2")])
       + '</definitions>').encode()

EVENT_SUB_HEAD = ('<bpmn:message id="Message_cancel" name="cancel-order"><bpmn:extensionElements>'
                  '<zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements></bpmn:message>'
                  '<bpmn:message id="Message_note" name="note"><bpmn:extensionElements>'
                  '<zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements></bpmn:message>'
                  '<bpmn:error id="Error_1" name="Broken" errorCode="broken"/>')


def _event_sub(sub_id: str, start: str, body_task: str, interrupting: bool) -> str:
    flag = "" if interrupting else ' isInterrupting="false"'
    return (f'<bpmn:subProcess id="{sub_id}" triggeredByEvent="true">'
            f'<bpmn:startEvent id="{sub_id}_Start"{flag}><bpmn:outgoing>{sub_id}_f1</bpmn:outgoing>{start}'
            '</bpmn:startEvent>'
            + flow(f"{sub_id}_f1", f"{sub_id}_Start", body_task)
            + service(body_task, "test.record", f"{sub_id}_f1", f"{sub_id}_f2")
            + flow(f"{sub_id}_f2", body_task, f"{sub_id}_End") + end(f"{sub_id}_End", f"{sub_id}_f2")
            + "</bpmn:subProcess>")


# the main path waits for a person; a "cancel-order" message interrupts it, a "note" message runs alongside,
# a daily timer reminds alongside, and a BPMN error from the work is handled by an error event sub-process
EVENT_SUBPROCESSES = process("event-subs", (
    START + flow("f0", "StartEvent_1", "Work")
    + service("Work", "test.reject", "f0", "f1") + flow("f1", "Work", "Wait")
    + '<bpmn:intermediateCatchEvent id="Wait"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
      '<bpmn:timerEventDefinition><bpmn:timeDuration>P10D</bpmn:timeDuration></bpmn:timerEventDefinition>'
      '</bpmn:intermediateCatchEvent>'
    + flow("f2", "Wait", "EndEvent_1") + end("EndEvent_1", "f2")
    + _event_sub("OnCancel", '<bpmn:messageEventDefinition messageRef="Message_cancel"/>', "Cancelled", True)
    + _event_sub("OnNote", '<bpmn:messageEventDefinition messageRef="Message_note"/>', "Noted", False)
    + _event_sub("Daily", '<bpmn:timerEventDefinition><bpmn:timeCycle>R/P1D</bpmn:timeCycle>'
                          '</bpmn:timerEventDefinition>', "Remind", False)
    + _event_sub("OnError", '<bpmn:errorEventDefinition errorRef="Error_1"/>', "Repair", True)), EVENT_SUB_HEAD)
# the same, with work that succeeds
EVENT_SUBPROCESSES_OK = EVENT_SUBPROCESSES.replace(b'"test.reject"', b'"test.record"', 1).replace(
    b'id="event-subs"', b'id="event-subs-ok"')

# an embedded sub-process with input mappings (local to it) and output mappings; a failing call inside whose
# BPMN error is caught by an error boundary on the sub-process with an output mapping of the error's variables
SUB_MAPPINGS = process("sub-mappings", (
    START + flow("f0", "StartEvent_1", "Sub")
    + '<bpmn:subProcess id="Sub"><bpmn:extensionElements><zeebe:ioMapping>'
      '<zeebe:input source="=order.total * 2" target="doubled"/>'
      '<zeebe:output source="=doubled + 1" target="result"/></zeebe:ioMapping></bpmn:extensionElements>'
      '<bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>'
    + '<bpmn:startEvent id="SubStart"><bpmn:outgoing>s0</bpmn:outgoing></bpmn:startEvent>'
    + flow("s0", "SubStart", "Inner") + service("Inner", "test.record", "s0", "s1")
    + flow("s1", "Inner", "Risky") + service("Risky", "test.reject", "s1", "s2")
    + flow("s2", "Risky", "SubEnd") + end("SubEnd", "s2") + "</bpmn:subProcess>"
    + flow("f1", "Sub", "After") + service("After", "test.record", "f1", "f2") + flow("f2", "After", "EndEvent_1")
    + end("EndEvent_1", "f2")
    + '<bpmn:boundaryEvent id="OnRejected" attachedToRef="Sub"><bpmn:extensionElements><zeebe:ioMapping>'
      '<zeebe:output source="=&quot;rejected: &quot; + why" target="reason"/></zeebe:ioMapping>'
      '</bpmn:extensionElements><bpmn:outgoing>e1</bpmn:outgoing><bpmn:errorEventDefinition errorRef="Err"/>'
      '</bpmn:boundaryEvent>'
    + flow("e1", "OnRejected", "Handle") + service("Handle", "test.record", "e1", "e2")
    + flow("e2", "Handle", "EndRejected") + end("EndRejected", "e2")),
    '<bpmn:error id="Err" name="R" errorCode="rejected"/>')

ESCALATION_HEAD = ('<bpmn:escalation id="Esc_late" name="late" escalationCode="late"/>'
                   '<bpmn:escalation id="Esc_up" name="up" escalationCode="up"/>')
# a sub-process throws "late" on its way (caught alongside by a non-interrupting boundary) and ends with
# "up" (caught by an interrupting boundary, so the normal path after the sub-process is not taken)
ESCALATION = process("escalation", (
    START + flow("f0", "StartEvent_1", "Sub")
    + '<bpmn:subProcess id="Sub"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>'
    + '<bpmn:startEvent id="SubStart"><bpmn:outgoing>s0</bpmn:outgoing></bpmn:startEvent>'
    + flow("s0", "SubStart", "Notify")
    + '<bpmn:intermediateThrowEvent id="Notify"><bpmn:incoming>s0</bpmn:incoming><bpmn:outgoing>s1</bpmn:outgoing>'
      '<bpmn:escalationEventDefinition escalationRef="Esc_late"/></bpmn:intermediateThrowEvent>'
    + flow("s1", "Notify", "Inner") + service("Inner", "test.record", "s1", "s2") + flow("s2", "Inner", "GiveUp")
    + '<bpmn:endEvent id="GiveUp"><bpmn:incoming>s2</bpmn:incoming>'
      '<bpmn:escalationEventDefinition escalationRef="Esc_up"/></bpmn:endEvent>'
    + "</bpmn:subProcess>"
    + flow("f1", "Sub", "After") + service("After", "test.record", "f1", "f2") + flow("f2", "After", "EndEvent_1")
    + end("EndEvent_1", "f2")
    + '<bpmn:boundaryEvent id="OnLate" attachedToRef="Sub" cancelActivity="false"><bpmn:outgoing>l1</bpmn:outgoing>'
      '<bpmn:escalationEventDefinition escalationRef="Esc_late"/></bpmn:boundaryEvent>'
    + flow("l1", "OnLate", "Warn") + service("Warn", "test.record", "l1", "l2") + flow("l2", "Warn", "EndWarn")
    + end("EndWarn", "l2")
    + '<bpmn:boundaryEvent id="OnUp" attachedToRef="Sub"><bpmn:outgoing>u1</bpmn:outgoing>'
      '<bpmn:escalationEventDefinition escalationRef="Esc_up"/></bpmn:boundaryEvent>'
    + flow("u1", "OnUp", "Boss") + service("Boss", "test.record", "u1", "u2") + flow("u2", "Boss", "EndBoss")
    + end("EndBoss", "u2")), ESCALATION_HEAD)
