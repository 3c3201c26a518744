"""Case rules: schema validation, stages, lifecycle, comments, data diffs and case numbers."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

import pytest

from adapters.event_store import RecorderEventStore, sqlite_event_store
from commands import messages as m
from commands.bus import Actor, CommandBus, Result
from domain.case import Case, CaseDataChanged, CaseOpened, CommentAdded
from domain.errors import (
    CaseNotOpen,
    CommentNotFound,
    InvalidStateChange,
    NotFound,
    NotPermitted,
    StageTransitionNotAllowed,
    UnknownQueue,
    UnknownStage,
    ValidationFailed,
    VersionConflict,
)
from domain.events import Event
from tests.unit.conftest import TENANT, claim_spec, make_ctx, open_claim, publish_claim


def _case(store: RecorderEventStore, case_id: str) -> Case:
    return Case.replay(UUID(case_id), store.events_of(UUID(case_id)))


def _closed_case(bus: CommandBus, actor: Actor) -> Result:
    opened = open_claim(bus, actor)
    bus.dispatch(m.CloseCase(case_id=opened.id, reason="paid out", resolution="approved"), actor)
    return opened


# -- opening and data -----------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("claim")
def test_open_case_refuses_data_missing_required_amount_naming_data_amount(bus, alice, store):
    with pytest.raises(ValidationFailed) as err:
        bus.dispatch(m.OpenCase(definition_key="claim", title="No amount", data={"customer": "Ann"}), alice)
    assert [e.path for e in err.value.errors] == ["data.amount"]
    assert "amount" in err.value.errors[0].message
    assert store.max_position() == 1  # only the definition (no command_id sent: no command-log entry)


@pytest.mark.usefixtures("claim")
def test_open_case_refuses_wrongly_typed_fields_with_each_field_path(bus, alice):
    with pytest.raises(ValidationFailed) as err:
        open_claim(bus, alice, amount="lots", customer=42)  # type: ignore[arg-type]
    assert sorted(e.path for e in err.value.errors) == ["data.amount", "data.customer"]


@pytest.mark.usefixtures("claim")
def test_open_case_refuses_negative_amount_at_data_amount(bus, alice):
    with pytest.raises(ValidationFailed) as err:
        open_claim(bus, alice, amount=-1)
    assert [e.path for e in err.value.errors] == ["data.amount"]


@pytest.mark.usefixtures("claim")
def test_open_case_refuses_blank_title(bus, alice):
    with pytest.raises(ValidationFailed) as err:
        open_claim(bus, alice, title="   ")
    assert [e.path for e in err.value.errors] == ["title"]


def test_open_case_of_unknown_definition_is_not_found(bus, alice):
    with pytest.raises(NotFound):
        open_claim(bus, alice, definition_key="nope")


@pytest.mark.usefixtures("claim")
def test_opened_case_starts_in_first_stage_open_and_pins_definition_version(bus, alice, store):
    opened = open_claim(bus, alice, title="  Broken window  ", amount=120, customer="Ann")
    case = _case(store, opened.id)
    assert (case.stage, case.status, case.definition_key, case.definition_version) == ("new", "open", "claim", 1)
    assert case.title == "Broken window"
    assert case.data == {"amount": 120, "customer": "Ann"}
    assert case.number == "CLAIM-000001"
    assert opened.extra == {"number": "CLAIM-000001"}
    assert opened.version == 1


@pytest.mark.usefixtures("claim")
def test_update_data_records_merge_patch_diff_with_old_and_new_values(bus, alice, store):
    opened = open_claim(bus, alice, amount=100, customer="Ann", details={"window": "front", "floor": 1})
    bus.dispatch(
        m.UpdateCaseData(case_id=opened.id, patch={"amount": 250, "customer": None, "details": {"floor": 2}}), alice
    )
    events = store.events_of(UUID(opened.id))
    changed = events[-1]
    assert isinstance(changed, CaseDataChanged)
    assert changed.changes == [
        {"op": "set", "path": ["amount"], "old": 100, "new": 250},
        {"op": "remove", "path": ["customer"], "old": "Ann", "new": None},
        {"op": "set", "path": ["details", "floor"], "old": 1, "new": 2},
    ]
    assert _case(store, opened.id).data == {"amount": 250, "details": {"window": "front", "floor": 2}}


@pytest.mark.usefixtures("claim")
def test_update_data_refuses_patch_that_removes_required_amount(bus, alice, store):
    opened = open_claim(bus, alice)
    before = store.max_position()
    with pytest.raises(ValidationFailed) as err:
        bus.dispatch(m.UpdateCaseData(case_id=opened.id, patch={"amount": None}), alice)
    assert [e.path for e in err.value.errors] == ["data.amount"]
    assert store.max_position() == before


@pytest.mark.usefixtures("claim")
def test_update_data_refuses_invalid_nested_value_with_its_path(bus, alice):
    opened = open_claim(bus, alice)
    with pytest.raises(ValidationFailed) as err:
        bus.dispatch(m.UpdateCaseData(case_id=opened.id, patch={"amount": "x"}), alice)
    assert [e.path for e in err.value.errors] == ["data.amount"]


@pytest.mark.usefixtures("claim")
def test_update_data_that_changes_nothing_is_refused(bus, alice):
    opened = open_claim(bus, alice, amount=100)
    with pytest.raises(InvalidStateChange):
        bus.dispatch(m.UpdateCaseData(case_id=opened.id, patch={"amount": 100}), alice)


@pytest.mark.usefixtures("claim")
def test_update_data_int_to_float_of_equal_value_is_recorded_as_a_change(bus, alice, store):
    opened = open_claim(bus, alice, amount=100)
    bus.dispatch(m.UpdateCaseData(case_id=opened.id, patch={"amount": 100.0}), alice)
    last = store.events_of(UUID(opened.id))[-1]
    assert last.changes == [{"op": "set", "path": ["amount"], "old": 100, "new": 100.0}]


@pytest.mark.usefixtures("claim")
def test_retitle_refuses_same_title_and_records_previous(bus, alice, store):
    opened = open_claim(bus, alice, title="Old")
    with pytest.raises(InvalidStateChange):
        bus.dispatch(m.RetitleCase(case_id=opened.id, title=" Old "), alice)
    bus.dispatch(m.RetitleCase(case_id=opened.id, title="New"), alice)
    last = store.events_of(UUID(opened.id))[-1]
    assert (last.title, last.previous) == ("New", "Old")


# -- stages ---------------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("claim")
def test_move_to_unknown_stage_is_refused_naming_known_stages(bus, alice):
    opened = open_claim(bus, alice)
    with pytest.raises(UnknownStage) as err:
        bus.dispatch(m.MoveCaseToStage(case_id=opened.id, stage="limbo"), alice)
    assert "new, review, done" in err.value.detail


@pytest.mark.usefixtures("claim")
def test_move_skipping_review_is_an_illegal_transition(bus, alice, store):
    opened = open_claim(bus, alice)
    before = store.max_position()
    with pytest.raises(StageTransitionNotAllowed) as err:
        bus.dispatch(m.MoveCaseToStage(case_id=opened.id, stage="done"), alice)
    assert "allowed: review" in err.value.detail
    assert store.max_position() == before
    assert _case(store, opened.id).stage == "new"


@pytest.mark.usefixtures("claim")
def test_move_to_current_stage_without_self_transition_is_refused(bus, alice):
    opened = open_claim(bus, alice)
    with pytest.raises(StageTransitionNotAllowed):
        bus.dispatch(m.MoveCaseToStage(case_id=opened.id, stage="new"), alice)


@pytest.mark.usefixtures("claim")
def test_moves_follow_allowed_transitions_and_done_is_terminal(bus, alice, store):
    opened = open_claim(bus, alice)
    for stage in ("review", "new", "review", "done"):
        bus.dispatch(m.MoveCaseToStage(case_id=opened.id, stage=stage), alice)
    moves = [(e.from_stage, e.to_stage) for e in store.events_of(UUID(opened.id))[1:]]
    assert moves == [("new", "review"), ("review", "new"), ("new", "review"), ("review", "done")]
    with pytest.raises(StageTransitionNotAllowed) as err:
        bus.dispatch(m.MoveCaseToStage(case_id=opened.id, stage="review"), alice)
    assert "allowed: none" in err.value.detail


# -- assignment and queues ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("claim")
def test_assign_twice_to_same_user_is_refused_and_unassign_needs_an_assignee(bus, alice, store):
    opened = open_claim(bus, alice)
    with pytest.raises(InvalidStateChange):
        bus.dispatch(m.UnassignCase(case_id=opened.id), alice)
    bus.dispatch(m.AssignCase(case_id=opened.id, assignee="carol"), alice)
    with pytest.raises(InvalidStateChange):
        bus.dispatch(m.AssignCase(case_id=opened.id, assignee="carol"), alice)
    bus.dispatch(m.AssignCase(case_id=opened.id, assignee="bob"), alice)
    bus.dispatch(m.UnassignCase(case_id=opened.id), alice)
    events = store.events_of(UUID(opened.id))
    assert [(type(e).__name__, getattr(e, "previous", "-")) for e in events[1:]] == [
        ("CaseAssigned", None), ("CaseAssigned", "carol"), ("CaseUnassigned", "bob"),
    ]
    assert _case(store, opened.id).assignee is None


@pytest.mark.usefixtures("claim")
def test_queue_must_be_one_of_the_definitions_queues(bus, alice, store):
    opened = open_claim(bus, alice)
    with pytest.raises(UnknownQueue):
        bus.dispatch(m.QueueCase(case_id=opened.id, queue="vip"), alice)
    bus.dispatch(m.QueueCase(case_id=opened.id, queue="fraud"), alice)
    with pytest.raises(InvalidStateChange):
        bus.dispatch(m.QueueCase(case_id=opened.id, queue="fraud"), alice)
    bus.dispatch(m.QueueCase(case_id=opened.id, queue=None), alice)
    assert _case(store, opened.id).queue is None
    with pytest.raises(InvalidStateChange):
        bus.dispatch(m.QueueCase(case_id=opened.id, queue=None), alice)


# -- lifecycle ------------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("claim")
@pytest.mark.parametrize(
    "command",
    [
        lambda cid: m.UpdateCaseData(case_id=cid, patch={"amount": 5}),
        lambda cid: m.RetitleCase(case_id=cid, title="Other"),
        lambda cid: m.MoveCaseToStage(case_id=cid, stage="review"),
        lambda cid: m.AssignCase(case_id=cid, assignee="carol"),
        lambda cid: m.QueueCase(case_id=cid, queue="intake"),
        lambda cid: m.CloseCase(case_id=cid, reason="again"),
    ],
    ids=["data", "title", "stage", "assign", "queue", "close"],
)
def test_closed_case_refuses_changes(bus, alice, store, command):
    opened = _closed_case(bus, alice)
    before = store.max_position()
    with pytest.raises(CaseNotOpen):
        bus.dispatch(command(opened.id), alice)
    assert store.max_position() == before


@pytest.mark.usefixtures("claim")
def test_closed_case_still_accepts_comments_but_archived_case_refuses_them(bus, alice):
    opened = _closed_case(bus, alice)
    added = bus.dispatch(m.AddComment(case_id=opened.id, body="for the record"), alice)
    bus.dispatch(m.ArchiveCase(case_id=opened.id, reason="retention"), alice)
    with pytest.raises(CaseNotOpen):
        bus.dispatch(m.AddComment(case_id=opened.id, body="too late"), alice)
    with pytest.raises(CaseNotOpen):
        bus.dispatch(m.EditComment(case_id=opened.id, comment_id=added.extra["comment_id"], body="x"), alice)
    with pytest.raises(CaseNotOpen):
        bus.dispatch(m.DeleteComment(case_id=opened.id, comment_id=added.extra["comment_id"]), alice)


@pytest.mark.usefixtures("claim")
def test_close_requires_reason_and_known_resolution(bus, alice):
    opened = open_claim(bus, alice)
    with pytest.raises(ValidationFailed) as err:
        bus.dispatch(m.CloseCase(case_id=opened.id, reason=" "), alice)
    assert [e.path for e in err.value.errors] == ["reason"]
    with pytest.raises(ValidationFailed) as err:
        bus.dispatch(m.CloseCase(case_id=opened.id, reason="ok", resolution="maybe"), alice)
    assert [e.path for e in err.value.errors] == ["resolution"]


@pytest.mark.usefixtures("claim")
def test_reopen_only_a_closed_case_and_it_accepts_changes_again(bus, alice, store):
    opened = open_claim(bus, alice)
    with pytest.raises(InvalidStateChange):
        bus.dispatch(m.ReopenCase(case_id=opened.id, reason="why"), alice)
    bus.dispatch(m.CloseCase(case_id=opened.id, reason="paid"), alice)
    with pytest.raises(ValidationFailed):
        bus.dispatch(m.ReopenCase(case_id=opened.id, reason=""), alice)
    bus.dispatch(m.ReopenCase(case_id=opened.id, reason="customer appealed"), alice)
    bus.dispatch(m.UpdateCaseData(case_id=opened.id, patch={"amount": 7}), alice)
    case = _case(store, opened.id)
    assert (case.status, case.data["amount"], case.version) == ("open", 7, 4)


@pytest.mark.usefixtures("claim")
def test_archive_only_a_closed_case_and_archived_is_final(bus, alice):
    opened = open_claim(bus, alice)
    with pytest.raises(InvalidStateChange):
        bus.dispatch(m.ArchiveCase(case_id=opened.id, reason="old"), alice)
    bus.dispatch(m.CloseCase(case_id=opened.id, reason="paid"), alice)
    bus.dispatch(m.ArchiveCase(case_id=opened.id, reason="retention"), alice)
    with pytest.raises(InvalidStateChange):
        bus.dispatch(m.ReopenCase(case_id=opened.id, reason="oops"), alice)
    with pytest.raises(InvalidStateChange):
        bus.dispatch(m.ArchiveCase(case_id=opened.id, reason="twice"), alice)


# -- comments -------------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("claim")
def test_comment_edit_only_by_its_author_even_for_supervisors(bus, alice, bob, carol, store):
    opened = open_claim(bus, alice)
    comment_id = bus.dispatch(m.AddComment(case_id=opened.id, body="first"), alice).extra["comment_id"]
    for other in (carol, bob):
        with pytest.raises(NotPermitted):
            bus.dispatch(m.EditComment(case_id=opened.id, comment_id=comment_id, body="hijack"), other)
    with pytest.raises(InvalidStateChange):
        bus.dispatch(m.EditComment(case_id=opened.id, comment_id=comment_id, body="first"), alice)
    bus.dispatch(m.EditComment(case_id=opened.id, comment_id=comment_id, body="second"), alice)
    comment = _case(store, opened.id).comments[comment_id]
    assert (comment.author, comment.body) == ("alice", "second")
    assert [h["body"] for h in comment.history] == ["first"]


@pytest.mark.usefixtures("claim")
def test_comment_delete_by_author_or_supervisor_but_not_other_caseworker(bus, alice, bob, carol, store):
    opened = open_claim(bus, alice)
    first = bus.dispatch(m.AddComment(case_id=opened.id, body="one"), alice).extra["comment_id"]
    second = bus.dispatch(m.AddComment(case_id=opened.id, body="two"), alice).extra["comment_id"]
    with pytest.raises(NotPermitted):
        bus.dispatch(m.DeleteComment(case_id=opened.id, comment_id=first), carol)
    bus.dispatch(m.DeleteComment(case_id=opened.id, comment_id=first, reason=" spam "), alice)
    bus.dispatch(m.DeleteComment(case_id=opened.id, comment_id=second), bob)
    case = _case(store, opened.id)
    assert case.comments[first].deleted and case.comments[second].deleted
    assert store.events_of(UUID(opened.id))[-2].reason == "spam"
    with pytest.raises(CommentNotFound):
        bus.dispatch(m.DeleteComment(case_id=opened.id, comment_id=first), alice)
    with pytest.raises(CommentNotFound):
        bus.dispatch(m.EditComment(case_id=opened.id, comment_id=first, body="back"), alice)


def test_admin_role_may_delete_anyones_comment():
    case = Case.open(make_ctx(), claim_spec(), 1, 1, "T", {"amount": 1})
    comment_id = case.add_comment(make_ctx("alice"), "hello")
    case.delete_comment(make_ctx("root", roles=("admin",)), comment_id)
    assert case.comments[comment_id].deleted


@pytest.mark.usefixtures("claim")
def test_reply_needs_a_live_parent(bus, alice, carol, store):
    opened = open_claim(bus, alice)
    parent = bus.dispatch(m.AddComment(case_id=opened.id, body="question"), alice).extra["comment_id"]
    reply = bus.dispatch(m.AddComment(case_id=opened.id, body="answer", parent_id=parent), carol).extra["comment_id"]
    with pytest.raises(CommentNotFound):
        bus.dispatch(m.AddComment(case_id=opened.id, body="orphan", parent_id=str(uuid.uuid4())), carol)
    bus.dispatch(m.DeleteComment(case_id=opened.id, comment_id=parent), alice)
    with pytest.raises(CommentNotFound):
        bus.dispatch(m.AddComment(case_id=opened.id, body="late", parent_id=parent), carol)
    case = _case(store, opened.id)
    assert case.comments[reply].parent_id == parent
    assert case.comments[reply].author == "carol"


@pytest.mark.usefixtures("claim")
def test_blank_comment_is_refused(bus, alice):
    opened = open_claim(bus, alice)
    with pytest.raises(ValidationFailed) as err:
        bus.dispatch(m.AddComment(case_id=opened.id, body="\n\t "), alice)
    assert [e.path for e in err.value.errors] == ["body"]


def test_comment_ids_differ_per_case_and_per_comment():
    one = Case.open(make_ctx(), claim_spec(), 1, 1, "A", {"amount": 1})
    two = Case.open(make_ctx(), claim_spec(), 1, 2, "B", {"amount": 1})
    ids = {one.add_comment(make_ctx(), "x"), one.add_comment(make_ctx(), "y"), two.add_comment(make_ctx(), "x")}
    assert len(ids) == 3


# -- aggregate mechanics --------------------------------------------------------------------------------------------


def test_replaying_recorded_events_rebuilds_the_same_case():
    ctx = make_ctx()
    case = Case.open(ctx, claim_spec(), 1, 7, "Title", {"amount": 3})
    case.move_to_stage(ctx, claim_spec(), "review")
    case.assign(ctx, "carol")
    case.add_comment(ctx, "hi")
    case.close(ctx, claim_spec(), "done", "rejected")
    events = case.collect()
    assert [e.version for e in events] == [1, 2, 3, 4, 5]
    replayed = Case.replay(case.id, events)
    assert vars(replayed) == vars(case)
    assert replayed.number == "CLAIM-000007"


def test_applying_an_already_applied_event_changes_nothing():
    ctx = make_ctx()
    case = Case.open(ctx, claim_spec(), 1, 1, "Title", {"amount": 3})
    case.add_comment(ctx, "hi")
    events = case.collect()
    state = {k: v for k, v in vars(case).items()}
    for event in events:
        case.apply(event)
    assert vars(case) == state
    assert len(case.comments) == 1


def test_applying_an_event_that_skips_a_version_is_an_error():
    ctx = make_ctx()
    case = Case.open(ctx, claim_spec(), 1, 1, "Title", {"amount": 3})
    other = Case(case.id)
    other.record(ctx, CaseOpened, definition_key="claim", definition_version=1, number="CLAIM-000001",
                 title="T", data={"amount": 1}, stage="new")
    other.add_comment(ctx, "a")
    other.add_comment(ctx, "b")
    third = other.collect()[2]
    with pytest.raises(ValueError, match="does not follow"):
        case.apply(third)


def test_events_carry_actor_tenant_and_command_ids():
    ctx = make_ctx("carol", tenant="acme")
    case = Case.open(ctx, claim_spec(), 1, 1, "T", {"amount": 1})
    (event,) = case.collect()
    assert (event.actor, event.tenant, event.meta.command_id) == ("carol", "acme", ctx.command_id)
    assert event.occurred_at == ctx.now


# -- case numbers ---------------------------------------------------------------------------------------------------


def test_case_numbers_count_per_tenant_and_definition(bus, alice, mallory):
    publish_claim(bus, alice)
    publish_claim(bus, alice, key="complaint", prefix="COMP")
    publish_claim(bus, mallory)
    numbers = [
        open_claim(bus, alice).extra["number"],
        open_claim(bus, alice).extra["number"],
        open_claim(bus, alice, definition_key="complaint").extra["number"],
        open_claim(bus, mallory).extra["number"],
        open_claim(bus, alice).extra["number"],
    ]
    assert numbers == ["CLAIM-000001", "CLAIM-000002", "COMP-000001", "CLAIM-000001", "CLAIM-000003"]


@pytest.mark.usefixtures("claim")
def test_refused_open_does_not_use_up_a_number(bus, alice):
    with pytest.raises(ValidationFailed):
        open_claim(bus, alice, amount=-5)
    assert open_claim(bus, alice).extra["number"] == "CLAIM-000001"


def test_number_prefix_defaults_to_the_key_without_dashes(bus, alice):
    publish_claim(bus, alice, key="car-loan", prefix="")
    assert open_claim(bus, alice, definition_key="car-loan").extra["number"] == "CARLOAN-000001"


class _GatedStore:
    """An event store whose first append in each of `parties` threads waits until all threads got there.

    Both threads have then loaded the number sequence at the same version, so exactly one append wins and
    the other must take the bus's VersionConflict retry path.
    """

    def __init__(self, inner: RecorderEventStore, barrier: threading.Barrier) -> None:
        self.inner = inner
        self.barrier = barrier
        self.local = threading.local()
        self.conflicts = 0

    def append(self, events: Sequence[Event]) -> list[int]:
        if not getattr(self.local, "gated", False):
            self.local.gated = True
            self.barrier.wait(timeout=30)
        try:
            return self.inner.append(events)
        except VersionConflict:
            self.conflicts += 1
            raise

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


def _run_threads(targets: list) -> list[BaseException]:  # type: ignore[type-arg]
    errors: list[BaseException] = []

    def wrap(fn):  # type: ignore[no-untyped-def]
        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                errors.append(exc)

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def test_two_buses_racing_for_the_first_number_get_distinct_numbers_via_retry(tmp_path: Path, alice):
    path = tmp_path / "shared.db"
    stores = [sqlite_event_store(path), sqlite_event_store(path)]
    try:
        publish_claim(CommandBus(stores[0]), alice)
        barrier = threading.Barrier(2)
        gated = [_GatedStore(s, barrier) for s in stores]
        results: list[str] = []
        targets = [
            lambda g=g: results.append(open_claim(CommandBus(g), alice).extra["number"])  # type: ignore[misc]
            for g in gated
        ]
        assert _run_threads(targets) == []
        assert sorted(results) == ["CLAIM-000001", "CLAIM-000002"]
        assert sum(g.conflicts for g in gated) == 1
    finally:
        for s in stores:
            s.close()


def test_concurrent_openings_on_one_sqlite_file_get_unique_gap_free_numbers(tmp_path: Path, alice):
    path = tmp_path / "shared.db"
    stores = [sqlite_event_store(path), sqlite_event_store(path)]
    per_thread = 12
    try:
        publish_claim(CommandBus(stores[0]), alice)
        results: list[str] = []

        def opener(store: RecorderEventStore) -> None:
            bus = CommandBus(store)
            for i in range(per_thread):
                results.append(open_claim(bus, alice, title=f"case {i}").extra["number"])

        assert _run_threads([lambda s=s: opener(s) for s in stores]) == []  # type: ignore[misc]
        expected = [f"CLAIM-{n:06d}" for n in range(1, 2 * per_thread + 1)]
        assert sorted(results) == expected
        opened = [e for p in stores[0].read(0, 1000) if isinstance(e := p.event, CaseOpened)]
        assert sorted(e.number for e in opened) == expected
    finally:
        for s in stores:
            s.close()


def test_same_command_id_racing_on_two_buses_opens_one_case(tmp_path: Path, alice):
    path = tmp_path / "shared.db"
    stores = [sqlite_event_store(path), sqlite_event_store(path)]
    try:
        publish_claim(CommandBus(stores[0]), alice)
        barrier = threading.Barrier(2)
        gated = [_GatedStore(s, barrier) for s in stores]
        command = m.OpenCase(command_id="client-42", definition_key="claim", title="T", data={"amount": 1})
        results: list[Result] = []
        targets = [lambda g=g: results.append(CommandBus(g).dispatch(command, alice)) for g in gated]  # type: ignore[misc]
        assert _run_threads(targets) == []
        assert len({(r.id, r.version, r.position) for r in results}) == 1
        assert sorted(r.repeated for r in results) == [False, True]
        opened = [p for p in stores[0].read(0, 1000) if isinstance(p.event, CaseOpened)]
        assert len(opened) == 1
    finally:
        for s in stores:
            s.close()


def test_comment_added_event_is_attributed_to_its_author():
    case = Case.open(make_ctx(), claim_spec(), 1, 1, "T", {"amount": 1})
    case.collect()
    case.add_comment(make_ctx("carol"), "hello")
    (event,) = case.collect()
    assert isinstance(event, CommentAdded)
    assert (event.actor, event.body, event.parent_id) == ("carol", "hello", None)
    assert event.tenant == TENANT


# -- merge patch and diff edge cases ---------------------------------------------------------------------------------


def test_merge_patch_merges_objects_and_null_removes_a_field():
    from domain.diff import merge_patch

    data = {"a": 1, "d": {"x": 1, "y": 2}, "l": [1, 2]}
    assert merge_patch(data, {"a": None, "d": {"y": None, "z": 3}, "l": [3]}) == {"d": {"x": 1, "z": 3}, "l": [3]}
    assert data == {"a": 1, "d": {"x": 1, "y": 2}, "l": [1, 2]}


def test_merge_patch_drops_nulls_inside_an_object_that_replaces_a_missing_field():
    from domain.diff import merge_patch

    assert merge_patch({}, {"d": {"x": None, "y": 1}}) == {"d": {"y": 1}}
    assert merge_patch({"d": "flat"}, {"d": {"x": None}}) == {"d": {}}


@pytest.mark.usefixtures("claim")
def test_update_data_records_a_list_whose_items_change_json_type(bus, alice, store):
    opened = open_claim(bus, alice, details={"flags": [True]})
    bus.dispatch(m.UpdateCaseData(case_id=opened.id, patch={"details": {"flags": [1]}}), alice)
    assert _case(store, opened.id).data["details"]["flags"] == [1]
    assert type(_case(store, opened.id).data["details"]["flags"][0]) is int
