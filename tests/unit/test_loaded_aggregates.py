"""Aggregates kept between commands: used only while the stored history still matches them, never shared
between two commands, and dropped with a command that did not store."""

from __future__ import annotations

from uuid import UUID

import pytest

from commands import messages as m
from commands.bus import CommandBus
from commands.unit_of_work import LoadedAggregates
from domain.case import Case
from domain.errors import VersionConflict
from tests.unit.conftest import open_claim


def _state(case: Case) -> dict[str, object]:
    return {k: v for k, v in vars(case).items() if k != "pending"}


@pytest.mark.usefixtures("claim")
def test_kept_case_is_brought_up_to_date_with_what_another_process_stored(bus, alice, store):
    other = CommandBus(store)  # a second API process on the same event store
    case_id = UUID(open_claim(bus, alice).id)
    bus.dispatch(m.AssignCase(case_id=case_id, assignee="carol"), alice)
    other.dispatch(m.AddComment(case_id=case_id, body="from the other process"), alice)
    other.dispatch(m.QueueCase(case_id=case_id, queue="fraud"), alice)
    result = bus.dispatch(m.AssignCase(case_id=case_id, assignee="dave", expected_version=4), alice)
    assert result.version == 5
    with pytest.raises(VersionConflict):
        bus.dispatch(m.AssignCase(case_id=case_id, assignee="erin", expected_version=4), alice)
    kept = bus.loaded.load(Case, case_id, store.events_of(case_id))
    assert _state(kept) == _state(Case.replay(case_id, store.events_of(case_id)))
    assert (kept.assignee, kept.queue, len(kept.comments), kept.version) == ("dave", "fraud", 1, 5)


@pytest.mark.usefixtures("claim")
def test_a_command_that_did_not_store_leaves_nothing_behind(bus, alice, store, monkeypatch):
    case_id = UUID(open_claim(bus, alice).id)
    bus.dispatch(m.AssignCase(case_id=case_id, assignee="carol"), alice)
    real_append = store.append

    def refuse(events):  # type: ignore[no-untyped-def]
        raise VersionConflict("lost a race")

    monkeypatch.setattr(store, "append", refuse)
    monkeypatch.setattr("commands.bus.MAX_ATTEMPTS", 1)
    with pytest.raises(VersionConflict):
        bus.dispatch(m.AssignCase(case_id=case_id, assignee="mallory"), alice)
    monkeypatch.setattr(store, "append", real_append)
    result = bus.dispatch(m.QueueCase(case_id=case_id, queue="fraud"), alice)
    assert result.version == 3
    case = Case.replay(case_id, store.events_of(case_id))
    assert (case.assignee, case.queue) == ("carol", "fraud")
    kept = bus.loaded.load(Case, case_id, store.events_of(case_id))
    assert (kept.assignee, kept.queue, kept.version) == ("carol", "fraud", 3)


@pytest.mark.usefixtures("claim")
def test_a_history_that_no_longer_matches_is_replayed(bus, alice, store):
    first = UUID(open_claim(bus, alice).id)
    second = UUID(open_claim(bus, alice, title="Other").id)
    loaded = LoadedAggregates()
    case = Case.replay(first, store.events_of(first))
    loaded.keep(case, store.events_of(first)[-1].event_id)
    # the same id with another history (a swapped database): the kept state must not be used
    foreign = [e for e in store.events_of(second)]
    replayed = loaded.load(Case, first, foreign)
    assert replayed is not case and replayed.title == "Other"


@pytest.mark.usefixtures("claim")
def test_a_kept_aggregate_is_handed_to_one_command_at_a_time(bus, alice, store):
    case_id = UUID(open_claim(bus, alice).id)
    bus.dispatch(m.AssignCase(case_id=case_id, assignee="carol"), alice)
    events = store.events_of(case_id)
    one = bus.loaded.load(Case, case_id, events)
    two = bus.loaded.load(Case, case_id, events)  # while `one` is out, a second load replays
    assert one is not two and _state(one) == _state(two)


