"""BPMN models with signal events, written as Camunda Modeler writes them (a bpmn:signal named, referenced by id)."""

from __future__ import annotations

from tests.unit.engine_models import flow, process, service

WAIT = '<bpmn:timerEventDefinition><bpmn:timeDuration>P10D</bpmn:timeDuration></bpmn:timerEventDefinition>'


def signal(ref: str, name: str) -> str:
    return f'<bpmn:signal id="{ref}" name="{name}"/>'


def signal_process(process_id: str, body: str, *signals: tuple[str, str]) -> bytes:
    """A process whose definitions declare these (id, name) signals after it."""
    xml = process(process_id, body).decode()
    return xml.replace("</bpmn:definitions>", "".join(signal(r, n) for r, n in signals) + "</bpmn:definitions>"
                       ).encode()


def _start(outgoing: str = "f1") -> str:
    return f'<bpmn:startEvent id="Begin"><bpmn:outgoing>{outgoing}</bpmn:outgoing></bpmn:startEvent>'


def _end(element_id: str, incoming: str) -> str:
    return f'<bpmn:endEvent id="{element_id}"><bpmn:incoming>{incoming}</bpmn:incoming></bpmn:endEvent>'


# start -> wait for signal "go" -> After (job) -> end
CATCH = signal_process("signal-catch", (
    _start() + flow("f1", "Begin", "WaitGo")
    + '<bpmn:intermediateCatchEvent id="WaitGo"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
      '<bpmn:signalEventDefinition signalRef="Sig_go"/></bpmn:intermediateCatchEvent>'
    + flow("f2", "WaitGo", "After") + service("After", "test.record", "f2", "f3") + flow("f3", "After", "Finish")
    + _end("Finish", "f3")), ("Sig_go", "go"))

# a sub-process waiting ten days, with a non-interrupting boundary "ping" and an interrupting one "stop"
BOUNDARY = signal_process("signal-boundary", (
    _start() + flow("f1", "Begin", "Slow")
    + '<bpmn:subProcess id="Slow"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
      '<bpmn:startEvent id="InnerStart"><bpmn:outgoing>i1</bpmn:outgoing></bpmn:startEvent>'
    + flow("i1", "InnerStart", "Wait")
    + f'<bpmn:intermediateCatchEvent id="Wait"><bpmn:incoming>i1</bpmn:incoming><bpmn:outgoing>i2</bpmn:outgoing>'
      f'{WAIT}</bpmn:intermediateCatchEvent>' + flow("i2", "Wait", "InnerEnd") + _end("InnerEnd", "i2")
    + '</bpmn:subProcess>' + flow("f2", "Slow", "Done") + _end("Done", "f2")
    + '<bpmn:boundaryEvent id="Ping" attachedToRef="Slow" cancelActivity="false"><bpmn:outgoing>p1</bpmn:outgoing>'
      '<bpmn:signalEventDefinition signalRef="Sig_ping"/></bpmn:boundaryEvent>'
    + flow("p1", "Ping", "Pinged") + service("Pinged", "test.record", "p1", "p2") + flow("p2", "Pinged", "PEnd")
    + _end("PEnd", "p2")
    + '<bpmn:boundaryEvent id="Stop" attachedToRef="Slow"><bpmn:outgoing>s1</bpmn:outgoing>'
      '<bpmn:signalEventDefinition signalRef="Sig_stop"/></bpmn:boundaryEvent>'
    + flow("s1", "Stop", "Stopped") + service("Stopped", "test.record", "s1", "s2") + flow("s2", "Stopped", "SEnd")
    + _end("SEnd", "s2")), ("Sig_ping", "ping"), ("Sig_stop", "stop"))


def _event_subprocess(sub_id: str, signal_ref: str, job: str, interrupting: bool) -> str:
    flag = "" if interrupting else ' isInterrupting="false"'
    return (f'<bpmn:subProcess id="{sub_id}" triggeredByEvent="true">'
            f'<bpmn:startEvent id="{sub_id}Start"{flag}><bpmn:outgoing>{sub_id}1</bpmn:outgoing>'
            f'<bpmn:signalEventDefinition signalRef="{signal_ref}"/></bpmn:startEvent>'
            + flow(f"{sub_id}1", f"{sub_id}Start", job) + service(job, "test.record", f"{sub_id}1", f"{sub_id}2")
            + flow(f"{sub_id}2", job, f"{sub_id}End") + _end(f"{sub_id}End", f"{sub_id}2") + '</bpmn:subProcess>')


