"""FEEL dates and loops inside a running process (embedded engine): the everyday due date, a timer, a mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.event_store import RecorderEventStore
from commands.bus import Actor, CommandBus
from domain.task import TaskCreated
from processes.engine import EmbeddedEngine
from processes.jobs import known_task_types
from tests.unit import engine_models as models
from tests.unit.conftest import TENANT, open_claim

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# start -> user task due in two days (its output maps a FEEL list) -> timer of =duration(...) -> end
FOLLOW_UP = models.process("follow-up", (
    '<bpmn:startEvent id="Begin"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
    + models.flow("f1", "Begin", "Call")
    + '<bpmn:userTask id="Call" name="Call the customer"><bpmn:extensionElements>'
      '<zeebe:assignmentDefinition assignee="=owner"/>'
      '<zeebe:taskSchedule dueDate="=now() + duration(&quot;P2D&quot;)"/>'
      '<zeebe:ioMapping><zeebe:output source="=for d in [1, 7, 30] return string(date(opened) + '
      'duration(&quot;P1D&quot;) * d)" target="reminders"/></zeebe:ioMapping>'
      '</bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>'
    + models.flow("f2", "Call", "Pause")
    + '<bpmn:intermediateCatchEvent id="Pause"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>'
      '<bpmn:timerEventDefinition><bpmn:timeDuration>=duration("PT" + string(hours) + "H")</bpmn:timeDuration>'
      '</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>'
    + models.flow("f3", "Pause", "Done")
    + '<bpmn:endEvent id="Done"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>'))


class FixedClock:
    def __call__(self) -> datetime:
        return NOW


@pytest.fixture
def engine(bus: CommandBus, store: RecorderEventStore) -> EmbeddedEngine:
    engine = EmbeddedEngine(bus, store, clock=FixedClock(), backoff_seconds=10, task_types=known_task_types())
    engine.deploy(FOLLOW_UP, "follow-up.bpmn")
    return engine


def test_due_date_timer_and_mapping_written_in_feel_dates(
    engine: EmbeddedEngine, store: RecorderEventStore, bus: CommandBus, alice: Actor, claim: Any
) -> None:
    case_id = open_claim(bus, alice).id
    key = engine.start("follow-up", tenant=TENANT, case_id=case_id,
                       variables={"owner": "carol", "opened": "2026-03-02", "hours": 3})
    task_id = engine.user_task_ids(key, TENANT)["Call"]
    created = store.events_of(task_id)[0]
    assert isinstance(created, TaskCreated)
    assert created.due_at is not None
    # now() reads the instance's clock (the fixed one), as its timers do, not the wall clock
    assert datetime.fromisoformat(created.due_at) == NOW + timedelta(days=2)

    assert engine.complete_user_task(TENANT, task_id, {})
    assert engine.next_timer() == NOW + timedelta(hours=3)
    instance = engine.instance(key, TENANT)
    assert instance is not None
    assert instance.variables["reminders"] == ["2026-03-03", "2026-03-09", "2026-04-01"]
