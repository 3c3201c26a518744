"""The command bus: idempotency by command_id, expected versions, tenant isolation, atomic appends."""

from __future__ import annotations

import threading
from uuid import UUID

import pytest

from commands import messages as m
from commands.bus import Actor, CommandBus, fingerprint
from domain.case import Case, CaseOpened
from domain.command_log import CommandHandled, command_entry_id
from domain.errors import (
    CommandIdReused,
    DomainError,
    NotFound,
    StageTransitionNotAllowed,
    ValidationFailed,
    VersionConflict,
)
from domain.numbering import CaseNumberIssued, sequence_id
from tests.unit.conftest import TENANT, open_claim, publish_claim


def _open(command_id: str | None = None, title: str = "Broken window", amount: int = 100) -> m.OpenCase:
    return m.OpenCase(command_id=command_id, definition_key="claim", title=title, data={"amount": amount})


@pytest.mark.usefixtures("claim")
def test_repeating_a_command_id_returns_the_first_result_and_stores_nothing(bus, alice, store):
    first = bus.dispatch(_open("cmd-1"), alice)
    after_first = store.max_position()
    again = bus.dispatch(_open("cmd-1"), alice)
    assert store.max_position() == after_first
    assert (again.id, again.version, again.position, again.extra) == (first.id, 1, first.position, first.extra)
    assert (first.repeated, again.repeated) == (False, True)
    assert again.extra == {"number": "CLAIM-000001"}


@pytest.mark.usefixtures("claim")
def test_one_open_appends_case_number_and_command_entry_atomically(bus, alice, store):
    before = store.max_position()
    result = bus.dispatch(_open("cmd-1"), alice)
    batch = store.read(before, 100)
    assert [p.position for p in batch] == [before + 1, before + 2, before + 3]
    assert sorted(type(p.event).__name__ for p in batch) == ["CaseNumberIssued", "CaseOpened", "CommandHandled"]
    assert result.position == before + 3
    issued = next(p.event for p in batch if isinstance(p.event, CaseNumberIssued))
    assert (issued.aggregate_id, issued.number, issued.case_id) == (sequence_id(TENANT, "claim"), 1, result.id)
    entry = next(p.event for p in batch if isinstance(p.event, CommandHandled))
    assert entry.aggregate_id == command_entry_id(TENANT, "cmd-1")
    assert entry.result == {"id": result.id, "version": 1, "extra": {"number": "CLAIM-000001"}}


@pytest.mark.usefixtures("claim")
def test_idempotent_repeat_of_a_case_command_returns_the_version_it_produced(bus, alice, store):
    opened = open_claim(bus, alice)
    comment = m.AddComment(command_id="c-1", case_id=opened.id, body="hello")
    first = bus.dispatch(comment, alice)
    bus.dispatch(m.RetitleCase(case_id=opened.id, title="Later change"), alice)
    before = store.max_position()
    again = bus.dispatch(comment, alice)
    assert (again.version, again.extra, again.position) == (2, first.extra, first.position)
    assert store.max_position() == before
    case = Case.replay(UUID(opened.id), store.events_of(UUID(opened.id)))
    assert len(case.comments) == 1


@pytest.mark.usefixtures("claim")
def test_same_command_id_with_a_different_payload_is_refused(bus, alice, store):
    bus.dispatch(_open("cmd-1", amount=100), alice)
    before = store.max_position()
    with pytest.raises(CommandIdReused):
        bus.dispatch(_open("cmd-1", amount=101), alice)
    assert store.max_position() == before


@pytest.mark.usefixtures("claim")
def test_same_command_id_for_another_command_type_is_refused(bus, alice):
    opened = bus.dispatch(_open("cmd-1"), alice)
    with pytest.raises(CommandIdReused):
        bus.dispatch(m.RetitleCase(command_id="cmd-1", case_id=opened.id, title="x"), alice)


@pytest.mark.usefixtures("claim")
def test_command_ids_are_scoped_per_tenant(bus, alice, mallory):
    publish_claim(bus, mallory)
    mine = bus.dispatch(_open("shared-id"), alice)
    theirs = bus.dispatch(_open("shared-id"), mallory)
    assert theirs.id != mine.id
    assert not theirs.repeated
    assert theirs.extra == {"number": "CLAIM-000001"}


@pytest.mark.usefixtures("claim")
def test_a_refused_command_does_not_take_its_command_id(bus, alice):
    opened = open_claim(bus, alice)
    with pytest.raises(StageTransitionNotAllowed):
        bus.dispatch(m.MoveCaseToStage(command_id="mv", case_id=opened.id, stage="done"), alice)
    result = bus.dispatch(m.MoveCaseToStage(command_id="mv", case_id=opened.id, stage="review"), alice)
    assert (result.repeated, result.version) == (False, 2)


def test_fingerprint_ignores_command_id_but_not_payload():
    a = _open("one")
    assert fingerprint(a) == fingerprint(_open("two"))
    assert fingerprint(a) != fingerprint(_open("one", title="Other"))
    assert fingerprint(a) != fingerprint(_open("one", amount=101))


@pytest.mark.usefixtures("claim")
def test_stale_expected_version_is_a_version_conflict_and_stores_nothing(bus, alice, store):
    opened = open_claim(bus, alice)
    bus.dispatch(m.RetitleCase(case_id=opened.id, title="v2", expected_version=1), alice)
    before = store.max_position()
    with pytest.raises(VersionConflict) as err:
        bus.dispatch(m.RetitleCase(case_id=opened.id, title="v3", expected_version=1), alice)
    assert "version 2" in err.value.detail
    assert store.max_position() == before
    assert bus.dispatch(m.RetitleCase(case_id=opened.id, title="v3", expected_version=2), alice).version == 3


