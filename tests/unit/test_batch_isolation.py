"""One command's defect fails that command alone, in a batch and among concurrent submissions (#12)."""

from __future__ import annotations

import threading
from uuid import UUID

from adapters.event_store import RecorderEventStore
from commands import messages as m
from commands.bus import Actor, CommandBus, Envelope
from commands.handlers import Outcome, handles
from commands.outcomes import Result
from commands.unit_of_work import UnitOfWork
from domain.case import Case
from domain.errors import CommandFailed
from domain.events import Context
from tests.unit.conftest import open_claim


class ExplodeOnPurpose(m.CaseCommand):
    """A command whose handler has a defect: it loads and changes its case, then raises a non-domain error."""


@handles(ExplodeOnPurpose)
def _explode(cmd: ExplodeOnPurpose, ctx: Context, uow: UnitOfWork) -> Outcome:
    case = uow.get(Case, cmd.case_id, f"case {cmd.case_id}")
    case.add_comment(ctx, "this comment must never be stored", None)
    raise RuntimeError("a defect in one handler")


def _comments(store: RecorderEventStore, case_id: str) -> list[str]:
    return [e.body for e in store.events_of(UUID(case_id)) if type(e).__name__ == "CommentAdded"]  # type: ignore[attr-defined]


def test_a_failing_command_in_a_batch_fails_alone_and_the_others_are_stored(
    bus: CommandBus, store: RecorderEventStore, alice: Actor, bob: Actor, claim: Result
) -> None:
    first, second = open_claim(bus, alice).id, open_claim(bus, alice).id
    envelopes = [
        Envelope(m.AddComment(case_id=UUID(first), body="before"), alice),
        Envelope(ExplodeOnPurpose(case_id=UUID(first)), bob),
        Envelope(m.AddComment(case_id=UUID(first), body="after"), bob),
        Envelope(m.AddComment(case_id=UUID(second), body="elsewhere"), alice),
    ]
    outcomes = bus.dispatch_envelopes(envelopes)
    assert isinstance(outcomes[1], CommandFailed)
    assert outcomes[1].status == 500 and "nothing of it was stored" in outcomes[1].detail
    assert all(isinstance(o, Result) for i, o in enumerate(outcomes) if i != 1)
    assert _comments(store, first) == ["before", "after"]
    assert _comments(store, second) == ["elsewhere"]
    # the defect left nothing behind in the bus's kept aggregates either
    assert isinstance(bus.dispatch(m.AddComment(case_id=UUID(first), body="later"), alice), Result)
    assert _comments(store, first) == ["before", "after", "later"]


def test_concurrent_submissions_get_their_own_answers_beside_a_failing_one(
    bus: CommandBus, store: RecorderEventStore, alice: Actor, bob: Actor, claim: Result
) -> None:
    cases = [open_claim(bus, alice).id for _ in range(8)]
    answers: dict[str, object] = {}
    start = threading.Barrier(len(cases) + 1)

    def comment(case_id: str) -> None:
        start.wait()
        for n in range(10):
            try:
                answers[f"{case_id}:{n}"] = bus.submit(m.AddComment(case_id=UUID(case_id), body=f"c{n}"), alice)
            except Exception as exc:
                answers[f"{case_id}:{n}"] = exc

    def explode() -> None:
        start.wait()
        for _ in range(10):
            try:
                bus.submit(ExplodeOnPurpose(case_id=UUID(cases[0])), bob)
            except CommandFailed as exc:
                answers.setdefault("failed", exc)

    threads = [threading.Thread(target=comment, args=(c,)) for c in cases] + [threading.Thread(target=explode)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert isinstance(answers.get("failed"), CommandFailed)
    others = {k: v for k, v in answers.items() if k != "failed"}
    assert len(others) == 80 and all(isinstance(v, Result) for v in others.values()), others
    for case_id in cases:
        assert _comments(store, case_id) == [f"c{n}" for n in range(10)]