# the main path waits ten days; a non-interrupting signal event sub-process "note", an interrupting one "abort"
EVENT_SUBPROCESSES = signal_process("signal-subs", (
    _start() + flow("f1", "Begin", "Wait")
    + f'<bpmn:intermediateCatchEvent id="Wait"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
      f'{WAIT}</bpmn:intermediateCatchEvent>' + flow("f2", "Wait", "Finish") + _end("Finish", "f2")
    + _event_subprocess("NoteSub", "Sig_note", "Noted", False)
    + _event_subprocess("AbortSub", "Sig_abort", "Aborted", True)), ("Sig_note", "note"), ("Sig_abort", "abort"))

# start -> throw "go" (with an input mapping) -> end throwing "finished"
THROW = signal_process("signal-throw", (
    _start() + flow("f1", "Begin", "Throw")
    + '<bpmn:intermediateThrowEvent id="Throw"><bpmn:extensionElements><zeebe:ioMapping>'
      '<zeebe:input source="=orderId" target="order"/></zeebe:ioMapping></bpmn:extensionElements>'
      '<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
      '<bpmn:signalEventDefinition signalRef="Sig_go"/></bpmn:intermediateThrowEvent>'
    + flow("f2", "Throw", "Finish")
    + '<bpmn:endEvent id="Finish"><bpmn:incoming>f2</bpmn:incoming>'
      '<bpmn:signalEventDefinition signalRef="Sig_finished"/></bpmn:endEvent>'), ("Sig_go", "go"),
    ("Sig_finished", "finished"))

# started by the signal "launch": Launched (job) -> end
START = signal_process("signal-start", (
    '<bpmn:startEvent id="Begin"><bpmn:outgoing>f1</bpmn:outgoing>'
    '<bpmn:signalEventDefinition signalRef="Sig_launch"/></bpmn:startEvent>'
    + flow("f1", "Begin", "Launched") + service("Launched", "test.record", "f1", "f2")
    + flow("f2", "Launched", "Finish") + _end("Finish", "f2")), ("Sig_launch", "launch"))

# a catch of a signal with no signalRef (Camunda 8 needs a named signal)
UNNAMED = CATCH.replace(b' signalRef="Sig_go"', b"")
EXPRESSION = CATCH.replace(b'name="go"', b'name="=signalName"')

# an event-based gateway: the signal "approve" -> Ship, or the timer -> Remind
GATEWAY = signal_process("signal-gateway", (
    _start() + flow("f1", "Begin", "Gate")
    + '<bpmn:eventBasedGateway id="Gate"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>g1</bpmn:outgoing>'
      '<bpmn:outgoing>g2</bpmn:outgoing></bpmn:eventBasedGateway>'
    + flow("g1", "Gate", "Approved")
    + '<bpmn:intermediateCatchEvent id="Approved"><bpmn:incoming>g1</bpmn:incoming><bpmn:outgoing>a1</bpmn:outgoing>'
      '<bpmn:signalEventDefinition signalRef="Sig_approve"/></bpmn:intermediateCatchEvent>'
    + flow("a1", "Approved", "Ship") + service("Ship", "test.record", "a1", "a2") + flow("a2", "Ship", "Shipped")
    + _end("Shipped", "a2")
    + flow("g2", "Gate", "Timeout")
    + f'<bpmn:intermediateCatchEvent id="Timeout"><bpmn:incoming>g2</bpmn:incoming><bpmn:outgoing>t1</bpmn:outgoing>'
      f'{WAIT}</bpmn:intermediateCatchEvent>'
    + flow("t1", "Timeout", "Remind") + service("Remind", "test.record", "t1", "t2") + flow("t2", "Remind", "Reminded")
    + _end("Reminded", "t2")), ("Sig_approve", "approve"))
