"""Messages published for processes (POST /api/messages' path without HTTP): correlated to a waiting instance,
buffered until a subscription with that name and key opens, expired by the engine's clock, deduplicated by id,
rebuilt from the log after a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from adapters.event_store import RecorderEventStore
from commands.bus import Actor, CommandBus
from commands.process_messages import PublishProcessMessage, parse_time_to_live
from domain.errors import AlreadyExists
from domain.process import MessageCorrelated, ProcessCompleted, process_instance_id
from domain.process_message import ProcessMessageCorrelated
from processes.engine import EmbeddedEngine
from processes.jobs import known_task_types
from processes.message_buffer import Delivery, deliver_published
from tests.unit import engine_models as models
from tests.unit.conftest import TENANT

INTEGRATION = Actor("shop", TENANT, ("worker",))
ORDER_MESSAGE = ('<bpmn:message id="Paid" name="order-paid"><bpmn:extensionElements>'
                 '<zeebe:subscription correlationKey="=order.id"/></bpmn:extensionElements></bpmn:message>')
# a job first (so the instance is not waiting yet when it starts), then a catch keyed by a number in the data
WAIT_PAYMENT = models.process("wait-payment", (
    '<bpmn:startEvent id="Begin"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
    + models.flow("f1", "Begin", "Prepare") + models.service("Prepare", "test.record", "f1", "f2")
    + models.flow("f2", "Prepare", "Payment")
    + '<bpmn:intermediateCatchEvent id="Payment"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>'
      '<bpmn:messageEventDefinition messageRef="Paid"/></bpmn:intermediateCatchEvent>'
    + models.flow("f3", "Payment", "Finish")
    + '<bpmn:endEvent id="Finish"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>'), ORDER_MESSAGE)


class FakeClock:
    """The engine's clock, moved by the test (the bus stamps events with the real time, so it starts there)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(bus: CommandBus, store: RecorderEventStore, clock: FakeClock) -> EmbeddedEngine:
    models.JOBS.clear()
    engine = EmbeddedEngine(bus, store, clock=clock, task_types=known_task_types())
    engine.deploy(WAIT_PAYMENT, "wait-payment.bpmn")
    return engine


def publish(bus: CommandBus, store: RecorderEventStore, engine: EmbeddedEngine, key: Any = 42,
            **fields: Any) -> Delivery:
    result = bus.submit(PublishProcessMessage(name="order-paid", correlation_key=key, **fields), INTEGRATION)
    return deliver_published(store, engine.messages, engine, UUID(result.id), repeated=result.repeated)


def correlations(store: RecorderEventStore, key: str) -> list[MessageCorrelated]:
    return [e for e in store.events_of(process_instance_id(TENANT, key)) if isinstance(e, MessageCorrelated)]


def completed(store: RecorderEventStore, key: str) -> bool:
    return any(isinstance(e, ProcessCompleted) for e in store.events_of(process_instance_id(TENANT, key)))


def test_a_message_to_a_waiting_instance_correlates_now_by_a_key_from_its_data(
    bus: CommandBus, store: RecorderEventStore, engine: EmbeddedEngine
) -> None:
    key = engine.start("wait-payment", tenant=TENANT, variables={"order": {"id": 42}})
    engine.run_jobs()
    assert publish(bus, store, engine, key=7) == Delivery(None, True)  # another order: buffered
    delivery = publish(bus, store, engine, key=42, variables={"amount": 10})
    assert delivery == Delivery(key, False)
    assert [e.correlation_key for e in correlations(store, key)] == ["42"]
    assert completed(store, key)