@pytest.mark.usefixtures("claim")
def test_another_tenants_case_is_not_found(bus, alice, mallory, store):
    opened = open_claim(bus, alice)
    before = store.max_position()
    for command in (
        m.RetitleCase(case_id=opened.id, title="mine now"),
        m.AddComment(case_id=opened.id, body="hi"),
        m.CloseCase(case_id=opened.id, reason="x"),
    ):
        with pytest.raises(NotFound):
            bus.dispatch(command, mallory)
    assert store.max_position() == before


@pytest.mark.usefixtures("claim")
def test_unknown_case_is_not_found(bus, alice):
    with pytest.raises(NotFound):
        bus.dispatch(m.RetitleCase(case_id="00000000-0000-0000-0000-000000000001", title="x"), alice)


@pytest.mark.usefixtures("claim")
@pytest.mark.parametrize(
    "command",
    [
        lambda cid: m.UpdateCaseData(case_id=cid, patch={"amount": "many"}),
        lambda cid: m.MoveCaseToStage(case_id=cid, stage="done"),
        lambda cid: m.QueueCase(case_id=cid, queue="elsewhere"),
        lambda cid: m.ReopenCase(case_id=cid, reason="not closed"),
        lambda cid: m.EditComment(case_id=cid, comment_id="none", body="x"),
        lambda cid: m.RetitleCase(case_id=cid, title="x", expected_version=9),
    ],
    ids=["invalid-data", "bad-move", "bad-queue", "reopen-open", "missing-comment", "stale-version"],
)
def test_a_refused_command_stores_nothing(bus, alice, store, command):
    opened = open_claim(bus, alice)
    before = store.max_position()
    with pytest.raises(DomainError):
        bus.dispatch(command(opened.id), alice)
    assert store.max_position() == before
    assert [e.version for e in store.events_of(UUID(opened.id))] == [1]


@pytest.mark.usefixtures("claim")
def test_events_carry_the_actor_tenant_and_correlation(bus, alice, store):
    result = bus.dispatch(_open("cmd-9"), alice, correlation_id="corr-1", causation_id="cause-1")
    (event,) = store.events_of(UUID(result.id))
    assert isinstance(event, CaseOpened)
    assert (event.meta.actor, event.meta.tenant, event.meta.command_id) == ("alice", "acme", "cmd-9")
    assert (event.meta.correlation_id, event.meta.causation_id) == ("corr-1", "cause-1")


@pytest.mark.usefixtures("claim")
def test_without_command_id_each_dispatch_is_a_new_command(bus, alice):
    numbers = [bus.dispatch(_open(), alice).extra["number"] for _ in range(2)]
    assert numbers == ["CLAIM-000001", "CLAIM-000002"]


def test_unknown_fields_in_a_command_are_refused():
    with pytest.raises(ValueError):
        m.OpenCase(definition_key="claim", title="x", data={}, tenant="globex")  # type: ignore[call-arg]


@pytest.mark.usefixtures("claim")
def test_position_of_result_is_readable_in_the_log(bus, alice, store):
    result = open_claim(bus, alice)
    assert store.max_position() == result.position
    position = store.position_of(UUID(result.id), 1)
    (found,) = store.read(position - 1, 1)
    assert (found.position, found.event.aggregate_id, type(found.event)) == (position, UUID(result.id), CaseOpened)
    assert store.position_of(UUID(result.id), 2) is None


def test_bus_works_with_a_fresh_store_for_each_tenant_actor(bus, store):
    """A definition published by one user is usable by another user of the same tenant, not of another."""
    publish_claim(bus, Actor("admin", TENANT, ("admin",)))
    assert open_claim(bus, Actor("carol", TENANT)).extra["number"] == "CLAIM-000001"
    with pytest.raises(NotFound):
        open_claim(bus, Actor("carol", "initech"))


def test_validation_errors_reach_the_caller_unchanged(store):
    bus = CommandBus(store)
    with pytest.raises(ValidationFailed):
        bus.dispatch(m.DefineQueue(key="x", name="too short key"), Actor("a", TENANT))


@pytest.mark.usefixtures("claim")
def test_concurrent_commands_on_one_bus_get_their_own_positions_and_versions(bus, alice, store):
    """Threads sharing one bus and store: appends may share a transaction, each keeps its own result."""
    shared = open_claim(bus, alice)
    results: dict[str, tuple[str, int, int]] = {}
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(6):
                cid = f"open-{n}-{i}"
                r = bus.dispatch(_open(cid, title=f"t{n}{i}"), alice)
                results[cid] = (r.id, r.version, r.position)
                cid = f"comment-{n}-{i}"
                r = bus.dispatch(m.AddComment(command_id=cid, case_id=shared.id, body=f"c{n}{i}"), alice)
                results[cid] = (r.id, r.version, r.position)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    # each reported position holds that command's own log entry
    for command_id, (_aggregate, _version, position) in results.items():
        (found,) = store.read(position - 1, 1)
        assert isinstance(found.event, CommandHandled)
        assert found.event.aggregate_id == command_entry_id(TENANT, command_id)
    comment_versions = sorted(v for k, (_a, v, _p) in results.items() if k.startswith("comment-"))
    assert comment_versions == list(range(2, 26))
    assert [e.version for e in store.events_of(UUID(shared.id))] == list(range(1, 26))
    numbers = sorted(
        p.event.number for p in store.read(0, 10_000) if isinstance(p.event, CaseOpened)
    )
    assert numbers == [f"CLAIM-{n:06d}" for n in range(1, 26)]
