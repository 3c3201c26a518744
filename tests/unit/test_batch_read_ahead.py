"""Case openings in a batch find their definition and number sequence read ahead: one run of each handler, one
history query, and the same cases and numbers as one by one (#13)."""

from __future__ import annotations

from pathlib import Path

from adapters.event_store import RecorderEventStore
from adapters.rego_policy import RegoPolicy
from commands import messages as m
from commands.batch import Batch
from commands.bus import Actor, CommandBus, Result
from commands.handlers import HANDLERS
from commands.unit_of_work import LoadedAggregates
from tests.unit.conftest import TENANT, open_claim, publish_claim
from tests.unit.test_batch_shared_reads import CountingReads

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def test_openings_run_their_handler_once_and_number_cases_as_one_by_one(
    store: RecorderEventStore, alice: Actor
) -> None:
    bus = CommandBus(store, RegoPolicy(POLICIES))
    publish_claim(bus, Actor("admin", TENANT, ("admin",)))
    first = open_claim(bus, alice)  # the sequence exists: its newest event is what the batch reads ahead
    runs = 0
    handler = HANDLERS[m.OpenCase]

    def counted(*args: object) -> object:
        nonlocal runs
        runs += 1
        return handler(*args)  # type: ignore[arg-type]

    HANDLERS[m.OpenCase] = counted  # type: ignore[assignment]
    try:
        commands = [m.OpenCase(definition_key="claim", title=f"Claim {n}", data={"amount": n}) for n in range(12)]
        reads = CountingReads(store)
        batch = Batch(reads, LoadedAggregates(), [bus.prepare(c, alice, None, None) for c in commands])  # type: ignore[arg-type]
        batch.decide()
        batch.store_accepted()
    finally:
        HANDLERS[m.OpenCase] = handler
    assert runs == len(commands)  # without reading ahead: the definition's round, then the sequence's
    assert reads.history_queries == 1
    results = batch.results()
    assert all(isinstance(result, Result) for result in results)
    start = _serial(str(first.extra["number"]))
    assert [_serial(str(r.extra["number"])) for r in results if isinstance(r, Result)] == list(
        range(start + 1, start + 1 + len(commands)))


def _serial(number: str) -> int:
    return int(number.rsplit("-", 1)[1])
