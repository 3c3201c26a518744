"""The audit log: entries and their events, coalesced refusals, the read model, and a recorder that never hurts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore
from adapters.rego_policy import RegoPolicy
from adapters.sqlite_documents import SqliteDocumentStore
from commands import messages as m
from commands.audit import AuditRecorder, Denial, audit_denials, record_membership_change
from commands.bus import Actor, CommandBus
from domain.audit import MAX_TARGETS, AuditEntry, CommandDenialsRepeated, CommandDenied, MembershipChanged
from domain.errors import Forbidden, InvalidStateChange
from domain.events import Event
from projections.audit import list_audit
from tests.flaky_store import FlakyStore
from tests.unit.conftest import OTHER_TENANT, TENANT, make_ctx, open_claim, publish_claim

POLICIES = Path(__file__).resolve().parents[2] / "policies"
BOB = Actor("bob", TENANT, ("supervisor",))
ADMIN = Actor("root", TENANT, ("admin",))


class Clock:
    """A clock the test moves by hand (seconds since the epoch)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def policy() -> RegoPolicy:
    return RegoPolicy(POLICIES)


@pytest.fixture
def policed(store: RecorderEventStore, policy: RegoPolicy) -> Iterator[tuple[CommandBus, AuditRecorder]]:
    """A bus deciding with the real policy files in-process, its refusals recorded (background writer)."""
    bus = CommandBus(store, policy)
    recorder = audit_denials(bus)
    yield bus, recorder
    recorder.close()


def _audit_events(store: RecorderEventStore) -> list[Event]:
    audit_types = (CommandDenied, CommandDenialsRepeated, MembershipChanged)
    return [p.event for p in store.read(0, 100_000) if isinstance(p.event, audit_types)]


def _denial(user: str = "alice", action: str = "CloseCase", target: str = "case:1",
            reasons: tuple[str, ...] = ("only the assignee closes",), tenant: str = TENANT) -> Denial:
    return Denial(Actor(user, tenant, ("caseworker",), ("claims-team",)), action, (target,), reasons, "forbidden",
                  str(uuid.uuid4()), "corr-1")


# --- the aggregate -----------------------------------------------------------------------------------------------


def test_a_denial_entry_counts_up_and_keeps_a_bounded_sample_of_targets() -> None:
    entry = AuditEntry.denied(
        make_ctx(), entry_id=uuid.uuid4(), roles=("caseworker",), groups=(), action="CloseCase",
        targets=["case:0"], reasons=["only the assignee closes"], detail="forbidden",
        window_start="2026-01-05T09:00:00.000000+00:00", first_at="2026-01-05T09:00:01.000000+00:00",
        last_at="2026-01-05T09:00:01.000000+00:00", count=1,
    )
    entry.repeated(make_ctx(), count=50, last_at="2026-01-05T09:00:59.000000+00:00",
                   targets=[f"case:{i}" for i in range(40)])
    entry.repeated(make_ctx(), count=20, last_at="2026-01-05T09:00:59.000000+00:00", targets=[])  # lower: nothing
    events = entry.collect()
    assert [type(e) for e in events] == [CommandDenied, CommandDenialsRepeated]
    assert entry.count == 50 and len(entry.targets) == MAX_TARGETS and entry.targets[0] == "case:0"
    assert AuditEntry.replay(entry.id, events).count == 50


def test_a_membership_entry_records_only_a_real_change() -> None:
    entry = AuditEntry.membership_changed(
        make_ctx("root"), user="carol", before={"roles": ["viewer", "viewer"]},
        after={"roles": ["caseworker"], "groups": ["fraud-team"]}, by="root", source="cli",
    )
    [event] = entry.collect()
    assert isinstance(event, MembershipChanged)
    assert (event.before, event.after) == ({"roles": ["viewer"], "groups": []},
                                           {"roles": ["caseworker"], "groups": ["fraud-team"]})
    with pytest.raises(InvalidStateChange):
        AuditEntry.membership_changed(make_ctx("root"), user="carol", before={"roles": ["a", "b"]},
                                      after={"roles": ["b", "a"], "groups": []}, by="root", source="cli")


def test_record_membership_change_stores_one_event_and_nothing_when_unchanged(store: RecorderEventStore) -> None:
    position = record_membership_change(store, TENANT, "carol", {"roles": ["viewer"], "groups": []},
                                        {"roles": ["caseworker"], "groups": []}, "root", "users-file")
    assert position == store.max_position()
    assert record_membership_change(CommandBus(store), TENANT, "carol", {"roles": ["caseworker"]},
                                    {"roles": ["caseworker"], "groups": []}, "root", "cli") is None
    [event] = _audit_events(store)
    assert isinstance(event, MembershipChanged)
    assert (event.actor, event.tenant, event.user, event.source) == ("root", TENANT, "carol", "users-file")


# --- coalescing ----------------------------------------------------------------------------------------------------


