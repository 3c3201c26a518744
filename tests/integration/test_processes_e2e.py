"""Every shipped BPMN end to end on the embedded engine, through commands and read models, in a real platform.

A platform is bootstrapped on a temporary data dir with processes on (the shipped BPMN deployed, the process
manager following the runner). The tests act only as people do (commands: open, claim and complete tasks,
comment, move) and observe only what people see (the cases and tasks read models) or what is stored (events),
while the lifecycle processes move the cases, the saga opens accounts or compensates, and a restart resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import pytest

from casestream import demo_data as d
from casestream.bootstrap import EmbeddedPlatform, bootstrap
from casestream.settings import Settings
from commands import messages as m
from commands.bus import Actor
from domain.case import CaseMovedToStage
from domain.reference import RecordRemoved, RecordSaved
from processes.saga_workers import account_number
from projections.ports import Query
from projections.queries import case_timeline, get_case, list_collection

TENANT = "acme"
ALICE = Actor("alice", TENANT, ("caseworker",))
BOB = Actor("bob", TENANT, ("supervisor",))
ADMIN = Actor("admin", TENANT, ("admin",))
# a customer's reply comes in through a service account (role worker: viewers change nothing), acting as the customer
CUSTOMER = Actor("customer:jane.smit", TENANT, ("worker",))
T = TypeVar("T")

CLAIM_DATA = {"policy_number": "POL-1234567", "claimant_name": "Jan Smit", "incident_date": "2025-09-01",
              "amount": 1200.0, "currency": "EUR", "category": "storm"}
COMPLAINT_DATA = {"customer_name": "Jane Smit", "channel": "email", "severity": "low", "product": "home-plus",
                  "received_date": "2025-09-20", "customer_email": "jane.smit@example.net"}
ONBOARDING_DATA = {"company_name": "Tulip Logistics B.V.", "registration_number": "NL12345678", "country": "nl",
                   "industry": "logistics", "risk_level": "low", "contact_name": "Jan Smit",
                   "contact_email": "jan.smit@tulip.example"}


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll probe until it returns something truthy (processes run on background threads)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def start(data_dir: Path) -> EmbeddedPlatform:
    platform = bootstrap(Settings(data_dir=data_dir, processes="on"))
    assert platform.processes is not None and platform.processes.wait_ready(60), platform.processes
    return platform


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def platform(data_dir: Path) -> Iterator[EmbeddedPlatform]:
    running = start(data_dir)
    try:
        _publish(running)
        yield running
    finally:
        running.close()


def _publish(platform: EmbeddedPlatform) -> None:
    for record_type in d.PROCESS_RECORD_TYPES:
        platform.bus.dispatch(m.DefineRecordType(**record_type), ADMIN)
    for spec in d.LIVE_DEFINITIONS:
        platform.bus.dispatch(m.PublishCaseDefinition(**spec), ADMIN)


def open_case(platform: EmbeddedPlatform, kind: str, data: dict[str, Any]) -> str:
    return platform.bus.dispatch(m.OpenCase(definition_key=kind, title=f"A {kind}", data=data), ALICE).id


def case(platform: EmbeddedPlatform, case_id: str) -> dict[str, Any]:
    """The case as the read model shows it, once it holds everything stored so far (read-your-writes)."""
    assert platform.runner.wait(platform.store.max_position(), 30)
    return get_case(platform.documents, TENANT, case_id)


def tasks(platform: EmbeddedPlatform, case_id: str) -> list[dict[str, Any]]:
    return platform.documents.find(Query("tasks", TENANT, {"case_id": case_id}, limit=100))


def inbox_task(platform: EmbeddedPlatform, case_id: str, element_id: str, *, after: set[str] | None = None) -> dict[
        str, Any]:
    """Wait until the inbox shows an open task of the process element (a new one when `after` lists old ids)."""
    def probe() -> dict[str, Any] | None:
        return next((t for t in tasks(platform, case_id) if t["element_id"] == element_id and t["active"]
                     and t["id"] not in (after or set())), None)

    return wait_for(f"an open {element_id} task in the inbox", probe)


def complete(platform: EmbeddedPlatform, task: dict[str, Any], data: dict[str, Any], actor: Actor = ALICE) -> None:
    """What a person does in the inbox: claim the task (caseworkers), then complete it with the form data."""
    if "supervisor" not in actor.roles:
        platform.bus.dispatch(m.ClaimTask(task_id=UUID(task["id"])), actor)
    platform.bus.dispatch(m.CompleteTask(task_id=UUID(task["id"]), data=data), actor)


def stage_is(platform: EmbeddedPlatform, case_id: str, stage: str) -> Callable[[], bool]:
    return lambda: case(platform, case_id)["stage"] == stage


def moved_by(platform: EmbeddedPlatform, case_id: str) -> list[tuple[str, str]]:
    """(stage entered, who moved it) for every move of the case, from the event store."""
    return [(e.to_stage, e.actor) for e in platform.store.events_of(UUID(case_id)) if isinstance(e, CaseMovedToStage)]


def settle(platform: EmbeddedPlatform) -> None:
    """Wait until the read models and the process manager have everything stored so far."""
    head = platform.store.max_position()
    assert platform.runner.wait(head, 30)
    assert platform.processes is not None and platform.processes.manager.wait(head, 30)


# -- claim ------------------------------------------------------------------------------------------------

def test_claim_is_moved_by_its_lifecycle_and_review_tasks_from_the_inbox(platform: EmbeddedPlatform) -> None:
    case_id = open_case(platform, "claim", CLAIM_DATA)
    triage = inbox_task(platform, case_id, "Task_triage")
    assert case(platform, case_id)["stage"] == "triage"
    assert (triage["title"], triage["candidate_groups"], triage["priority"]) == ("Triage the claim", ["caseworker"], 50)
    assert triage["form_schema"]["required"] == ["route"]

    with pytest.raises(Exception, match="route"):  # the form schema is enforced on completion
        complete(platform, triage, {"route": "pay-now"})
    platform.bus.dispatch(m.CompleteTask(task_id=UUID(triage["id"]), data={"route": "assessment"}), ALICE)

    assess = inbox_task(platform, case_id, "Task_assess")
    assert case(platform, case_id)["stage"] == "assessment"
    complete(platform, assess, {"approved_amount": 1000})

    done = wait_for("the claim closed", lambda: (c := case(platform, case_id))["status"] == "closed" and c)
    assert (done["stage"], done["resolution"], done["data"]["approved_amount"]) == ("settled", "approved", 1000)
    assert moved_by(platform, case_id) == [(s, "process:claim-case") for s in
                                           ("triage", "assessment", "approval", "payment", "settled")]
    # history: the process start and the tasks are on the case's timeline (the process completes after the close
    # that ends it, so its last event may still be on its way to the read model)
    wanted = {"ProcessStarted", "TaskCreated", "TaskCompleted", "ProcessCompleted"}
    wait_for("the process history on the timeline",
             lambda: wanted <= {e["type"] for e in case_timeline(platform.documents, TENANT, case_id)})


def test_suspicious_claim_goes_to_fraud_review_and_is_rejected_there(platform: EmbeddedPlatform) -> None:
    case_id = open_case(platform, "claim", {**CLAIM_DATA, "amount": 48_000.0})
    complete(platform, inbox_task(platform, case_id, "Task_triage"), {"route": "fraud-review"})
    fraud = inbox_task(platform, case_id, "Task_fraud")
    current = case(platform, case_id)
    assert (current["stage"], current["queue"], fraud["candidate_groups"]) == ("fraud-review", "fraud", ["supervisor"])
    complete(platform, fraud, {"cleared": False, "note": "Invoice was forged."}, BOB)
    done = wait_for("the claim closed", lambda: (c := case(platform, case_id))["status"] == "closed" and c)
    assert (done["stage"], done["resolution"]) == ("fraud-review", "rejected")


def test_large_claim_waits_for_a_supervisor_approval(platform: EmbeddedPlatform) -> None:
    case_id = open_case(platform, "claim", {**CLAIM_DATA, "amount": 25_000.0})
    complete(platform, inbox_task(platform, case_id, "Task_triage"), {"route": "assessment"})
    complete(platform, inbox_task(platform, case_id, "Task_assess"), {"approved_amount": 24_000})
    approve = inbox_task(platform, case_id, "Task_approve")
    assert case(platform, case_id)["stage"] == "approval"
    complete(platform, approve, {"approve": True}, BOB)
    wait_for("the claim settled", stage_is(platform, case_id, "settled"))


# -- complaint --------------------------------------------------------------------------------------------

def test_complaint_waits_for_the_customer_and_a_customer_comment_correlates_the_message(
    platform: EmbeddedPlatform,
) -> None:
    case_id = open_case(platform, "complaint", COMPLAINT_DATA)
    first = inbox_task(platform, case_id, "Task_investigate")
    assert (case(platform, case_id)["stage"], case(platform, case_id)["queue"]) == ("investigating", "complaints")
    complete(platform, first, {"need_customer_info": True})
    wait_for("the complaint awaiting the customer", stage_is(platform, case_id, "awaiting-customer"))

    # a caseworker's comment is not the customer's reply: the automation rule's condition does not hold
    platform.bus.dispatch(m.AddComment(case_id=UUID(case_id), body="Sent the customer our questions."), ALICE)
    settle(platform)
    assert case(platform, case_id)["stage"] == "awaiting-customer"

    platform.bus.dispatch(m.AddComment(case_id=UUID(case_id), body="Here are my receipts."), CUSTOMER)
    second = inbox_task(platform, case_id, "Task_investigate", after={first["id"]})
    assert case(platform, case_id)["stage"] == "investigating"
    complete(platform, second, {"need_customer_info": False, "root_cause": "communication"})

    respond = inbox_task(platform, case_id, "Task_respond")
    assert case(platform, case_id)["stage"] == "response-drafted"
    complete(platform, respond, {"resolution": "partially-upheld"})
    done = wait_for("the complaint closed", lambda: (c := case(platform, case_id))["status"] == "closed" and c)
    assert (done["stage"], done["resolution"], done["data"]["root_cause"]) == (
        "responded", "partially-upheld", "communication")
    assert [s for s, _ in moved_by(platform, case_id)] == [
        "investigating", "awaiting-customer", "investigating", "response-drafted", "responded"]


def test_critical_complaint_is_escalated_after_investigation(platform: EmbeddedPlatform) -> None:
    case_id = open_case(platform, "complaint", {**COMPLAINT_DATA, "severity": "critical"})
    investigate = inbox_task(platform, case_id, "Task_investigate")
    assert investigate["priority"] == 90  # priority from FEEL over the case data
    complete(platform, investigate, {"need_customer_info": False, "root_cause": "system-error"})
    inbox_task(platform, case_id, "Task_respond")
    assert [s for s, _ in moved_by(platform, case_id)] == ["investigating", "escalated", "response-drafted"]
    assert case(platform, case_id)["queue"] == "escalations"


# -- onboarding and the saga --------------------------------------------------------------------------------

def _records(platform: EmbeddedPlatform, type_key: str) -> list[dict[str, Any]]:
    return list_collection(platform.documents, "records", TENANT, type_key=type_key)


def test_onboarding_lifecycle_then_the_saga_opens_the_account(platform: EmbeddedPlatform) -> None:
    case_id = open_case(platform, "onboarding", ONBOARDING_DATA)
    complete(platform, inbox_task(platform, case_id, "Task_documents"),
             {"documents_received": ["chamber-extract", "id-director"]})
    complete(platform, inbox_task(platform, case_id, "Task_kyc"), {"ubo_verified": True})
    approve = inbox_task(platform, case_id, "Task_approve")  # low risk and verified: no due diligence task
    assert case(platform, case_id)["stage"] == "approval"
    complete(platform, approve, {"approve": True}, BOB)

    done = wait_for("the onboarding closed", lambda: (c := case(platform, case_id))["status"] == "closed" and c)
    number = account_number(UUID(case_id))
    assert (done["stage"], done["resolution"]) == ("activation", "activated")
    assert done["data"]["documents_received"] == ["chamber-extract", "id-director"]
    assert [r["key"] for r in _records(platform, "account-number")] == [number]
    assert [r["data"] for r in _records(platform, "access-grant")] == [
        {"account_number": number, "company": "Tulip Logistics B.V.", "role": "owner", "case_id": case_id}]
    welcome = [e for e in platform.store.events_of(UUID(case_id)) if type(e).__name__ == "CaseNotificationRequested"]
    assert [(e.workflow, e.recipients, e.actor) for e in welcome] == [  # type: ignore[attr-defined]
        ("onboarding-welcome", ["jan.smit@tulip.example"], "process:onboarding-saga")]


def test_high_risk_onboarding_needs_due_diligence_and_is_declined_there(platform: EmbeddedPlatform) -> None:
    case_id = open_case(platform, "onboarding", {**ONBOARDING_DATA, "risk_level": "high"})
    complete(platform, inbox_task(platform, case_id, "Task_documents"), {"documents_received": ["ubo-register"]})
    complete(platform, inbox_task(platform, case_id, "Task_kyc"), {"ubo_verified": True})
    edd = inbox_task(platform, case_id, "Task_edd")
    assert (case(platform, case_id)["stage"], edd["candidate_groups"]) == ("risk-review", ["supervisor"])
    complete(platform, edd, {"accept": False, "note": "Sanctions hit on a director."}, BOB)
    done = wait_for("the onboarding closed", lambda: (c := case(platform, case_id))["status"] == "closed" and c)
    assert (done["stage"], done["resolution"], done["data"]["ubo_verified"]) == ("risk-review", "rejected", True)
    assert _records(platform, "account-number") == []  # the saga never ran


def test_saga_failure_compensates_the_completed_steps_through_commands(platform: EmbeddedPlatform) -> None:
    # a definition whose cases may lack a contact e-mail; entering `activation` auto-starts the saga
    lite = {**d.ONBOARDING_LIVE, "key": "onboarding-lite", "lifecycle_process": None,
            "schema": {**d.ONBOARDING["schema"], "required": ["company_name", "registration_number", "country",
                                                              "risk_level"]}}
    platform.bus.dispatch(m.PublishCaseDefinition(**lite), ADMIN)
    data = {k: v for k, v in ONBOARDING_DATA.items() if k != "contact_email"}
    case_id = platform.bus.dispatch(m.OpenCase(definition_key="onboarding-lite", title="No e-mail", data=data),
                                    ALICE).id
    for stage in ("document-check", "kyc", "risk-review", "approval", "activation"):
        platform.bus.dispatch(m.MoveCaseToStage(case_id=UUID(case_id), stage=stage), ALICE)

    # the welcome cannot be sent (no recipient): compensation undoes access, then the account number
    wait_for("the case handed to escalations", lambda: case(platform, case_id)["queue"] == "escalations")
    number = account_number(UUID(case_id))
    records = [e for e in platform.store.read(0, 100_000) if isinstance(e.event, RecordSaved | RecordRemoved)]
    assert [(type(p.event).__name__, getattr(p.event, "key", None), p.event.actor) for p in records] == [
        ("RecordSaved", number, "process:onboarding-saga"),
        ("RecordSaved", f"{number}-owner", "process:onboarding-saga"),
        ("RecordRemoved", None, "process:onboarding-saga"),
        ("RecordRemoved", None, "process:onboarding-saga"),
    ]
    removed = [p.event.aggregate_id for p in records if isinstance(p.event, RecordRemoved)]
    saved = [p.event.aggregate_id for p in records if isinstance(p.event, RecordSaved)]
    assert removed == saved[::-1]  # undone in reverse order
    settle(platform)
    assert _records(platform, "account-number") == [] and _records(platform, "access-grant") == []
    assert case(platform, case_id)["status"] == "open"
    types = [e["type"] for e in case_timeline(platform.documents, TENANT, case_id)]
    assert {"ProcessStarted", "BpmnErrorThrown", "CompensationStarted"} <= set(types)


# -- restart --------------------------------------------------------------------------------------------------

def test_restart_mid_process_keeps_the_open_task_and_the_pending_sla_timer(data_dir: Path) -> None:
    first = start(data_dir)
    try:
        _publish(first)
        case_id = open_case(first, "claim", CLAIM_DATA)
        triage = inbox_task(first, case_id, "Task_triage")
        settle(first)
    finally:
        first.close()

    second = start(data_dir)
    try:
        assert second.processes is not None
        assert second.processes.recovered  # the claim's instance came back from the event store
        assert [t["id"] for t in tasks(second, case_id) if t["active"]] == [triage["id"]]
        # nine hours later the 8-hour triage SLA fires on the recovered instance and raises the task's priority
        fired = second.processes.engine.fire_due_timers(datetime.now(UTC) + timedelta(hours=9))
        assert fired == 1
        wait_for("the triage task escalated", lambda: next(
            t for t in tasks(second, case_id) if t["id"] == triage["id"])["priority"] == 90)
        # the open user task is still the process's: completing it moves the case on
        complete(second, next(t for t in tasks(second, case_id) if t["id"] == triage["id"]), {"route": "reject"})
        done = wait_for("the claim closed", lambda: (c := case(second, case_id))["status"] == "closed" and c)
        assert (done["stage"], done["resolution"]) == ("triage", "rejected")
        assert moved_by(second, case_id) == [("triage", "process:claim-case")]  # nothing repeated after restart
    finally:
        second.close()


# -- automation rules and the demo ------------------------------------------------------------------------------

def test_automation_rule_sets_the_queue_when_a_claim_is_assigned(platform: EmbeddedPlatform) -> None:
    case_id = open_case(platform, "claim", CLAIM_DATA)
    inbox_task(platform, case_id, "Task_triage")
    platform.bus.dispatch(m.AssignCase(case_id=UUID(case_id), assignee="bob"), BOB)  # the rule's condition: not bob
    settle(platform)
    assert case(platform, case_id)["queue"] is None
    platform.bus.dispatch(m.AssignCase(case_id=UUID(case_id), assignee="carol"), BOB)
    wait_for("the claim in the claims team's queue", lambda: case(platform, case_id)["queue"] == "claims-team")
    queued = [e for e in platform.store.events_of(UUID(case_id)) if type(e).__name__ == "CaseQueued"]
    assert [(e.queue, e.actor) for e in queued] == [("claims-team", "automation")]  # type: ignore[attr-defined]


def test_demo_live_cases_move_on_their_own_and_the_history_is_left_alone(data_dir: Path) -> None:
    from casestream.demo import load_demo, load_live_cases

    platform = start(data_dir)
    try:
        summary = load_demo(platform.bus, cases=12)
        assert load_live_cases(platform.bus, cases=3) == 3
        settle(platform)
        def three_tasks() -> list[dict[str, Any]] | None:
            found = platform.documents.find(Query("tasks", TENANT, {"active": True}, limit=100))
            return found if len(found) == 3 else None

        live = wait_for("a task for each live case", three_tasks)
        assert sorted(t["element_id"] for t in live) == ["Task_documents", "Task_investigate", "Task_triage"]
        stages = {case(platform, t["case_id"])["stage"] for t in live}
        assert stages == {"triage", "investigating", "document-check"}
        # the history's cases (definition versions without processes) were moved by people only
        moved = [p.event for p in platform.store.read(0, 100_000) if isinstance(p.event, CaseMovedToStage)]
        by_process = [e for e in moved if e.actor.startswith("process:")]
        assert len(by_process) == 3 and len(moved) > 3 and summary.cases == 12
    finally:
        platform.close()


def test_a_reply_stored_while_processes_were_off_resumes_the_waiting_complaint_on_restart(data_dir: Path) -> None:
    first = start(data_dir)
    try:
        _publish(first)
        case_id = open_case(first, "complaint", COMPLAINT_DATA)
        investigate = inbox_task(first, case_id, "Task_investigate")
        complete(first, investigate, {"need_customer_info": True})
        wait_for("the complaint awaiting the customer", stage_is(first, case_id, "awaiting-customer"))
        settle(first)
    finally:
        first.close()

    without = bootstrap(Settings(data_dir=data_dir, processes="off"))  # the API runs, processes do not
    try:
        assert without.processes is None
        without.bus.dispatch(m.AddComment(case_id=UUID(case_id), body="Receipts attached."), CUSTOMER)
        assert without.runner.wait(without.store.max_position(), 30)
        assert case(without, case_id)["stage"] == "awaiting-customer"
    finally:
        without.close()

    again = start(data_dir)  # the manager resumes before the reply, the engine has the message wait back
    try:
        inbox_task(again, case_id, "Task_investigate", after={investigate["id"]})
        assert case(again, case_id)["stage"] == "investigating"
    finally:
        again.close()
