"""`CommandBus.dispatch_many`: a batch decides and stores exactly what the same commands sent one by one would."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.event_store import RecorderEventStore, sqlite_event_store
from commands import messages as m
from commands.bus import Actor, CommandBus, Result
from domain.case import Case
from domain.errors import CommandIdReused, DomainError, NotFound, StageTransitionNotAllowed, VersionConflict
from tests.unit.conftest import TENANT, claim_definition

ALICE = Actor("alice", TENANT, ("caseworker",))
CASES = 3


class Twins:
    """Two identical event stores (one file copied): one gets batches, the other the same commands one by one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        seed = sqlite_event_store(root / "seed.db")
        bus = CommandBus(seed)
        bus.dispatch(claim_definition(), ALICE)
        self.cases = [UUID(bus.dispatch(m.OpenCase(definition_key="claim", title=f"case {i}",
                                                   data={"amount": i}), ALICE).id) for i in range(CASES)]
        seed.close()
        self.runs = 0

    def fresh(self) -> tuple[RecorderEventStore, RecorderEventStore]:
        self.runs += 1
        stores = []
        for side in ("batch", "single"):
            path = self.root / f"{side}-{self.runs}.db"
            shutil.copy(self.root / "seed.db", path)
            stores.append(sqlite_event_store(path))
        return stores[0], stores[1]


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    yield Twins(tmp_path_factory.mktemp("batch"))


def outcome_of(outcome: Result | DomainError) -> tuple[Any, ...]:
    if isinstance(outcome, DomainError):
        return ("refused", type(outcome).__name__)
    return ("ok", outcome.version, outcome.repeated, sorted(outcome.extra))


def state_of(store: RecorderEventStore, case_id: UUID) -> tuple[Any, ...]:
    case = Case.replay(case_id, store.events_of(case_id))
    kinds = [(type(e).__name__, e.version, e.meta.actor) for e in store.events_of(case_id)]
    return (case.version, case.stage, case.status, case.assignee, case.queue, case.title, case.data,
            sorted(c.body for c in case.comments.values()), kinds)


pick = st.integers(0, CASES - 1)
command_ids = st.none() | st.sampled_from(["k1", "k2", "k3"])
op = st.one_of(
    st.tuples(st.just("move"), pick, st.sampled_from(["new", "review", "done", "nowhere"])),
    st.tuples(st.just("assign"), pick, st.sampled_from(["bob", "carol"])),
    st.tuples(st.just("comment"), pick, st.sampled_from(["hi", "hello"])),
    st.tuples(st.just("update"), pick, st.sampled_from([{"amount": 5}, {"amount": -1}, {"customer": "x"}])),
    st.tuples(st.just("close"), pick),
    st.tuples(st.just("reopen"), pick),
    st.tuples(st.just("expect"), pick, st.integers(1, 6)),
    st.tuples(st.just("open"), st.sampled_from(["claim", "unknown"])),
    st.tuples(st.just("missing"),),
)


def command_of(spec: tuple[Any, ...], cases: list[UUID], command_id: str | None) -> m.Command:
    kind, *args = spec
    case = cases[args[0]] if args and isinstance(args[0], int) else None
    match kind:
        case "move":
            return m.MoveCaseToStage(command_id=command_id, case_id=case, stage=args[1])
        case "assign":
            return m.AssignCase(command_id=command_id, case_id=case, assignee=args[1])
        case "comment":
            return m.AddComment(command_id=command_id, case_id=case, body=args[1])
        case "update":
            return m.UpdateCaseData(command_id=command_id, case_id=case, patch=args[1])
        case "close":
            return m.CloseCase(command_id=command_id, case_id=case, reason="done")
        case "reopen":
            return m.ReopenCase(command_id=command_id, case_id=case, reason="again")
        case "expect":
            return m.AddComment(command_id=command_id, case_id=case, body="versioned", expected_version=args[1])
        case "open":
            return m.OpenCase(command_id=command_id, definition_key=args[0], title="new one", data={"amount": 1})
    return m.AddComment(command_id=command_id, case_id=uuid.uuid4(), body="nobody")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(op, command_ids), min_size=1, max_size=25), st.integers(1, 8))
def test_a_batch_decides_and_stores_what_one_by_one_would(twins: Twins, specs: list[Any], size: int) -> None:
    batch_store, single_store = twins.fresh()
    try:
        commands = [command_of(spec, twins.cases, command_id) for spec, command_id in specs]
        batch_bus, single_bus = CommandBus(batch_store), CommandBus(single_store)
        batched: list[Result | DomainError] = []
        for start in range(0, len(commands), size):
            batched.extend(batch_bus.dispatch_many(commands[start : start + size], ALICE))
        singles: list[Result | DomainError] = []
        for command in commands:
            try:
                singles.append(single_bus.dispatch(command, ALICE))
            except DomainError as exc:
                singles.append(exc)
        assert [outcome_of(o) for o in batched] == [outcome_of(o) for o in singles]
        for case_id in twins.cases:
            assert state_of(batch_store, case_id) == state_of(single_store, case_id)
        assert batch_store.max_position() == single_store.max_position()  # nothing more, nothing less stored
        positions = [o.position for o in batched if isinstance(o, Result)]
        assert all(0 < p <= batch_store.max_position() for p in positions)
    finally:
        batch_store.close()
        single_store.close()