def test_identical_refusals_in_one_window_are_one_entry_with_their_count(store: RecorderEventStore) -> None:
    clock = Clock()
    recorder = AuditRecorder(store, window_seconds=60, clock=clock, background=False)
    recorder.denied(_denial(target="case:1"))
    recorder.flush()  # the first refusal is stored at once
    for i in range(99):
        clock.now += 0.5
        recorder.denied(_denial(target=f"case:{i % 3}"))
        if i % 10 == 0:
            recorder.flush()  # the writer wakes often; repeats still wait for the window's end
    assert [type(e) for e in _audit_events(store)] == [CommandDenied]
    clock.now += 60
    recorder.flush()
    first, repeated = _audit_events(store)
    assert isinstance(first, CommandDenied) and isinstance(repeated, CommandDenialsRepeated)
    assert (first.count, repeated.count) == (1, 100)
    assert set(repeated.targets) == {"case:0", "case:1", "case:2"}
    assert recorder.pending() == 0  # an ended, stored window is forgotten


def test_different_actors_actions_reasons_and_tenants_are_separate_entries(store: RecorderEventStore) -> None:
    recorder = AuditRecorder(store, clock=Clock(), background=False)
    for denial in (_denial(), _denial(user="carol"), _denial(action="ArchiveCase"), _denial(reasons=("other",)),
                   _denial(tenant=OTHER_TENANT), _denial()):
        recorder.denied(denial)
    recorder.flush()
    events = _audit_events(store)
    assert len(events) == 5 and len({e.aggregate_id for e in events}) == 5


def test_kinds_beyond_the_bound_are_counted_as_dropped_not_stored(store: RecorderEventStore) -> None:
    recorder = AuditRecorder(store, clock=Clock(), max_pending=3, background=False)
    for i in range(10):
        recorder.denied(_denial(action=f"Action{i}"))
    recorder.flush()
    assert (len(_audit_events(store)), recorder.dropped) == (3, 7)


def test_a_failing_store_loses_nothing_and_is_retried(store: RecorderEventStore) -> None:
    flaky = FlakyStore(store, failures=2)
    clock = Clock()
    recorder = AuditRecorder(flaky, clock=clock, background=False)
    recorder.denied(_denial())
    assert recorder.flush() is False
    recorder.denied(_denial())
    assert recorder.flush() is False
    assert _audit_events(store) == [] and recorder.failures == 2
    assert recorder.flush() is True
    [event] = _audit_events(store)
    assert isinstance(event, CommandDenied) and event.count == 2


def test_two_processes_add_up_to_one_entry(store: RecorderEventStore) -> None:
    clock = Clock()
    one = AuditRecorder(store, clock=clock, background=False)
    two = AuditRecorder(store, clock=clock, background=False)
    for _ in range(3):
        one.denied(_denial())
    for _ in range(4):
        two.denied(_denial())
    one.flush()
    two.flush()  # its first event collides with one's: its refusals are added at the window's end
    clock.now += 60
    one.flush()
    two.flush()
    [entry_id] = {e.aggregate_id for e in _audit_events(store)}
    assert AuditEntry.replay(entry_id, store.events_of(entry_id)).count == 7


def test_an_idle_writer_ends_and_the_next_refusal_starts_another(store: RecorderEventStore) -> None:
    recorder = AuditRecorder(store, window_seconds=0.2)
    recorder.denied(_denial())
    _wait_for(lambda: len(_audit_events(store)) == 1 and not recorder.writing, "the writer to store and retire")
    recorder.denied(_denial())  # a later window: a new entry, by a new writer
    _wait_for(lambda: len(_audit_events(store)) == 2, "a second writer to store the next refusal")
    recorder.close()


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        time.sleep(0.02)


# --- through the bus, with the real policy ---------------------------------------------------------------------------


def test_a_refused_command_is_recorded_with_its_reasons_and_target(
    policed: tuple[CommandBus, AuditRecorder], store: RecorderEventStore, alice: Actor,
) -> None:
    bus, recorder = policed
    publish_claim(bus, BOB)
    case_id = open_claim(bus, alice).id
    with pytest.raises(Forbidden) as refused:
        bus.dispatch(m.CloseCase(case_id=uuid.UUID(case_id), reason="done"), alice)
    recorder.close()
    [event] = _audit_events(store)
    assert isinstance(event, CommandDenied)
    assert (event.user, event.action, event.targets, event.count) == ("alice", "CloseCase", [f"case:{case_id}"], 1)
    assert event.reasons == list(refused.value.reasons) and event.reasons
    assert event.roles == ["caseworker"] and event.tenant == TENANT


