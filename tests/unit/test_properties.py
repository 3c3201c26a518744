"""Hypothesis properties of the core: random command sequences against an independent model of the rules.

Every sequence runs through the real bus on a SQLite event store, with the read models caught up after
each command. A small reference model (written from the rules, not from the code) predicts which
commands are accepted and which refusal each other one gets.
"""

from __future__ import annotations

import copy
import itertools
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adapters import bulk_rebuild
from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore, sqlite_event_store
from adapters.sqlite_documents import SqliteDocumentStore
from commands import messages as m
from commands.bus import Actor, CommandBus
from domain.case import Case, CaseMovedToStage
from domain.diff import apply_changes, diff, merge_patch
from domain.errors import (
    CaseNotOpen,
    CommentNotFound,
    DomainError,
    InvalidStateChange,
    NotFound,
    NotPermitted,
    StageTransitionNotAllowed,
    UnknownQueue,
    UnknownStage,
    ValidationFailed,
)
from projections.catalog import ALL
from projections.folding import fold_batch
from tests.unit.conftest import (
    ALLOWED_MOVES,
    CLAIM_QUEUES,
    CLAIM_STATUSES,
    OTHER_TENANT,
    STAGE_KEYS,
    TENANT,
    claim_definition,
    snapshot,
)

ACTORS = {
    "alice": Actor("alice", TENANT, ("caseworker",)),
    "carol": Actor("carol", TENANT, ("caseworker",)),
    "bob": Actor("bob", TENANT, ("supervisor",)),
}
MALLORY = Actor("mallory", OTHER_TENANT, ("caseworker",))
SUPERVISORS = {"bob"}

