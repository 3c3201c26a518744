"""A batch's commands that only read a shared aggregate (their case definition) take their read rounds together; a
command that read it, waited, and then changes it still decides exactly what one by one would (#13)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from uuid import UUID

from adapters.event_store import RecorderEventStore
from adapters.rego_policy import RegoPolicy
from commands import messages as m
from commands.batch import Batch
from commands.bus import Actor, CommandBus, Envelope, Result
from commands.handlers import Outcome, handles
from commands.unit_of_work import LoadedAggregates, UnitOfWork
from domain.case import Case
from domain.definition import CaseDefinition, definition_id
from domain.events import Context, Event
from tests.unit.conftest import TENANT, open_claim, publish_claim

POLICIES = Path(__file__).resolve().parents[2] / "policies"


class CountingReads:
    """The event store, counting the queries that read histories (a batch's read rounds)."""

    def __init__(self, store: RecorderEventStore) -> None:
        self.store = store
        self.history_queries = 0

    def events_of_many(self, aggregate_ids: Sequence[UUID]) -> Mapping[UUID, Sequence[Event]]:
        self.history_queries += 1
        return self.store.events_of_many(aggregate_ids)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


def test_commands_on_cases_of_one_definition_read_it_together_in_a_few_rounds(
    store: RecorderEventStore, alice: Actor
) -> None:
    bus = CommandBus(store, RegoPolicy(POLICIES))  # the policy reads each case's definition (its access rules)
    publish_claim(bus, Actor("admin", TENANT, ("admin",)))
    cases = [open_claim(bus, alice).id for _ in range(20)]
    # a task command reads its case, the definition (for the policy), then its new task: a round after the shared
    # read
    commands = [m.CreateTask(case_id=UUID(case), task_id=uuid.uuid4(), title="check") for case in cases]
    reads = CountingReads(store)
    prepared = [bus.prepare(command, alice, None, None) for command in commands]
    batch = Batch(reads, LoadedAggregates(), prepared)  # type: ignore[arg-type]
    batch.decide()
    batch.store_accepted()
    assert batch.one_by_one == []  # all decided in the batch: none left to the one-by-one path
    # the command-log entries with the cases, the definition, then the tasks (one by one: newest events):
    # a command waiting after reading the definition did not hold back the next one
    assert reads.history_queries <= 2
    results = batch.results()
    assert all(isinstance(result, Result) for result in results)
    assert all(store.events_of(command.task_id) for command in commands if command.task_id is not None)


class ReviseAfterLooking(m.Command):
    """A test command: reads the claim definition, then two cases (a read round each), then publishes a revision
    of the definition with its number prefix changed: it reads the shared aggregate, waits, then changes it."""

    first: UUID
    second: UUID
    prefix: str


@handles(ReviseAfterLooking)
def _revise(cmd: ReviseAfterLooking, ctx: Context, uow: UnitOfWork) -> Outcome:
    definition = uow.get(CaseDefinition, definition_id(ctx.tenant, "claim"), "the claim definition")
    uow.get(Case, cmd.first, "the first case")
    uow.get(Case, cmd.second, "the second case")
    definition.publish(ctx, dataclasses.replace(definition.latest, number_prefix=cmd.prefix))
    return Outcome(definition.id, {})


def test_a_command_that_changes_what_a_later_one_already_read_keeps_the_one_by_one_order(
    bus: CommandBus, store: RecorderEventStore, alice: Actor, claim: Result
) -> None:
    first, second = UUID(open_claim(bus, alice).id), UUID(open_claim(bus, alice).id)
    # the last open reads the definition while the revision still waits for its second case, and could be decided
    # first; one by one it comes after the revision, so its number has the revised prefix
    outcomes = bus.dispatch_envelopes([
        Envelope(m.OpenCase(definition_key="claim", title="before", data={"amount": 1}), alice),
        Envelope(ReviseAfterLooking(first=first, second=second, prefix="REV"), alice),
        Envelope(m.OpenCase(definition_key="claim", title="after", data={"amount": 2}), alice),
    ])
    assert all(isinstance(outcome, Result) for outcome in outcomes), outcomes
    numbers = [str(outcome.extra["number"]) for outcome in (outcomes[0], outcomes[2]) if isinstance(outcome, Result)]
    assert numbers[0].startswith("CLAIM-") and numbers[1].startswith("REV-"), numbers
