"""Deploy-time checking of Zeebe BPMN: the sample is accepted; edited variants are refused naming the element."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from processes.bpmn import BpmnRejected, ZeebeServiceTask, check_bpmn

SAMPLE = Path(__file__).resolve().parent / "bpmn" / "claim_lifecycle_sample.bpmn"
VALID = SAMPLE.read_text(encoding="utf-8")
KNOWN = {"case.move-stage", "case.assign", "case.comment"}


def replace(old: str, new: str, count: int = 1) -> Callable[[str], str]:
    def edit(xml: str) -> str:
        assert xml.count(old) >= count, f"sample no longer contains {old!r}"
        return xml.replace(old, new, count)
    return edit


def test_valid_sample_is_accepted_with_its_task_types() -> None:
    deployed = check_bpmn(VALID.encode(), KNOWN)
    assert deployed.process_id == "claim-lifecycle"
    assert deployed.name == "Claim lifecycle"
    assert deployed.task_types == {"case.move-stage", "case.assign"}
    assert deployed.service_tasks == {
        "Task_triage": "case.move-stage",
        "Task_assign": "case.assign",
        "Task_escalate": "case.move-stage",
        "Task_settle": "case.move-stage",
    }
    assert "=amount > 1000" in deployed.expressions
    assert deployed.expressions["=amount > 1000"].test({"amount": 1001}) is True


def test_parsed_spec_knows_each_service_task_type_and_zeebe_extensions() -> None:
    spec = check_bpmn(VALID.encode(), KNOWN).spec
    triage = spec.task_specs["Task_triage"]
    assert isinstance(triage, ZeebeServiceTask)
    assert triage.task_type == "case.move-stage"
    assert triage.retries == "3"
    assert triage.headers == {"reason": "claim opened"}
    assert triage.input_mappings == [
        {"source": "=case_id", "target": "caseId"},
        {"source": '="triage"', "target": "stage"},
    ]
    assert spec.task_specs["Task_assign"].output_mappings == [{"source": "=assignee", "target": "assignee"}]
    review = spec.task_specs["Task_review"]
    assert review.extensions["assignmentDefinition"] == {"assignee": "=assignee", "candidateGroups": "claims"}
    assert review.extensions["formDefinition"] == {"formKey": "claim-review"}


def test_embedded_engine_waits_at_the_first_service_task() -> None:
    deployed = check_bpmn(VALID.encode(), KNOWN)
    workflow = BpmnWorkflow(deployed.spec, deployed.subprocess_specs)
    workflow.do_engine_steps()
    waiting = workflow.get_tasks(state=TaskState.STARTED | TaskState.READY)
    assert [t.task_spec.name for t in waiting] == ["Task_triage"]
    assert waiting[0].state == TaskState.STARTED


def timer(kind: str, value: str) -> Callable[[str], str]:
    return replace('<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT48H</bpmn:timeDuration>',
                   f'<bpmn:{kind} xsi:type="bpmn:tFormalExpression">{value}</bpmn:{kind}>')


ACCEPTED_VARIANTS = {
    "timer date with zone": timer("timeDate", "2026-01-01T09:00:00Z"),
    "timer cycle": timer("timeCycle", "R3/PT1H"),
    "timer cycle without count": timer("timeCycle", "R/P1D"),
    "timer cycle with start": timer("timeCycle", "R2/2026-01-01T09:00:00+01:00/P1D"),
    "timer duration as FEEL": replace(">PT48H<", ">=sla_duration<"),
    "timer duration in days and hours": replace(">PT48H<", ">P1DT12H<"),
    "header as FEEL": replace('value="claim opened"', 'value="=string(amount)"'),
}


@pytest.mark.parametrize("edit", ACCEPTED_VARIANTS.values(), ids=ACCEPTED_VARIANTS.keys())
def test_accepted_variants(edit: Callable[[str], str]) -> None:
    assert check_bpmn(edit(VALID).encode(), KNOWN).process_id == "claim-lifecycle"


# (edit, element id the problem must name, fragment of the message)
REFUSED: dict[str, tuple[Callable[[str], str], str | None, str]] = {
    "truncated XML": (lambda xml: xml[:-40], None, "invalid XML"),
    "not executable": (replace('isExecutable="true"', 'isExecutable="false"'), "Definitions_claim_lifecycle",
                       "no executable process"),
    "two executable processes": (
        replace("</bpmn:definitions>", '<bpmn:process id="other" isExecutable="true"><bpmn:startEvent id="S2"/>'
                                       "</bpmn:process></bpmn:definitions>"),
        "Definitions_claim_lifecycle", "more than one executable process"),
    "service task without taskDefinition": (replace('<zeebe:taskDefinition type="case.assign" />', ""),
                                            "Task_assign", "no zeebe:taskDefinition type"),
    "service task with empty type": (replace('type="case.assign"', 'type=""'), "Task_assign",
                                     "no zeebe:taskDefinition type"),
    "unknown task type": (replace('type="case.assign"', 'type="case.delete"'), "Task_assign",
                          "unknown task type 'case.delete'"),
    "task type as expression": (replace('type="case.assign"', 'type="=job_type"'), "Task_assign",
                                "must be a fixed known type"),
    "bad retries": (replace('retries="3"', 'retries="three"'), "Task_triage", "not a whole number"),
    "condition with unsupported FEEL": (replace("=amount &gt; 1000", "=random number() &gt; 0.5"), "Flow_large",
                                        "function 'random number' is not in the supported FEEL subset"),
    "condition with unknown function": (replace("=amount &gt; 1000", "=risk(amount) &gt; 3"), "Flow_large",
                                        "unknown function 'risk'"),
    "condition without '='": (replace("=amount &gt; 1000", "amount &gt; 1000"), "Flow_large",
                              "not a FEEL expression"),
    "condition that does not parse": (replace("=amount &gt; 1000", "=amount &gt;"), "Flow_large",
                                      "unexpected end of expression"),
    "gateway flow without condition": (
        replace('<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">=amount &gt; 1000'
                "</bpmn:conditionExpression>", ""),
        "Flow_large", "has no condition and is not the gateway's default"),
    "condition on a task's outgoing flow": (
        replace('<bpmn:sequenceFlow id="Flow_to_settle" sourceRef="Gateway_merge" targetRef="Task_settle" />',
                '<bpmn:sequenceFlow id="Flow_to_settle" sourceRef="Gateway_merge" targetRef="Task_settle" />'
                '<bpmn:sequenceFlow id="Flow_odd" sourceRef="Task_settle" targetRef="End_settled">'
                '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">=true</bpmn:conditionExpression>'
                "</bpmn:sequenceFlow>"),
        "Flow_odd", "only allowed on a flow leaving an exclusive or inclusive gateway"),
    "flow to a missing element": (replace('targetRef="End_settled"', 'targetRef="End_nowhere"'), "Flow_to_end",
                                  "targetRef 'End_nowhere' does not name an element"),
    "input mapping with unsupported FEEL": (replace("=&quot;triage&quot;", "=uuid()"),
                                            "Task_triage", "function 'uuid' is not in the supported FEEL subset"),
    "output mapping with unknown function": (replace('source="=assignee"', 'source="=pick(assignee)"'),
                                             "Task_assign", "unknown function 'pick'"),
    "mapping without target": (replace('target="caseId"', 'target=""'), "Task_triage",
                               "is not a variable name or path"),
    "header with unsupported FEEL": (replace('value="claim opened"', 'value="=x.f(1)"'),
                                     "Task_triage", "only built-in functions can be invoked"),
    "assignee with unsupported FEEL": (replace('assignee="=assignee"', 'assignee="=uuid()"'),
                                       "Task_review", "function 'uuid' is not in the supported FEEL subset"),
    "message without correlation key": (replace('<zeebe:subscription correlationKey="=case_id" />', ""),
                                        "Catch_documents", "no zeebe:subscription correlationKey"),
    "empty correlation key": (replace('correlationKey="=case_id"', 'correlationKey=""'), "Catch_documents",
                              "no zeebe:subscription correlationKey"),
    "correlation key with temporal literal": (replace('correlationKey="=case_id"', 'correlationKey="=@&quot;x&quot;"'),
                                              "Catch_documents", "is not a date, time, date and time or duration"),
    "catch of an undefined message": (replace('messageRef="Message_documents"', 'messageRef="Message_nope"'),
                                      "Catch_documents", "'Message_nope', which is not defined"),
    "timer duration in words": (replace(">PT48H<", ">48 hours<"), "Timer_review_sla",
                                "is not an ISO-8601 duration"),
    "timer duration with no amount": (replace(">PT48H<", ">PT<"), "Timer_review_sla",
                                      "is not an ISO-8601 duration"),
    "timer duration with hours before T": (replace(">PT48H<", ">P48H<"), "Timer_review_sla",
                                           "is not an ISO-8601 duration"),
    "timer date without zone": (timer("timeDate", "2026-01-01T09:00:00"), "Timer_review_sla",
                                "is not an ISO-8601 date-time with a zone offset"),
    "timer date that is not a date": (timer("timeDate", "next monday"), "Timer_review_sla",
                                      "is not an ISO-8601 date-time"),
    "timer cycle as cron": (timer("timeCycle", "0 0 9 * * MON"), "Timer_review_sla",
                            "is not an ISO-8601 repeating interval"),
    "timer cycle without interval": (timer("timeCycle", "R3"), "Timer_review_sla",
                                     "is not an ISO-8601 repeating interval"),
    "timer with no value": (
        replace('<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT48H</bpmn:timeDuration>', ""),
        "Timer_review_sla", "exactly one of timeDate, timeDuration or timeCycle"),
    "timer FEEL outside the subset": (replace(">PT48H<", '>=uuid()<'), "Timer_review_sla",
                                      "function 'uuid' is not in the supported FEEL subset"),
}


@pytest.mark.parametrize(("edit", "element_id", "fragment"), REFUSED.values(), ids=REFUSED.keys())
def test_refused_variants_name_the_element(
    edit: Callable[[str], str], element_id: str | None, fragment: str
) -> None:
    with pytest.raises(BpmnRejected) as info:
        check_bpmn(edit(VALID).encode(), KNOWN)
    matching = [p for p in info.value.problems if p.element_id == element_id and fragment in p.message]
    assert matching, f"no problem on {element_id!r} containing {fragment!r}: {info.value.problems}"
    assert (element_id or "<document>") in str(info.value)


def test_task_type_unknown_to_this_deployment() -> None:
    with pytest.raises(BpmnRejected) as info:
        check_bpmn(VALID.encode(), {"case.move-stage"})
    assert [(p.element_id, p.message) for p in info.value.problems] == [
        ("Task_assign", "unknown task type 'case.assign' (known: case.move-stage)")
    ]


def test_every_problem_is_reported_at_once() -> None:
    xml = replace('type="case.assign"', 'type="case.delete"')(VALID)
    xml = replace('<zeebe:subscription correlationKey="=case_id" />', "")(xml)
    xml = replace(">PT48H<", ">soon<")(xml)
    with pytest.raises(BpmnRejected) as info:
        check_bpmn(xml.encode(), KNOWN)
    assert {p.element_id for p in info.value.problems} == {"Task_assign", "Catch_documents", "Timer_review_sla"}
    assert all(p.line for p in info.value.problems)


def test_xml_entities_are_refused() -> None:
    xml = '<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n' + VALID.split("?>", 1)[1]
    with pytest.raises(BpmnRejected) as info:
        check_bpmn(xml.encode(), KNOWN)
    assert "DOCTYPE" in str(info.value)


def test_not_bpmn_at_all() -> None:
    with pytest.raises(BpmnRejected) as info:
        check_bpmn(b"<html><body/></html>", KNOWN)
    assert "not a BPMN 2.0 document" in str(info.value)


def test_spiffworkflow_schema_problems_are_reported() -> None:
    # Our checks pass, but the BPMN XSD (via SpiffWorkflow's validator) refuses a duplicate id.
    xml = replace('id="End_settled" name="Claim settled"', 'id="End_escalated" name="Claim settled"')(VALID)
    xml = replace('targetRef="End_settled"', 'targetRef="End_escalated"')(xml)
    with pytest.raises(BpmnRejected) as info:
        check_bpmn(xml.encode(), KNOWN)
    [problem] = info.value.problems
    assert problem.element_id == "End_escalated"
    assert problem.message.startswith("SpiffWorkflow: ")
    assert "xs:ID" in problem.message
