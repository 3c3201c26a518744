"""Public Camunda 8 models (tests/data/camunda_models, see the README there) deployed on the embedded engine:
each runs to its end, driven like Camunda would be (job workers, people completing tasks, messages, time
passing), or is refused naming the element it cannot run."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.event_store import RecorderEventStore
from commands.bus import Actor, CommandBus
from domain.process import IncidentRaised, ProcessCompleted, process_instance_id
from processes.bpmn import BpmnRejected
from processes.engine import EmbeddedEngine
from processes.jobs import Completed, Job, known_task_types
from tests.unit.conftest import TENANT, open_claim

MODELS = Path(__file__).resolve().parents[1] / "data" / "camunda_models"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Runs:
    """How to drive a model to its end, and what it must have decided on the way."""

    variables: dict[str, Any] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # job type -> what its worker returns
    user_tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # element id -> completion variables
    messages: tuple[tuple[str, str, dict[str, Any]], ...] = ()  # (name, correlation key, variables), in order
    expect: dict[str, Any] = field(default_factory=dict)  # variables the instance must end with
    ran: tuple[str, ...] = ()  # job types that must have run


@dataclass(frozen=True)
class Refused:
    """The deploy is refused naming this element and saying this."""

    element_id: str
    message: str


EXPECTED: dict[str, Runs | Refused] = {
    "get-started_rocket-launch.bpmn": Runs(
        variables={"fuelLevel": 80, "missionName": "Apollo"},
        expect={"systemStatus": "ALL SYSTEMS GO", "destination": "Mars",
                "missionResult": "Crew Apollo reached Mars! Fuel: 55%. Experiments: 5"}),
    "get-started_order-process.bpmn": Runs(ran=("checkInventory", "chargePayment", "shipItems")),
    "tutorials_quick-start-microservices.bpmn": Runs(ran=("orchestrate-something",)),
    "tutorials_quick-start-human-tasks.bpmn": Runs(
        user_tasks={"decide-dinner": {"meal": "salad"}}, expect={"meal": "salad"}),
    "tutorials_error-handling.bpmn": Runs(
        ran=("VerityData", "UpdateCMSRecord", "CreateSupportAccount", "GrantPlaformAccess", "SendMessageToUser")),
    "tutorials_enforcing-sla.bpmn": Runs(
        user_tasks={"AnswerInquireTask": {"answer": "we fixed it"}},
        messages=(("Reply", "exampleKey", {"reply": "thanks"}),),
        expect={"key": "exampleKey", "reply": "thanks", "answer": "we fixed it"},
        ran=("io.camunda:http-json:1",)),
    "tutorials_ticket-booking.bpmn": Runs(
        jobs={"io.camunda:http-json:1": {"paymentRequestId": "pay-1"}},
        messages=(("msg-payment-received", "pay-1", {"paid": True}),),
        expect={"paymentRequestId": "pay-1", "paid": True}, ran=("io.camunda:http-json:1",)),
    "examples_customer-onboarding.bpmn": Runs(
        variables={"paymentType": "invoice", "customerRegionScore": 60, "monthlyPayment": 10},
        expect={"manualCheckNecessary": False}, ran=("processing",)),
    "examples_get-up.bpmn": Runs(
        jobs={"checkProgress": {"progress": "ready"}}, expect={"breakfastPrepared": True},
        ran=("callKids", "checkProgress")),
    "examples_multi-instance-simple-example.bpmn": Refused(
        "Definitions_0yd2dhe", "more than one executable process (MICallActivityProcess, ElementCreationProcess)"),
}


class FakeClock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def job_types(xml: bytes) -> set[str]:
    return {t.decode() for t in re.findall(rb'taskDefinition type="([^"=][^"]*)"', xml)}


def test_every_model_in_the_folder_has_an_expected_outcome() -> None:
    assert sorted(p.name for p in MODELS.glob("*.bpmn")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_public_camunda_model_runs_or_is_refused_naming_the_element(
    name: str, bus: CommandBus, store: RecorderEventStore, alice: Actor, claim: Any
) -> None:
    xml = (MODELS / name).read_bytes()
    expected = EXPECTED[name]
    clock = FakeClock()
    jobs: list[Job] = []
    # the models' job types are served by this test (as Camunda's job workers and connectors would be)
    engine = EmbeddedEngine(bus, store, clock=clock, task_types=known_task_types() | job_types(xml),
                            on_job_ready=jobs.append)
    for dmn in MODELS.glob("*.dmn"):
        engine.deploy_dmn(dmn.read_bytes())
    if isinstance(expected, Refused):
        with pytest.raises(BpmnRejected) as refused:
            engine.deploy(xml, name)
        assert [(p.element_id, p.message) for p in refused.value.problems] == [
            (expected.element_id, f"{expected.message}; deploy one per file")]
        return
    process_id = engine.deploy(xml, name).process_id
    key = engine.start(process_id, tenant=TENANT, variables=expected.variables, case_id=open_claim(bus, alice).id)
    iid = process_instance_id(TENANT, key)
    messages, ran = list(expected.messages), []
    for _ in range(40):
        if any(isinstance(e, ProcessCompleted) for e in store.events_of(iid)):
            break
        moved = False
        while jobs:
            job = jobs.pop(0)
            ran.append(job.type)
            ref = job.key[len(job.process_instance_key) + 1:]
            engine.job_done(iid, ref, job, Completed(expected.jobs.get(job.type, {})))
            moved = True
        for element, task_id in engine.user_task_ids(key, TENANT).items():
            moved = engine.complete_user_task(TENANT, task_id, expected.user_tasks.get(element, {})) or moved
        if not moved and messages:
            name_, correlation, variables = messages.pop(0)
            moved = engine.correlate_message(TENANT, name_, correlation, variables)
        due = engine.next_timer()
        if not moved and due is not None:  # nothing else to do: time passes until the next timer
            clock.now = max(clock.now, due)
            engine.fire_due_timers()
    stored = store.events_of(iid)
    assert not [e.message for e in stored if isinstance(e, IncidentRaised)]
    assert any(isinstance(e, ProcessCompleted) for e in stored), f"{name} did not complete"
    final: dict[str, Any] = {}
    for event in stored:
        final.update((getattr(event, "delta", None) or {}).get("vars", {}))
        final.update(getattr(event, "variables", None) or {})
    assert {k: final.get(k) for k in expected.expect} == expected.expect
    assert set(expected.ran) <= set(ran)
    assert not messages, "a message the model should have waited for was not needed"