PROPERTY_SETTINGS = settings(
    max_examples=30, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- the reference model --------------------------------------------------------------------------------------------


@dataclass
class ModelComment:
    id: str
    author: str
    body: str
    deleted: bool = False


@dataclass
class ModelCase:
    id: str
    number: str
    title: str
    data: dict[str, Any]
    stage: str = "new"
    status: str = "open"
    assignee: str | None = None
    queue: str | None = None
    closed_reason: str | None = None
    resolution: str | None = None
    version: int = 1
    comments: list[ModelComment] = field(default_factory=list)

    def live(self, comment_id: str | None) -> ModelComment | None:
        return next((c for c in self.comments if c.id == comment_id and not c.deleted), None)


def _same_json(a: Any, b: Any) -> bool:
    """Equal as JSON documents (so 5 and 5.0 differ, as they do in stored data)."""
    return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(b, option=orjson.OPT_SORT_KEYS)


def _model_merge(data: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 for the patches generated here (top-level keys; nested objects merge one level)."""
    out = copy.deepcopy(data)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = copy.deepcopy(value)
    return out


def _data_ok(data: dict[str, Any]) -> bool:
    amount = data.get("amount")
    if "amount" not in data or isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
        return False
    if "customer" in data and not isinstance(data["customer"], str):
        return False
    return not ("details" in data and not isinstance(data["details"], dict))


def _blank(text: str) -> bool:
    return not text.strip()


Expectation = tuple[m.Command, Actor, type[DomainError] | None, Callable[[Any], None]]


def _noop(_result: Any) -> None:
    return None


class World:
    """The real platform (store, bus, read models, runner) plus the model it should agree with."""

    def __init__(self, path: Path) -> None:
        self.store: RecorderEventStore = sqlite_event_store(path / "events.db")
        self.documents = SqliteDocumentStore(path / "views.db", ALL)
        self.runner = EmbeddedRunner(self.store, self.documents, ALL)
        self.bus = CommandBus(self.store)
        self.bus.dispatch(claim_definition(), ACTORS["alice"])
        self.cases: list[ModelCase] = []
        self.opened = 0
        self.last_ok: tuple[m.Command, Actor, Any] | None = None
        self.outcomes: list[str] = []

    def close(self) -> None:
        self.documents.close()
        self.store.close()

    # each op -> (command, actor, expected refusal or None, what the model does on success)
    def expect(self, op: tuple[Any, ...]) -> Expectation | None:
        kind, actor_name = op[0], op[1]
        actor = ACTORS[actor_name]
        if kind == "open":
            _, _, title, amount = op
            cmd = m.OpenCase(definition_key="claim", title=title, data={"amount": amount})
            refused = ValidationFailed if _blank(title) or not _data_ok({"amount": amount}) else None

            def opened(result: Any) -> None:
                self.opened += 1
                self.cases.append(ModelCase(result.id, f"CLAIM-{self.opened:06d}", title.strip(), {"amount": amount}))

            return cmd, actor, refused, opened
        if not self.cases:
            return None
        case = self.cases[op[2] % len(self.cases)]
        cid = case.id
        writable = case.status == "open"
        not_archived = case.status != "archived"

        def bump(change: Callable[[], None]) -> Callable[[Any], None]:
            def apply(_result: Any) -> None:
                change()
                case.version += 1

            return apply

        if kind == "update":
            patch = op[3]
            new = _model_merge(case.data, patch)
            refused = (
                CaseNotOpen if not writable else ValidationFailed if not _data_ok(new)
                else InvalidStateChange if _same_json(new, case.data) else None
            )
            return m.UpdateCaseData(case_id=cid, patch=patch), actor, refused, bump(lambda: setattr(case, "data", new))
        if kind == "retitle":
            title = op[3]
            refused = (
                CaseNotOpen if not writable else ValidationFailed if _blank(title)
                else InvalidStateChange if title.strip() == case.title else None
            )
            return m.RetitleCase(case_id=cid, title=title), actor, refused, bump(
                lambda: setattr(case, "title", title.strip()))
        if kind == "move":
            # choice 0.. picks an allowed transition first, then an unknown stage, then the current stage
            targets = [dst for src, dst in sorted(ALLOWED_MOVES) if src == case.stage] + ["limbo", case.stage]
            stage = targets[op[3] % len(targets)]
            refused = (
                CaseNotOpen if not writable else UnknownStage if stage not in STAGE_KEYS
                else StageTransitionNotAllowed if (case.stage, stage) not in ALLOWED_MOVES else None
            )
            return m.MoveCaseToStage(case_id=cid, stage=stage), actor, refused, bump(
                lambda: setattr(case, "stage", stage))
        if kind == "assign":
            who = op[3]
            refused = (
                CaseNotOpen if not writable else ValidationFailed if _blank(who)
                else InvalidStateChange if who.strip() == case.assignee else None
            )
            return m.AssignCase(case_id=cid, assignee=who), actor, refused, bump(
                lambda: setattr(case, "assignee", who.strip()))
        if kind == "unassign":
            refused = CaseNotOpen if not writable else InvalidStateChange if case.assignee is None else None
            return m.UnassignCase(case_id=cid), actor, refused, bump(lambda: setattr(case, "assignee", None))
        if kind == "queue":
            queue = op[3]
            refused = (
                CaseNotOpen if not writable else UnknownQueue if queue is not None and queue not in CLAIM_QUEUES
                else InvalidStateChange if queue == case.queue else None
            )
            return m.QueueCase(case_id=cid, queue=queue), actor, refused, bump(lambda: setattr(case, "queue", queue))
        if kind == "comment":
            body, parent_pick = op[3], op[4]
            parent = None if parent_pick == 0 else self._comment_id(case, parent_pick - 1)
            refused = (
                CaseNotOpen if not not_archived else ValidationFailed if _blank(body)
                else CommentNotFound if parent is not None and case.live(parent) is None else None
            )

            def commented(result: Any) -> None:
                case.comments.append(ModelComment(result.extra["comment_id"], actor.user, body.strip()))
                case.version += 1

            return m.AddComment(case_id=cid, body=body, parent_id=parent), actor, refused, commented
        if kind == "edit":
            comment_id, body = self._comment_id(case, op[3]), op[4]
            target = case.live(comment_id)
            refused = (
                CaseNotOpen if not not_archived else CommentNotFound if target is None
                else NotPermitted if target.author != actor.user else ValidationFailed if _blank(body)
                else InvalidStateChange if target.body == body.strip() else None
            )

            def edited() -> None:
                target.body = body.strip()  # type: ignore[union-attr]

            return m.EditComment(case_id=cid, comment_id=comment_id, body=body), actor, refused, bump(edited)
        if kind == "delete":
            comment_id = self._comment_id(case, op[3])
            target = case.live(comment_id)
            refused = (
                CaseNotOpen if not not_archived else CommentNotFound if target is None
                else NotPermitted if target.author != actor.user and actor.user not in SUPERVISORS else None
            )
            return m.DeleteComment(case_id=cid, comment_id=comment_id), actor, refused, bump(
                lambda: setattr(target, "deleted", True))
        if kind == "close":
            reason, resolution = op[3], op[4]
            refused = (
                CaseNotOpen if not writable else ValidationFailed if _blank(reason)
                else ValidationFailed if resolution is not None and resolution not in CLAIM_STATUSES else None
            )

            def closed() -> None:
                case.status, case.closed_reason, case.resolution = "closed", reason.strip(), resolution

            return m.CloseCase(case_id=cid, reason=reason, resolution=resolution), actor, refused, bump(closed)
        if kind in ("reopen", "archive"):
            reason = op[3]
            refused = InvalidStateChange if case.status != "closed" else ValidationFailed if _blank(reason) else None

            def lifecycle() -> None:
                if kind == "reopen":
                    case.status, case.closed_reason, case.resolution = "open", None, None
                else:
                    case.status = "archived"

            command_type = m.ReopenCase if kind == "reopen" else m.ArchiveCase
            return command_type(case_id=cid, reason=reason), actor, refused, bump(lifecycle)
        if kind == "foreign":
            return m.RetitleCase(case_id=cid, title="taken over"), MALLORY, NotFound, _noop
        raise AssertionError(kind)

    @staticmethod
    def _comment_id(case: ModelCase, pick: int) -> str:
        index = pick % (len(case.comments) + 1)
        return case.comments[index].id if index < len(case.comments) else "no-such-comment"

    def run(self, op: tuple[Any, ...], *, catch_up: bool = True) -> None:
        """Dispatch op, check the outcome against the model, and keep the read models current."""
        if op[0] == "repeat":
            self._repeat()
            return
        planned = self.expect(op)
        if planned is None:
            return
        command, actor, refused, apply = planned
        command = command.model_copy(update={"command_id": str(uuid.uuid4())})
        before = self.store.max_position()
        try:
            result = self.bus.dispatch(command, actor)
        except DomainError as exc:
            assert refused is not None, f"{op} was refused with {exc!r} but the rules allow it"
            # a more specific refusal (NothingToChange is an InvalidStateChange) is still the one the rules expect
            assert isinstance(exc, refused), f"{op} was refused with {exc!r}, expected {refused.__name__}"
            # property (4): a refused command stores nothing
            assert self.store.max_position() == before
            self.outcomes.append("refused")
        else:
            assert refused is None, f"{op} was accepted but the rules refuse it with {refused.__name__}"
            assert self.store.max_position() > before
            apply(result)
            self.last_ok = (command, actor, result)
            self.outcomes.append("ok")
        if catch_up:
            self.runner.catch_up()

    def _repeat(self) -> None:
        if self.last_ok is None:
            return
        command, actor, first = self.last_ok
        before = self.store.max_position()
        again = self.bus.dispatch(command, actor)
        assert (again.id, again.version, again.position, again.extra) == (
            first.id, first.version, first.position, first.extra,
        )
        assert again.repeated and self.store.max_position() == before


@contextmanager
def world() -> Iterator[World]:
    with tempfile.TemporaryDirectory(prefix="casestream-prop-") as tmp:
        w = World(Path(tmp))
        try:
            yield w
        finally:
            w.close()


# -- strategies -----------------------------------------------------------------------------------------------------

actor_names = st.sampled_from(sorted(ACTORS))
pick = st.integers(0, 3)
patches = st.sampled_from([
    {"amount": 5}, {"amount": 5.0}, {"amount": 1250}, {"amount": -1}, {"amount": "lots"}, {"amount": True},
    {"amount": None}, {"customer": "Ann"}, {"customer": None}, {"customer": 3}, {"details": {"a": 1}},
    {"details": {"b": [1, 2]}}, {"details": None}, {"details": "flat"}, {}, {"amount": 7, "customer": "Bob"},
])
texts = st.sampled_from(["Alpha", "Beta", " Alpha ", " ", "Gamma ray"])
# choices are relative to the case's state (hypothesis favours small choices: those are the valid ones)
move_ops = st.tuples(st.just("move"), actor_names, pick, pick)
comment_ops = st.tuples(st.just("comment"), actor_names, pick, st.sampled_from(["hi", "hello", "  "]), pick)
close_ops = st.tuples(
    st.just("close"), actor_names, pick, st.sampled_from(["paid", "paid", " "]),
    st.sampled_from([None, *CLAIM_STATUSES, "maybe"]),
)
ops = st.one_of(
    move_ops, comment_ops, close_ops,
    st.tuples(st.just("update"), actor_names, pick, patches),
    move_ops, comment_ops,
    st.tuples(st.just("retitle"), actor_names, pick, texts),
    st.tuples(st.just("assign"), actor_names, pick, st.sampled_from(["carol", "bob", " carol", ""])),
    st.tuples(st.just("unassign"), actor_names, pick),
    st.tuples(st.just("queue"), actor_names, pick, st.sampled_from([*CLAIM_QUEUES, None, "vip"])),
    comment_ops,
    st.tuples(st.just("edit"), actor_names, pick, pick, st.sampled_from(["hi", "edited", " "])),
    st.tuples(st.just("delete"), actor_names, pick, pick),
    move_ops, close_ops,
    st.tuples(st.just("reopen"), actor_names, pick, st.sampled_from(["appeal", "appeal", ""])),
    st.tuples(st.just("archive"), actor_names, pick, st.sampled_from(["retention", "retention", " "])),
    st.tuples(st.just("foreign"), actor_names, pick),
    st.tuples(st.just("repeat"), actor_names),
    st.tuples(st.just("open"), actor_names, texts, st.sampled_from([0, 100, 99.5, -3])),
)
# every sequence starts by opening two cases so the case commands have targets
sequences = st.lists(ops, min_size=6, max_size=30).map(
    lambda rest: [("open", "alice", "First", 10), ("open", "carol", "Second", 20), *rest]
)


# a hand-written history that always runs (explicit example): threads, edits, moderation, every lifecycle step
RICH = [
    ("open", "alice", "First", 10), ("open", "carol", "Second", 20),
    ("comment", "alice", 0, "hi", 0), ("comment", "carol", 0, "hello", 1), ("edit", "carol", 0, 0, "edited"),
    ("edit", "alice", 0, 0, "edited"), ("edit", "alice", 0, 0, "edited"), ("delete", "carol", 0, 0),
    ("delete", "bob", 0, 1), ("comment", "carol", 0, "hi", 2), ("move", "alice", 0, 0), ("move", "alice", 0, 0),
    ("move", "alice", 0, 1), ("update", "alice", 0, {"amount": 5}), ("update", "alice", 0, {"amount": 5.0}),
    ("update", "alice", 0, {"amount": None}), ("update", "carol", 0, {"details": {"a": 1}}),
    ("update", "carol", 0, {"details": {"b": [1, 2]}}), ("assign", "alice", 0, "carol"),
    ("queue", "alice", 0, "fraud"), ("close", "alice", 0, "paid", "approved"), ("retitle", "alice", 0, "Alpha"),
    ("comment", "bob", 0, "hi", 0), ("reopen", "alice", 0, "appeal"), ("close", "alice", 0, "paid", None),
    ("archive", "alice", 0, "retention"), ("comment", "alice", 0, "hi", 0), ("reopen", "alice", 0, "appeal"),
    ("foreign", "alice", 1), ("repeat", "alice"), ("close", "carol", 1, "paid", "maybe"), ("delete", "alice", 0, 0),
    ("open", "bob", " ", 5), ("open", "bob", "Third", -3), ("open", "bob", "Third", 99.5),
]


# -- (1) live read models equal a rebuild -------------------------------------------------------------------------


@PROPERTY_SETTINGS
@example(RICH)
@given(sequences)
def test_live_read_models_equal_a_rebuild_from_scratch(sequence):
    with world() as w:
        for op in sequence:
            w.run(op)
        live = snapshot(w.documents)
        assert live["tracking"] == [("embedded", w.store.max_position())]
        w.documents.reset()
        rebuilt = EmbeddedRunner(w.store, w.documents, ALL)
        rebuilt.catch_up()
        assert rebuilt.position == w.store.max_position()
        assert snapshot(w.documents) == live
        # the in-memory rebuild (`casestream rebuild`), flushing and reloading documents every few events too
        assert rebuilt.rebuild() == w.store.max_position()
        assert snapshot(w.documents) == live
        bulk_rebuild.rebuild(w.store, w.documents, ALL, rebuilt.name, window=3, max_documents=2)
        assert snapshot(w.documents) == live


# -- (2) folding is idempotent ------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@example(RICH, [5, 17, 30], (3, 40))
@given(sequences, st.lists(st.integers(1, 400), max_size=6), st.tuples(st.integers(0, 400), st.integers(0, 400)))
def test_folding_any_batch_again_changes_nothing(sequence, cuts, redelivery):
    with world() as w:
        for op in sequence:
            w.run(op, catch_up=False)
        log = w.store.read(0, 10_000)
        # fold the log in arbitrary chunks, each written with its positions
        bounds = sorted({0, len(log), *(c % (len(log) + 1) for c in cuts)})
        for start, stop in itertools.pairwise(bounds):
            chunk = log[start:stop]
            w.documents.write(fold_batch(ALL, chunk, w.documents.get_many), ("embedded", chunk[-1].position))
        built = snapshot(w.documents)
        # any batch folded again (a redelivery) produces no writes and changes nothing
        start = redelivery[0] % len(log)
        stop = start + 1 + redelivery[1] % (len(log) - start)
        again = fold_batch(ALL, log[start:stop], w.documents.get_many)
        assert again == []
        w.documents.write(fold_batch(ALL, log[start:stop], lambda _c, _keys: {}), None)  # stale full docs
        assert snapshot(w.documents) == built
        # the chunked fold equals the runner's one-event-at-a-time fold
        w.documents.reset()
        runner = EmbeddedRunner(w.store, w.documents, ALL, batch_size=1)
        runner.catch_up()
        assert snapshot(w.documents) == built


@PROPERTY_SETTINGS
@example(RICH)
@given(sequences)
def test_applying_already_applied_events_leaves_each_aggregate_unchanged(sequence):
    with world() as w:
        for op in sequence:
            w.run(op, catch_up=False)
        for case in w.cases:
            events = w.store.events_of(UUID(case.id))
            aggregate = Case.replay(UUID(case.id), events)
            state = copy.deepcopy(vars(aggregate))
            for event in events:
                aggregate.apply(event)
            assert vars(aggregate) == state
            assert aggregate.version == len(events)


# -- (3) invariants -----------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@example(RICH)
@given(sequences)
def test_invariants_hold_after_any_sequence(sequence):
    with world() as w:
        for op in sequence:
            w.run(op)
        numbers = []
        for model in w.cases:
            doc = w.documents.get("cases", model.id)[0]
            events = w.store.events_of(UUID(model.id))
            aggregate = Case.replay(UUID(model.id), events)
            numbers.append(doc["number"])
            # the read model, the aggregate and the model agree
            for source in (doc, vars(aggregate)):
                assert source["number"] == model.number
                assert source["title"] == model.title
                assert source["stage"] == model.stage
                assert source["status"] == model.status
                assert source["assignee"] == model.assignee
                assert source["queue"] == model.queue
                assert source["version"] == model.version == len(events)
                assert _same_json(source["data"], model.data)
            # stage: always a defined stage, reached only through allowed transitions
            assert doc["stage"] in STAGE_KEYS
            path = ["new"]
            for event in events:
                if isinstance(event, CaseMovedToStage):
                    assert event.from_stage == path[-1]
                    assert (event.from_stage, event.to_stage) in ALLOWED_MOVES
                    path.append(event.to_stage)
            assert path[-1] == doc["stage"]
            # comments: the count is the live comments, each with its author
            live = [c for c in doc["comments"] if not c["deleted"]]
            assert doc["comment_count"] == len(live) == sum(not c.deleted for c in model.comments)
            assert [(c["id"], c["author"], c["deleted"]) for c in doc["comments"]] == [
                (c.id, c.author, c.deleted) for c in model.comments
            ]
            assert all(c["body"] == "" for c in doc["comments"] if c["deleted"])
            # closed and archived cases have a reason; open ones do not
            if doc["status"] in ("closed", "archived"):
                assert isinstance(doc["closed_reason"], str) and doc["closed_reason"].strip()
                assert doc["closed_reason"] == model.closed_reason
                assert doc["resolution"] == model.resolution
            else:
                assert (doc["closed_reason"], doc["resolution"]) == (None, None)
        # case numbers are unique and gap-free
        assert sorted(numbers) == [f"CLAIM-{n:06d}" for n in range(1, len(numbers) + 1)]


# -- (4) refusals store nothing -----------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@example(RICH)
@given(sequences)
def test_a_refused_command_leaves_the_log_unchanged(sequence):
    with world() as w:
        for op in sequence:
            planned = None if op[0] == "repeat" else w.expect(op)
            if planned is None or planned[2] is None:
                w.run(op, catch_up=False)
                continue
            command, actor, refused, _apply = planned
            before = w.store.max_position()
            log_before = w.store.read(0, 10_000)
            try:
                w.bus.dispatch(command, actor)
            except DomainError as exc:
                assert isinstance(exc, refused)  # NothingToChange is an InvalidStateChange
            else:
                raise AssertionError(f"{op} should have been refused with {refused.__name__}")
            assert w.store.max_position() == before
            assert w.store.read(0, 10_000) == log_before


# -- pure helpers -------------------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from([0.5, 1.0, -2.5]) | st.text(
    "ab", max_size=2
)
# list items include values equal across JSON types (1, 1.0, True): diff tells them apart
list_items = (
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-2, 2, allow_nan=False) | st.text("ab", max_size=2)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(list_items, max_size=3) | st.dictionaries(st.sampled_from("xyz"), inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(st.sampled_from("abcd"), json_values, max_size=4)


@settings(max_examples=300, deadline=None, database=None)
@given(json_objects, json_objects)
def test_diff_then_apply_changes_turns_old_into_new(old, new):
    changes = diff(old, new)
    assert _same_json(apply_changes(old, changes), new)
    assert (changes == []) == _same_json(old, new)


@settings(max_examples=300, deadline=None, database=None)
@given(json_objects, json_objects)
def test_merge_patch_never_mutates_its_inputs_and_empty_patch_is_identity(data, patch):
    data_copy, patch_copy = copy.deepcopy(data), copy.deepcopy(patch)
    merge_patch(data, patch)
    assert _same_json(data, data_copy) and _same_json(patch, patch_copy)
    assert _same_json(merge_patch(data, {}), data)