def test_each_result_carries_the_position_of_its_own_command(twins: Twins) -> None:
    store, _other = twins.fresh()
    _other.close()
    try:
        bus = CommandBus(store)
        case = twins.cases[0]
        before = store.max_position()
        results = bus.dispatch_many([m.AddComment(command_id="one", case_id=case, body="one"),
                                     m.AddComment(case_id=case, body="two")], ALICE)
        assert [r.version for r in results if isinstance(r, Result)] == [2, 3]
        # the first command stores its case event and, having a command_id, its command-log entry; the second
        # (no command_id) only its event
        assert [r.position for r in results if isinstance(r, Result)] == [before + 2, before + 3]
        assert [type(p.event).__name__ for p in store.read(before, 10)] == ["CommentAdded", "CommandHandled",
                                                                            "CommentAdded"]
    finally:
        store.close()


def test_refusals_are_per_command_and_store_nothing_for_the_refused(twins: Twins) -> None:
    store, _other = twins.fresh()
    _other.close()
    try:
        bus = CommandBus(store)
        case = twins.cases[1]
        before = store.max_position()
        results = bus.dispatch_many([
            m.MoveCaseToStage(case_id=case, stage="done"),  # new -> done is not allowed
            m.AddComment(case_id=uuid.uuid4(), body="x"),
            m.AddComment(case_id=case, body="kept", expected_version=1),
            m.AddComment(case_id=case, body="stale", expected_version=1),
        ], ALICE)
        assert [type(r) for r in results] == [StageTransitionNotAllowed, NotFound, Result, VersionConflict]
        assert [type(p.event).__name__ for p in store.read(before, 10)] == ["CommentAdded"]
    finally:
        store.close()


def test_a_command_id_repeated_within_and_across_batches_is_stored_once(twins: Twins) -> None:
    store, _other = twins.fresh()
    _other.close()
    try:
        bus = CommandBus(store)
        case = twins.cases[2]
        same = m.AddComment(command_id="same", case_id=case, body="once")
        first = bus.dispatch_many([same, same, m.AddComment(command_id="same", case_id=case, body="other")], ALICE)
        again = bus.dispatch_many([same], ALICE)
        assert isinstance(first[0], Result) and isinstance(first[1], Result) and isinstance(again[0], Result)
        assert isinstance(first[2], CommandIdReused)
        assert (first[0].repeated, first[1].repeated, again[0].repeated) == (False, True, True)
        assert first[0].position == first[1].position == again[0].position
        assert [c.body for c in Case.replay(case, store.events_of(case)).comments.values()] == ["once"]
    finally:
        store.close()


def test_a_lost_race_stores_nothing_of_the_batch_and_decides_again_one_by_one(twins: Twins) -> None:
    store, _other = twins.fresh()
    _other.close()
    try:
        bus, rival = CommandBus(store), CommandBus(store)
        case = twins.cases[0]
        real_append = store.append
        raced: list[bool] = []

        def append_after_a_rival(events: Any) -> list[int]:
            if not raced:  # another writer stores a change to the case between the batch's reads and its append
                raced.append(True)
                rival.dispatch(m.AddComment(case_id=case, body="rival"), ALICE)
            return real_append(events)

        store.append = append_after_a_rival  # type: ignore[method-assign]
        results = bus.dispatch_many([m.AddComment(case_id=case, body="mine"), m.AssignCase(case_id=case,
                                                                                          assignee="bob")], ALICE)
        assert [r.version for r in results if isinstance(r, Result)] == [3, 4]
        events = store.events_of(case)
        assert [type(e).__name__ for e in events] == ["CaseOpened", "CommentAdded", "CommentAdded", "CaseAssigned"]
    finally:
        store.close()


def test_concurrent_submits_are_handled_together_and_each_gets_its_own_answer(twins: Twins) -> None:
    store, _other = twins.fresh()
    _other.close()
    try:
        bus = CommandBus(store)
        gate, appends = threading.Event(), []
        real_append = store.append

        def held_append(events: Any) -> list[int]:
            appends.append(len(events))
            gate.wait(5)  # hold the first batch's write so that the other submits queue behind it
            return real_append(events)

        store.append = held_append  # type: ignore[method-assign]
        answers: dict[int, Result | DomainError] = {}

        def submit(n: int) -> None:
            case = twins.cases[n % CASES]
            command: m.Command = (m.MoveCaseToStage(case_id=case, stage="done") if n == 5  # not allowed from new
                                  else m.AddComment(case_id=case, body=f"c{n}"))
            try:
                answers[n] = bus.submit(command, ALICE)
            except DomainError as exc:
                answers[n] = exc

        first = threading.Thread(target=submit, args=(0,))
        first.start()
        while not appends:
            time.sleep(0.01)
        others = [threading.Thread(target=submit, args=(n,)) for n in range(1, 12)]
        for thread in others:
            thread.start()
        time.sleep(0.3)
        gate.set()
        for thread in [first, *others]:
            thread.join(10)
        assert appends[0] == 1 and len(appends) == 2  # the first alone, the ten accepted others in one batch
        assert isinstance(answers.pop(5), StageTransitionNotAllowed)
        assert all(isinstance(a, Result) for a in answers.values())
        for case in twins.cases:  # every comment stored once, versions without gaps
            events = store.events_of(case)
            assert [e.version for e in events] == list(range(1, len(events) + 1))
        stored = {p.position: p.event for p in store.read(0, 1000)}
        for n, answer in answers.items():
            assert isinstance(answer, Result)
            assert getattr(stored[answer.position], "body", None) == f"c{n}"  # its own event's position
    finally:
        store.close()
