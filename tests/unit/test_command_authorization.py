"""Commands are decided by the policy before their handler runs: the request each kind builds, what a denial stores
(nothing), and that a denial in a batch is that command's alone. The policy here is a small hand-written fake that
records what it was asked; the real Rego policy is exercised by tests/integration/api/test_authorization_matrix.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
from eventsourcing.persistence import StoredEvent
from pydantic import ValidationError

from adapters.event_store import RecorderEventStore
from adapters.policy_files import PolicyLoadError
from casestream.bootstrap import bootstrap
from casestream.settings import Settings
from commands import messages as m
from commands.authorization import Concealed
from commands.bus import Actor, CommandBus, Envelope
from commands.outcomes import Prepared
from commands.policy import Decision
from domain.definition import CaseDefinition, DefinitionAccess, DefinitionPublished, definition_id
from domain.errors import DomainError, Forbidden, NotFound, PolicyUnavailable, ValidationFailed
from tests.unit.conftest import TENANT, claim_definition, claim_spec

ADMIN = Actor("admin", TENANT, ("admin",))
FRAUD_ADMIN = Actor("fred", TENANT, ("admin",), ("fraud-team",))
ALICE = Actor("alice", TENANT, ("caseworker",), ("claims-team",))
VICTOR = Actor("victor", TENANT, ("viewer",))
ENGINE = Actor("process:claim", TENANT, ("process",))
CONFIDENTIAL = {"read_groups": ["fraud-team"], "restrict": {"CloseCase": ["supervisor"]}}

Rule = Callable[[Mapping[str, Any]], Decision]


def viewers_change_nothing(request: Mapping[str, Any]) -> Decision:
    """Allow everything except to viewers (and, for reads, honour read_groups); enough to tell paths apart."""
    subject, resource = request["subject"], request["resource"]
    governed = resource.get("case", resource)
    read_groups = governed.get("access", {}).get("read_groups", [])
    if read_groups and not set(read_groups) & set(subject["groups"]):
        return Decision(False, ("definition is confidential",))
    if request["action"] != "read" and "viewer" in subject["roles"]:
        return Decision(False, ("viewers change nothing",))
    return Decision(True)


class FakePolicy:
    """Decides by a rule and remembers every request (or raises PolicyUnavailable for chosen actions)."""

    def __init__(self, rule: Rule = viewers_change_nothing) -> None:
        self.rule = rule
        self.requests: list[Mapping[str, Any]] = []
        self.unavailable_for: set[str] = set()

    def decide(self, request: Mapping[str, Any]) -> Decision:
        self.requests.append(request)
        if request["action"] in self.unavailable_for:
            raise PolicyUnavailable("the fake engine is down")
        return self.rule(request)

    def last(self, action: str) -> Mapping[str, Any]:
        return next(r for r in reversed(self.requests) if r["action"] == action)


@pytest.fixture
def policy() -> FakePolicy:
    return FakePolicy()


@pytest.fixture
def bus(store: RecorderEventStore, policy: FakePolicy) -> CommandBus:
    return CommandBus(store, policy)


@pytest.fixture
def case_id(bus: CommandBus) -> UUID:
    bus.dispatch(claim_definition(), ADMIN)
    return UUID(bus.dispatch(m.OpenCase(definition_key="claim", title="Hail", data={"amount": 5}), ALICE).id)


# --- the request of each command kind ---------------------------------------------------------------------------

def test_a_case_command_is_decided_on_the_case_and_its_definition(bus: CommandBus, policy: FakePolicy,
                                                                  case_id: UUID) -> None:
    bus.dispatch(m.QueueCase(case_id=case_id, queue="fraud"), ALICE)
    bus.dispatch(m.MoveCaseToStage(case_id=case_id, stage="review"), ALICE)
    request = policy.last("MoveCaseToStage")
    assert request == {
        "subject": {"user": "alice", "tenant": TENANT, "roles": ["caseworker"], "groups": ["claims-team"]},
        "action": "MoveCaseToStage",
        "resource": {"kind": "case", "definition_key": "claim", "stage": "new", "status": "open", "queue": "fraud",
                     "assignee": None, "owner": "alice", "access": {}, "target_stage": "review"},
    }
    bus.dispatch(m.AssignCase(case_id=case_id, assignee="carol"), ADMIN)
    assigned = policy.last("AssignCase")
    assert assigned["resource"]["new_assignee"] == "carol" and assigned["resource"]["stage"] == "review"
    assert assigned["subject"]["roles"] == ["admin"]


def test_a_task_command_is_decided_on_the_task_and_its_case(bus: CommandBus, policy: FakePolicy,
                                                            case_id: UUID) -> None:
    task_id = UUID(bus.dispatch(m.CreateTask(case_id=case_id, title="Call back", candidate_groups=["claims-team"]),
                                ALICE).id)
    assert policy.last("CreateTask")["resource"]["kind"] == "case"
    bus.dispatch(m.ClaimTask(task_id=task_id), ALICE)
    bus.dispatch(m.CompleteTask(task_id=task_id), ALICE)
    claim, complete = policy.last("ClaimTask")["resource"], policy.last("CompleteTask")["resource"]
    assert claim == {
        "kind": "task", "status": "open", "assignee": None, "claimed_by": None, "candidate_groups": ["claims-team"],
        "case": {"kind": "case", "definition_key": "claim", "stage": "new", "status": "open", "queue": None,
                 "assignee": None, "owner": "alice", "access": {}},
    }
    assert (complete["status"], complete["claimed_by"]) == ("claimed", "alice")


def test_definition_commands_say_whether_it_exists_and_carry_its_access_rules(bus: CommandBus,
                                                                              policy: FakePolicy) -> None:
    bus.dispatch(claim_definition(access=CONFIDENTIAL), ADMIN)
    assert policy.last("PublishCaseDefinition")["resource"] == {
        "kind": "definition", "definition_key": "claim", "exists": False, "access": {}}
    bus.dispatch(claim_definition(name="Claim v2"), FRAUD_ADMIN)
    assert policy.last("PublishCaseDefinition")["resource"] == {
        "kind": "definition", "definition_key": "claim", "exists": True,
        "access": {"read_groups": ["fraud-team"], "restrict": {"CloseCase": ["supervisor"]}}}
    bus.dispatch(m.OpenCase(definition_key="claim", title="Hail", data={"amount": 1}), ALICE)
    assert policy.last("OpenCase")["resource"] == {
        "kind": "definition", "definition_key": "claim", "exists": True, "access": {}}


def test_reference_and_process_commands_name_their_kind(bus: CommandBus, policy: FakePolicy) -> None:
    bus.dispatch(m.DefineQueue(key="intake", name="Intake"), ADMIN)
    bus.dispatch(m.DefineRecordType(key="vendor", name="Vendor", schema={"type": "object"}), ADMIN)
    bus.dispatch(m.SaveRecord(type_key="vendor", key="acme-glass", data={}), ADMIN)
    with pytest.raises(DomainError, match="not running"):  # decided, then refused by the domain
        bus.dispatch(m.RecordProcessStep(instance_id=uuid.uuid4(), events=[
            m.StepEventIn(type="ProcessAdvanced", payload={"cause": "x"})]), ENGINE)
    assert policy.last("DefineQueue")["resource"] == {"kind": "queue"}
    assert policy.last("DefineRecordType")["resource"] == {"kind": "record_type", "type_key": "vendor"}
    assert policy.last("SaveRecord")["resource"] == {"kind": "record_type", "type_key": "vendor"}
    assert policy.last("RecordProcessStep")["resource"] == {"kind": "process"}
    assert all(not _has_id(r) for r in policy.requests)


def _has_id(value: Any) -> bool:
    """Whether a request holds an aggregate id anywhere (it must not: identical requests share a decision)."""
    if isinstance(value, Mapping):
        return any(_has_id(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_id(v) for v in value)
    try:
        UUID(str(value))
    except ValueError:
        return False
    return True


# --- denials ---------------------------------------------------------------------------------------------------

def test_a_denied_command_stores_nothing_and_names_action_and_reasons(bus: CommandBus, store: RecorderEventStore,
                                                                      case_id: UUID) -> None:
    before = store.max_position()
    with pytest.raises(Forbidden) as denied:
        bus.dispatch(m.AddComment(case_id=case_id, body="looks fine", command_id="c-1"), VICTOR)
    assert denied.value.detail == "AddComment is not allowed: viewers change nothing"
    assert denied.value.reasons == ("viewers change nothing",) and denied.value.status == 403
    assert store.max_position() == before
    with pytest.raises(Forbidden):  # the command_id was not used up either
        bus.dispatch(m.AddComment(case_id=case_id, body="looks fine", command_id="c-1"), VICTOR)


def test_a_missing_case_is_not_found_whatever_the_policy(store: RecorderEventStore, case_id: UUID) -> None:
    deny_all = FakePolicy(lambda request: Decision(request["action"] == "read", ("only reading is allowed",)))
    bus = CommandBus(store, deny_all)
    with pytest.raises(NotFound, match="not found") as missing:
        bus.dispatch(m.AddComment(case_id=uuid.uuid4(), body="hello"), VICTOR)
    assert not isinstance(missing.value, Concealed) and deny_all.requests == []
    with pytest.raises(NotFound):
        bus.dispatch(m.ClaimTask(task_id=case_id), VICTOR)  # a case's id is no task
    with pytest.raises(Forbidden):  # the one that exists is decided
        bus.dispatch(m.AddComment(case_id=case_id, body="hello"), VICTOR)


def test_a_confidential_definitions_case_is_not_found_for_a_non_member(bus: CommandBus, store: RecorderEventStore,
                                                                       policy: FakePolicy) -> None:
    bus.dispatch(claim_definition(access=CONFIDENTIAL), ADMIN)
    investigator = Actor("ivy", TENANT, ("caseworker",), ("fraud-team",))
    case_id = bus.dispatch(m.OpenCase(definition_key="claim", title="Ring", data={"amount": 9}), investigator).id
    told: list[tuple[Prepared, Forbidden]] = []
    bus.denial_listeners.append(lambda prepared, denial: told.append((prepared, denial)))
    before = store.max_position()
    with pytest.raises(NotFound) as hidden:
        bus.dispatch(m.AddComment(case_id=UUID(case_id), body="what is this?"), ALICE)
    with pytest.raises(NotFound) as missing:
        bus.dispatch(m.AddComment(case_id=uuid.uuid4(), body="what is this?"), ALICE)
    assert type(hidden.value).__mro__[1:].count(NotFound) == 1 and hidden.value.code == missing.value.code
    assert hidden.value.detail == f"case {case_id} not found" and hidden.value.status == 404
    with pytest.raises(NotFound, match="case definition 'claim' not found"):
        bus.dispatch(m.OpenCase(definition_key="claim", title="Probe", data={"amount": 1}), ALICE)
    assert store.max_position() == before
    assert [type(p.command).__name__ for p, _ in told] == ["AddComment", "OpenCase"]
    assert told[0][1].reasons == ("definition is confidential",) and told[0][0].ctx.groups == ("claims-team",)
    bus.dispatch(m.AddComment(case_id=UUID(case_id), body="on it"), investigator)


def test_a_new_definition_version_s_access_rules_apply_to_the_next_command(bus: CommandBus, case_id: UUID) -> None:
    bus.dispatch(m.AddComment(case_id=case_id, body="first"), ALICE)  # the definition is now in the bus's cache
    bus.dispatch(claim_definition(access={"read_groups": ["fraud-team"]}), ADMIN)
    with pytest.raises(NotFound):
        bus.dispatch(m.AddComment(case_id=case_id, body="second"), ALICE)
    with pytest.raises(NotFound):  # nor may a non-member publish it again
        bus.dispatch(claim_definition(access={}), ADMIN)
    bus.dispatch(claim_definition(access={}), FRAUD_ADMIN)
    bus.dispatch(m.AddComment(case_id=case_id, body="third"), ALICE)


def test_in_a_batch_a_denied_command_fails_alone(bus: CommandBus, store: RecorderEventStore, case_id: UUID) -> None:
    told: list[str] = []
    bus.denial_listeners.append(lambda prepared, denial: told.append(prepared.ctx.actor))
    before = store.max_position()
    outcomes = bus.dispatch_envelopes([
        Envelope(m.AddComment(case_id=case_id, body="one"), ALICE),
        Envelope(m.AddComment(case_id=case_id, body="two"), VICTOR),
        Envelope(m.RetitleCase(case_id=case_id, title="Hail on the roof"), ALICE),
    ])
    assert [type(o).__name__ for o in outcomes] == ["Result", "Forbidden", "Result"]
    assert store.max_position() == before + 2 and told == ["victor"]


def test_concurrent_submits_share_a_batch_and_a_denial_stays_with_its_sender(bus: CommandBus,
                                                                              case_id: UUID) -> None:
    outcomes = bus.submit_many([m.AddComment(case_id=case_id, body="ok"), m.RetitleCase(case_id=case_id,
                                                                                        title="New title")], ALICE)
    assert all(not isinstance(o, DomainError) for o in outcomes)
    with pytest.raises(Forbidden):
        bus.submit(m.AddComment(case_id=case_id, body="viewer"), VICTOR)


def test_an_unreachable_policy_fails_only_that_command(bus: CommandBus, policy: FakePolicy, case_id: UUID) -> None:
    policy.unavailable_for = {"RetitleCase"}
    outcomes = bus.dispatch_many([m.RetitleCase(case_id=case_id, title="Other"),
                                  m.AddComment(case_id=case_id, body="still here")], ALICE)
    assert isinstance(outcomes[0], PolicyUnavailable) and outcomes[0].status == 503
    assert not isinstance(outcomes[1], DomainError)


def test_a_failing_denial_listener_does_not_change_the_answer(bus: CommandBus, case_id: UUID) -> None:
    def broken(_prepared: Prepared, _denial: Forbidden) -> None:
        raise RuntimeError("audit store down")

    bus.denial_listeners.append(broken)
    with pytest.raises(Forbidden):
        bus.dispatch(m.AddComment(case_id=case_id, body="viewer"), VICTOR)


def test_without_a_policy_every_command_is_allowed(store: RecorderEventStore) -> None:
    bus = CommandBus(store)
    bus.dispatch(claim_definition(), VICTOR)
    bus.dispatch(m.OpenCase(definition_key="claim", title="Hail", data={"amount": 5}), VICTOR)


# --- the access field --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("access", "field"), [
    ({"restrict": {"FlyToTheMoon": ["admin"]}}, ("access", "restrict")),
    ({"restrict": {"CloseCase": []}}, ("access", "restrict")),
    ({"read_groups": [""]}, ("access", "read_groups", 0)),
    ({"write_groups": [" padded "]}, ("access", "write_groups", 0)),
    ({"read_groups": ["g"] * 51}, ("access", "read_groups")),
    ({"readers": ["g"]}, ("access", "readers")),
])
def test_bad_access_rules_are_refused_naming_the_field(access: dict[str, Any], field: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as refused:
        claim_definition(access=access)
    assert [e["loc"][: len(field)] for e in refused.value.errors()] == [field]


def test_the_domain_checks_the_shape_of_access_rules_it_is_given() -> None:
    spec = claim_spec()
    bad = type(spec)(**{**spec.__dict__, "access": DefinitionAccess(read_groups=("",), restrict={"closeCase": ()})})
    with pytest.raises(ValidationFailed) as refused:
        bad.check()
    assert sorted(e.path for e in refused.value.errors) == [
        "access.read_groups[0]", "access.restrict.closeCase", "access.restrict.closeCase"]


def test_access_rules_are_versioned_with_the_definition(bus: CommandBus, store: RecorderEventStore) -> None:
    bus.dispatch(claim_definition(), ADMIN)
    bus.dispatch(claim_definition(access={"write_groups": ["claims-team"]}), ADMIN)
    definition = CaseDefinition.replay(definition_id(TENANT, "claim"), store.events_of(definition_id(TENANT, "claim")))
    assert [s.access.to_dict() for s in definition.specs] == [{}, {"write_groups": ["claims-team"]}]


def test_a_version_two_definition_event_is_upcast_with_no_access_rules(store: RecorderEventStore) -> None:
    did = definition_id(TENANT, "legacy")
    spec = claim_spec(key="legacy").to_dict()
    spec.pop("access")
    state = {"_v": 2, "definition_version": 1, "spec": spec, "event_id": str(uuid.uuid4()),
             "occurred_at": datetime(2025, 1, 1, tzinfo=UTC).isoformat(),
             "meta": {"actor": "dora", "tenant": TENANT, "command_id": "c", "correlation_id": "c",
                      "causation_id": "c"}}
    store.recorder.insert_events([StoredEvent(originator_id=did, originator_version=1, topic="DefinitionPublished",
                                              state=orjson.dumps(state))])
    (event,) = store.events_of(did)
    assert isinstance(event, DefinitionPublished) and event.spec["access"] == {}
    assert CaseDefinition.replay(did, [event]).latest == claim_spec(key="legacy")


# --- wiring ------------------------------------------------------------------------------------------------------

def test_bootstrap_decides_commands_with_the_configured_policy(tmp_path: Path) -> None:
    platform = bootstrap(Settings(data_dir=tmp_path, processes="off"), start_runner=False)
    try:
        assert platform.bus.policy is not None
        with pytest.raises(Forbidden):
            platform.bus.dispatch(claim_definition(), VICTOR)
    finally:
        platform.close()


def test_with_policy_engine_none_commands_are_not_decided(tmp_path: Path) -> None:
    platform = bootstrap(Settings(data_dir=tmp_path, processes="off", policy_engine="none"), start_runner=False)
    try:
        assert platform.bus.policy is None
        platform.bus.dispatch(claim_definition(), VICTOR)
    finally:
        platform.close()


def test_a_policy_that_does_not_load_stops_bootstrap_before_anything_is_opened(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "broken.rego").write_text("package casestream.authz\n\ndecision := {\"allow\": true\n")
    data = tmp_path / "data"
    with pytest.raises(PolicyLoadError, match=r"broken\.rego"):
        bootstrap(Settings(data_dir=data, processes="off", policy_dir=policies), start_runner=False)
    assert not data.exists()