def test_a_message_published_early_waits_for_the_subscription_and_correlates_once(
    bus: CommandBus, store: RecorderEventStore, engine: EmbeddedEngine
) -> None:
    first = engine.start("wait-payment", tenant=TENANT, variables={"order": {"id": 42}})
    second = engine.start("wait-payment", tenant=TENANT, variables={"order": {"id": 42}})
    assert publish(bus, store, engine, time_to_live="PT10M") == Delivery(None, True)
    assert len(engine.messages) == 1
    engine.run_jobs()  # both reach the catch; the buffered message goes to the first that waits, only
    caught = [k for k in (first, second) if correlations(store, k)]
    assert len(caught) == 1 and completed(store, caught[0])
    assert len(engine.messages) == 0
    recorded = [e for e in store.read(0, 10_000) if isinstance(e.event, ProcessMessageCorrelated)]
    assert [e.event.process_instance_key for e in recorded] == caught


def test_an_expired_message_never_correlates(
    bus: CommandBus, store: RecorderEventStore, engine: EmbeddedEngine, clock: FakeClock
) -> None:
    key = engine.start("wait-payment", tenant=TENANT, variables={"order": {"id": 42}})
    assert publish(bus, store, engine, time_to_live=60_000) == Delivery(None, True)
    clock.now += timedelta(minutes=2)
    engine.run_jobs()
    assert correlations(store, key) == []
    assert len(engine.messages) == 0


def test_time_to_live_zero_reaches_only_a_waiting_subscription(
    bus: CommandBus, store: RecorderEventStore, engine: EmbeddedEngine
) -> None:
    key = engine.start("wait-payment", tenant=TENANT, variables={"order": {"id": 42}})
    assert publish(bus, store, engine, time_to_live=0) == Delivery(None, False)
    engine.run_jobs()
    assert correlations(store, key) == []


def test_a_message_id_is_refused_again_while_its_message_is_alive(
    bus: CommandBus, store: RecorderEventStore, engine: EmbeddedEngine, clock: FakeClock
) -> None:
    publish(bus, store, engine, message_id="payment-1", time_to_live="PT1M")
    with pytest.raises(AlreadyExists):
        publish(bus, store, engine, message_id="payment-1", time_to_live="PT1M")
    assert len(engine.messages) == 1
    publish(bus, store, engine, message_id="payment-2", time_to_live="PT1M")  # another id is another message
    assert len(engine.messages) == 2


def test_buffered_messages_survive_a_restart(
    bus: CommandBus, store: RecorderEventStore, engine: EmbeddedEngine, clock: FakeClock
) -> None:
    publish(bus, store, engine, key=1, time_to_live="PT1H")
    publish(bus, store, engine, key=2, time_to_live="PT1H")
    taken = engine.start("wait-payment", tenant=TENANT, variables={"order": {"id": 1}})
    engine.run_jobs()
    assert correlations(store, taken)
    restarted = EmbeddedEngine(bus, store, clock=clock, task_types=known_task_types())
    restarted.deploy(WAIT_PAYMENT, "wait-payment.bpmn")
    assert restarted.messages.rebuild(store) == 1  # key 1 correlated before the restart; key 2 still waits
    later = restarted.start("wait-payment", tenant=TENANT, variables={"order": {"id": 2}})
    restarted.run_jobs()
    assert [e.correlation_key for e in correlations(store, later)] == ["2"]


@pytest.mark.parametrize(("text", "expected"), [
    (0, timedelta(0)), (1500, timedelta(milliseconds=1500)), ("PT10M", timedelta(minutes=10)),
    ("P1DT12H", timedelta(days=1, hours=12)), ("PT0.5S", timedelta(milliseconds=500)),
])
def test_time_to_live_in_milliseconds_or_iso_durations(text: Any, expected: timedelta) -> None:
    assert parse_time_to_live(text) == expected


@pytest.mark.parametrize("bad", [-1, "P1M", "PT", "10 minutes", "P400D"])
def test_a_bad_time_to_live_is_refused_naming_the_field(bad: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        PublishProcessMessage(name="order-paid", correlation_key="1", time_to_live=bad)
    assert refused.value.errors()[0]["loc"] == ("time_to_live",)
