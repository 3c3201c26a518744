"""Requests to the engine through the log: an operator's operation stored as a request, applied by the engine's
follower as the operator and answered with its outcome (applied, or refused with the problem); published messages
taken by the follower (correlated, buffered or dropped, and recorded); nothing applied twice after a crash or a lost
position; the API's bounded wait (202 with a Location while nothing answered)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.event_store import RecorderEventStore
from adapters.rego_policy import RegoPolicy
from adapters.sqlite_documents import SqliteDocumentStore
from api.operations_access import await_operation, operation_reply
from commands.bus import Actor, CommandBus
from commands.process_messages import PublishProcessMessage
from commands.process_requests import RecordProcessOperationOutcome, RequestProcessOperation
from domain.errors import Forbidden, InvalidStateChange
from domain.events import Context
from domain.process import IncidentRaised, IncidentResolved, process_instance_id
from domain.process_message import ProcessMessage, ProcessMessageUnmatched, fate_of
from domain.process_operation import DONE, PENDING, REFUSED, ProcessOperation
from processes.engine import EmbeddedEngine
from processes.jobs import known_task_types
from processes.operations import apply_request
from processes.request_follower import RequestFollower
from projections.catalog import ALL
from tests.unit import engine_models as models
from tests.unit.conftest import TENANT
from tests.unit.test_incidents import (
    ADMIN,
    POLICIES,
    _reset_jobs,  # noqa: F401  (autouse: each test starts with no jobs)
    make_engine,
)
from tests.unit.test_process_message_buffer import FakeClock

SHOP = Actor("shop", TENANT, ("worker",))


@pytest.fixture
def engine(bus: CommandBus, store: RecorderEventStore) -> EmbeddedEngine:
    engine = make_engine(bus, store)
    engine.deploy(models.WAIT_REPLY, "wait-reply.bpmn")
    return engine


@pytest.fixture
def follower(engine: EmbeddedEngine, bus: CommandBus, store: RecorderEventStore,
             documents: SqliteDocumentStore) -> RequestFollower:
    return RequestFollower(engine, bus, store, documents)


def incident_of(engine: EmbeddedEngine, store: RecorderEventStore) -> tuple[uuid.UUID, str, str]:
    """A new instance stopped at an unmatched gateway: its id, incident id and instance key."""
    key = engine.start("no-match", tenant=TENANT, variables={"amount": 5})
    iid = process_instance_id(TENANT, key)
    (raised,) = [e for e in store.events_of(iid) if isinstance(e, IncidentRaised)]
    return iid, raised.incident_id, key


def ask(bus: CommandBus, actor: Actor = ADMIN, **fields: Any) -> uuid.UUID:
    request_id = uuid.uuid4()
    bus.submit(RequestProcessOperation(request_id=request_id, **fields), actor)
    return request_id


def request(store: RecorderEventStore, request_id: uuid.UUID) -> ProcessOperation:
    return ProcessOperation.replay(request_id, store.events_of(request_id))


def test_a_request_is_applied_as_the_operator_and_answered_with_the_changes_reply(
    engine: EmbeddedEngine, bus: CommandBus, store: RecorderEventStore, follower: RequestFollower
) -> None:
    iid, incident_id, _key = incident_of(engine, store)
    request_id = ask(bus, operation="retry-incident", instance_id=iid, incident_id=incident_id,
                     variables={"amount": 5000}, note="fixed")
    assert request(store, request_id).state == PENDING  # stored; nothing applied yet
    assert follower.catch_up() > 0
    done = request(store, request_id)
    assert done.state == DONE
    (resolved,) = [e for e in store.events_of(iid) if isinstance(e, IncidentResolved)]
    assert resolved.actor == "root" and resolved.note == "fixed"  # the operator's own change
    assert done.reply is not None and done.reply["id"] == str(iid) and done.reply["version"] == resolved.version + 1
    assert done.reply["position"] >= store.position_of(iid, resolved.version + 1)  # type: ignore[operator]
    assert engine.run_jobs() == 1  # the branch the fixed amount takes


def test_a_refused_request_records_the_problem_the_operator_gets(
    engine: EmbeddedEngine, bus: CommandBus, store: RecorderEventStore, follower: RequestFollower
) -> None:
    iid, _incident, key = incident_of(engine, store)
    request_id = ask(bus, operation="retry-incident", instance_id=iid, incident_id="no-such-incident")
    follower.catch_up()
    refused = request(store, request_id)
    assert refused.state == REFUSED
    assert refused.problem == {"status": 409, "code": "incident-not-open", "errors": [],
                               "detail": f"incident no-such-incident is not open on process instance {key!r}"}
    gone = ask(bus, operation="cancel-instance", instance_id=uuid.UUID(int=9), reason="x")
    follower.catch_up()
    assert request(store, gone).problem["status"] == 404  # type: ignore[index]


def test_a_request_applied_before_a_crash_is_answered_from_the_instance_not_applied_twice(
    engine: EmbeddedEngine, bus: CommandBus, store: RecorderEventStore, follower: RequestFollower,
    documents: SqliteDocumentStore, tmp_path: Path
) -> None:
    iid, incident_id, _key = incident_of(engine, store)
    request_id = ask(bus, operation="retry-incident", instance_id=iid, incident_id=incident_id,
                     variables={"amount": 5000})
    (requested,) = [p.event for p in store.read(0, 10_000) if p.event.aggregate_id == request_id]
    first = apply_request(engine, requested)  # applied; the outcome never recorded (a crash)
    follower.catch_up()
    assert request(store, request_id).reply == first
    assert sum(isinstance(e, IncidentResolved) for e in store.events_of(iid)) == 1
    # a follower that lost its position reads every request again and changes nothing
    before = store.max_position()
    other = SqliteDocumentStore(tmp_path / "other.db", ALL)
    RequestFollower(engine, bus, store, other).catch_up()
    other.close()
    assert store.max_position() == before


def test_published_messages_are_correlated_buffered_or_dropped_and_recorded(
    engine: EmbeddedEngine, bus: CommandBus, store: RecorderEventStore, follower: RequestFollower
) -> None:
    waiting = engine.start("wait-reply", tenant=TENANT, variables={"caseId": "c-1"})
    correlated = bus.submit(PublishProcessMessage(name="customer-replied", correlation_key="c-1"), SHOP)
    buffered = bus.submit(PublishProcessMessage(name="customer-replied", correlation_key="c-2"), SHOP)
    dropped = bus.submit(PublishProcessMessage(name="customer-replied", correlation_key="c-3", time_to_live=0), SHOP)
    follower.catch_up()
    assert fate_of(store.events_of(uuid.UUID(correlated.id)), 1) == (waiting, False)
    assert fate_of(store.events_of(uuid.UUID(buffered.id)), 1) == (None, True)
    assert fate_of(store.events_of(uuid.UUID(dropped.id)), 1) == (None, False)
    assert len(engine.messages) == 1
    follower.catch_up()  # taken once: nothing recorded again
    unmatched = [p for p in store.read(0, 10_000) if isinstance(p.event, ProcessMessageUnmatched)]
    assert len(unmatched) == 2


def test_the_fate_of_a_message_is_that_of_its_own_publication() -> None:
    bus_ctx = Context("shop", TENANT, "c", "c", "c", datetime.now(UTC))
    message = ProcessMessage(uuid.uuid4())
    message.publish(bus_ctx, name="n", correlation_key="k", variables={}, time_to_live=timedelta(0), message_id="m")
    assert fate_of(message.pending, 1) is None  # not taken yet
    message.unmatched(bus_ctx, buffered=False)
    message.publish(bus_ctx, name="n", correlation_key="k", variables={}, time_to_live=timedelta(0), message_id="m")
    message.correlate(bus_ctx, "instance-2")
    assert fate_of(message.pending, 1) == (None, False)
    assert fate_of(message.pending, 2) == ("instance-2", False)


def test_a_request_takes_one_outcome_and_only_after_it_was_asked() -> None:
    ctx = Context("root", TENANT, "c", "c", "c", datetime.now(UTC), roles=("admin",), groups=("ops",))
    found = ProcessOperation(uuid.uuid4())
    with pytest.raises(InvalidStateChange):
        found.applied(ctx, {"id": "x"})
    found.ask(ctx, operation="set-variables", instance_id=uuid.uuid4(), variables={"a": 1})
    assert (found.request is not None and found.request.roles, found.request.groups) == (["admin"], ["ops"])
    with pytest.raises(InvalidStateChange):
        found.ask(ctx, operation="set-variables", instance_id=uuid.uuid4())
    found.refused(ctx, status=409, code="invalid-state-change", detail="no")
    with pytest.raises(InvalidStateChange):
        found.applied(ctx, {"id": "x"})
    assert found.state == REFUSED


def test_the_policy_decides_the_request_as_the_operators_and_only_the_engine_records_outcomes(
    store: RecorderEventStore, documents: SqliteDocumentStore
) -> None:
    bus = CommandBus(store, policy=RegoPolicy(POLICIES))
    engine = make_engine(bus, store)
    iid, _incident, _key = incident_of(engine, store)
    before = store.max_position()
    with pytest.raises(Forbidden):
        ask(bus, Actor("bob", TENANT, ("supervisor",)), operation="set-variables", instance_id=iid,
            variables={"amount": 2})
    assert store.max_position() == before
    request_id = ask(bus, operation="set-variables", instance_id=iid, variables={"amount": 2})
    with pytest.raises(Forbidden):
        bus.submit(RecordProcessOperationOutcome(request_id=request_id, reply={"id": "forged"}), ADMIN)
    RequestFollower(engine, bus, store, documents).catch_up()  # the engine's actor records it
    assert request(store, request_id).state == DONE


def test_the_api_answers_202_with_where_to_ask_while_no_engine_took_the_request(
    engine: EmbeddedEngine, bus: CommandBus, store: RecorderEventStore, follower: RequestFollower
) -> None:
    iid, incident_id, _key = incident_of(engine, store)
    request_id = ask(bus, operation="cancel-incident", instance_id=iid, incident_id=incident_id, reason="wrong")
    pending = operation_reply(await_operation(store, request_id, 0.01))
    assert pending.status_code == 202 and pending.headers["location"] == f"/api/process-operations/{request_id}"
    assert b'"state":"pending"' in pending.body
    follower.catch_up()
    answered = operation_reply(await_operation(store, request_id, 0.01))
    assert answered.status_code == 200 and f'"id":"{iid}"'.encode() in answered.body


def test_a_message_taken_long_after_it_expired_correlates_with_nothing(
    bus: CommandBus, store: RecorderEventStore, documents: SqliteDocumentStore
) -> None:
    clock = FakeClock()
    engine = EmbeddedEngine(bus, store, clock=clock, task_types=known_task_types())
    engine.deploy(models.WAIT_REPLY, "wait-reply.bpmn")
    waiting = engine.start("wait-reply", tenant=TENANT, variables={"caseId": "c-1"})
    late = bus.submit(PublishProcessMessage(name="customer-replied", correlation_key="c-1", time_to_live=1000), SHOP)
    clock.now += timedelta(minutes=5)  # the engine's follower was far behind (or reads old history)
    RequestFollower(engine, bus, store, documents).catch_up()
    assert fate_of(store.events_of(uuid.UUID(late.id)), 1) == (None, False)
    clock.now -= timedelta(minutes=5)
    on_time = bus.submit(PublishProcessMessage(name="customer-replied", correlation_key="c-1", time_to_live=0), SHOP)
    RequestFollower(engine, bus, store, documents).catch_up()  # time to live 0, taken at once: what waits gets it
    assert fate_of(store.events_of(uuid.UUID(on_time.id)), 1) == (waiting, False)
