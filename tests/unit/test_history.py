"""History: a case as of a version or a moment, and the difference between two versions."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from commands import messages as m
from domain.case import Case
from domain.errors import NotFound, ValidationFailed
from projections.history import as_of, compare
from projections.queries import get_case
from tests.unit.conftest import T0, TENANT, Clock, claim_spec, make_ctx, open_claim


@pytest.fixture
def story():  # type: ignore[no-untyped-def]
    """Events of one case, one minute apart starting at T0 + 1 min:

    v1 open (amount 100, stage new) | v2 amount 250, customer Ann | v3 move to review | v4 assign carol
    v5 retitle | v6 remove customer | v7 close (approved)
    """
    clock = Clock()
    spec = claim_spec()
    case = Case.open(make_ctx(now=clock.tick()), spec, 1, 1, "Broken window", {"amount": 100})
    case.update_data(make_ctx(now=clock.tick()), spec, {"amount": 250, "customer": "Ann"})
    case.move_to_stage(make_ctx("carol", now=clock.tick()), spec, "review")
    case.assign(make_ctx(now=clock.tick()), "carol")
    case.retitle(make_ctx(now=clock.tick()), "Broken front window")
    case.update_data(make_ctx(now=clock.tick()), spec, {"customer": None})
    case.close(make_ctx(now=clock.tick()), spec, "paid", "approved")
    return case.collect()


def test_as_of_version_shows_the_case_as_it_was(story):
    v1 = as_of(story, version=1)
    assert (v1["version"], v1["title"], v1["stage"], v1["data"], v1["assignee"]) == (
        1, "Broken window", "new", {"amount": 100}, None,
    )
    v4 = as_of(story, version=4)
    assert (v4["version"], v4["stage"], v4["assignee"], v4["data"]) == (
        4, "review", "carol", {"amount": 250, "customer": "Ann"},
    )
    assert "search" not in v4
    latest = as_of(story)
    assert (latest["version"], latest["status"], latest["data"]) == (7, "closed", {"amount": 250})


def test_as_of_timestamp_includes_events_at_or_before_it(story):
    at_v3 = T0 + timedelta(minutes=3)  # exactly the move to review
    assert as_of(story, at=at_v3)["version"] == 3
    assert as_of(story, at=at_v3 + timedelta(seconds=59))["version"] == 3
    assert as_of(story, at=at_v3 - timedelta(microseconds=1))["version"] == 2
    assert as_of(story, at=T0 + timedelta(days=1))["version"] == 7


def test_as_of_before_the_case_existed_is_not_found(story):
    with pytest.raises(NotFound):
        as_of(story, at=T0)
    with pytest.raises(ValidationFailed):  # version 0 never existed: a bad request, not a moment before the case
        as_of(story, version=0)
    with pytest.raises(ValidationFailed):  # nor a version after the last (it used to answer the latest)
        as_of(story, version=story[-1].version + 1)


def test_as_of_version_and_timestamp_both_apply(story):
    assert as_of(story, version=5, at=T0 + timedelta(minutes=3))["version"] == 3
    assert as_of(story, version=2, at=T0 + timedelta(minutes=6))["version"] == 2


def test_compare_lists_changed_fields_data_diff_and_events_between(story):
    result = compare(story, 1, 6)
    assert result["from"] == 1 and result["to"] == 6
    assert result["fields"] == {
        "title": {"old": "Broken window", "new": "Broken front window"},
        "stage": {"old": "new", "new": "review"},
        "assignee": {"old": None, "new": "carol"},
    }
    assert result["data"] == [{"op": "set", "path": ["amount"], "old": 100, "new": 250}]
    assert [(e["version"], e["type"], e["actor"]) for e in result["events"]] == [
        (2, "CaseDataChanged", "alice"), (3, "CaseMovedToStage", "carol"), (4, "CaseAssigned", "alice"),
        (5, "CaseRetitled", "alice"), (6, "CaseDataChanged", "alice"),
    ]
    assert result["events"][0]["at"] == "2026-01-05T09:02:00+00:00"


def test_compare_backwards_is_refused_naming_from(story):
    # a reversed diff with no events between was a confusing answer to a mistaken request (issue #12)
    with pytest.raises(ValidationFailed) as refused:
        compare(story, 7, 2)
    assert [e.path for e in refused.value.errors] == ["from"]


def test_compare_same_version_is_empty(story):
    result = compare(story, 4, 4)
    assert (result["fields"], result["data"], result["events"]) == ({}, [], [])


@pytest.mark.parametrize(("a", "b", "bad"), [(0, 3, "from"), (1, 8, "to"), (9, 1, "from")])
def test_compare_refuses_versions_out_of_range(story, a, b, bad):
    with pytest.raises(ValidationFailed) as err:
        compare(story, a, b)
    assert err.value.errors[0].path == bad
    assert err.value.errors[0].message == "between 1 and 7"


@pytest.mark.usefixtures("claim")
def test_history_at_the_latest_version_equals_the_live_read_model(bus, alice, carol, store, documents, runner):
    opened = open_claim(bus, alice)
    parent = bus.dispatch(m.AddComment(case_id=opened.id, body="q"), carol).extra["comment_id"]
    bus.dispatch(m.AddComment(case_id=opened.id, body="a", parent_id=parent), alice)
    bus.dispatch(m.EditComment(case_id=opened.id, comment_id=parent, body="q?"), carol)
    bus.dispatch(m.QueueCase(case_id=opened.id, queue="intake"), alice)
    runner.catch_up()
    events = store.events_of(UUID(opened.id))
    live = get_case(documents, TENANT, opened.id)
    live.pop("position")
    assert as_of(events) == live
    assert as_of(events, version=2)["comment_count"] == 1
    assert as_of(events, version=4)["comments"][0]["body"] == "q?"