def test_a_flood_of_identical_refusals_stays_a_bounded_number_of_events(
    policed: tuple[CommandBus, AuditRecorder], store: RecorderEventStore, alice: Actor,
) -> None:
    bus, recorder = policed
    publish_claim(bus, BOB)
    case_ids = [uuid.UUID(open_claim(bus, alice).id) for _ in range(5)]
    before = store.max_position()
    for i in range(1000):  # one request after another, as a client hammering the API sends them
        with pytest.raises(Forbidden):
            bus.dispatch(m.CloseCase(case_id=case_ids[i % 5], reason="x"), alice)
    recorder.close()
    events = _audit_events(store)
    # one entry per window (a run crossing a window boundary: two), each at most a first event and one count
    assert 1 <= len(events) <= 4
    assert store.max_position() - before == len(events)  # the refused commands themselves stored nothing
    entries = {e.aggregate_id for e in events}
    assert sum(AuditEntry.replay(entry_id, store.events_of(entry_id)).count for entry_id in entries) == 1000


def test_a_refusal_whose_audit_cannot_be_stored_is_still_just_a_refusal(
    store: RecorderEventStore, policy: RegoPolicy, alice: Actor,
) -> None:
    flaky = FlakyStore(store, failures=0)
    bus = CommandBus(store, policy)
    recorder = AuditRecorder(flaky, background=False)
    bus.denial_listeners.append(recorder.on_denied)
    publish_claim(bus, BOB)
    case_id = uuid.UUID(open_claim(bus, alice).id)
    flaky.failures = 1_000
    with pytest.raises(Forbidden):
        bus.dispatch(m.CloseCase(case_id=case_id, reason="x"), alice)
    assert recorder.flush() is False  # logged, kept for later
    bus.dispatch(m.AddComment(case_id=case_id, body="still works"), alice)  # allowed commands are unaffected
    flaky.failures = 0
    assert recorder.flush() is True
    assert [type(e) for e in _audit_events(store)] == [CommandDenied]


# --- the read model --------------------------------------------------------------------------------------------------


def test_the_read_model_lists_refusals_memberships_and_admin_actions(
    store: RecorderEventStore, documents: SqliteDocumentStore, runner: EmbeddedRunner, policy: RegoPolicy,
    alice: Actor,
) -> None:
    bus = CommandBus(store, policy)
    recorder = AuditRecorder(store, background=False)
    bus.denial_listeners.append(recorder.on_denied)
    publish_claim(bus, BOB)
    bus.dispatch(m.DefineQueue(key="intake", name="Intake"), ADMIN)
    case_id = uuid.UUID(open_claim(bus, alice).id)
    for _ in range(3):
        with pytest.raises(Forbidden):
            bus.dispatch(m.ArchiveCase(case_id=case_id, reason="x"), alice)
    recorder.flush(final=True)
    record_membership_change(store, TENANT, "carol", {"roles": ["viewer"]}, {"roles": ["caseworker"]}, "root", "cli")
    record_membership_change(store, OTHER_TENANT, "mallory", {}, {"roles": ["admin"]}, "root", "cli")
    runner.catch_up()

    page = list_audit(documents, TENANT)
    assert [(d["kind"], d["action"], d["actor"]) for d in page.items] == [
        ("membership", "ChangeMembership", "root"), ("denied", "ArchiveCase", "alice"),
        ("admin", "DefineQueue", "root"), ("admin", "PublishCaseDefinition", "bob"),
    ]
    denied = page.items[1]
    assert (denied["count"], denied["target"], denied["reasons"] != []) == (3, f"case:{case_id}", True)
    assert page.items[0]["details"]["after"] == {"roles": ["caseworker"], "groups": []}
    assert [d["actor"] for d in list_audit(documents, OTHER_TENANT).items] == ["root"]
    assert [d["action"] for d in list_audit(documents, TENANT, kind="admin").items] == [
        "DefineQueue", "PublishCaseDefinition"]
    assert [d["kind"] for d in list_audit(documents, TENANT, actor="alice").items] == ["denied"]


def test_paging_and_time_bounds(store: RecorderEventStore, documents: SqliteDocumentStore,
                                runner: EmbeddedRunner) -> None:
    for i in range(5):
        record_membership_change(store, TENANT, f"user{i}", {}, {"roles": ["viewer"]}, "root", "cli")
    runner.catch_up()
    everything = list_audit(documents, TENANT).items
    seen, cursor = [], None
    while True:
        page = list_audit(documents, TENANT, limit=2, cursor=cursor)
        seen.extend(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == everything and len(seen) == 5
    middle = datetime.fromisoformat(everything[2]["at"])
    assert list_audit(documents, TENANT, until=middle).items == everything[2:]
    assert list_audit(documents, TENANT, since=middle).items == everything[:3]
    bounded = list_audit(documents, TENANT, since=middle, limit=2)
    assert bounded.items == everything[:2] and bounded.next_cursor is not None
    assert list_audit(documents, TENANT, since=middle, cursor=bounded.next_cursor).items == everything[2:3]
    assert list_audit(documents, TENANT, since=middle + timedelta(days=1)).items == []
    with pytest.raises(Exception, match="time zone"):
        list_audit(documents, TENANT, since=datetime(2026, 1, 1))
    assert middle.tzinfo == UTC
