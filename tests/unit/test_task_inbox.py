"""The task inbox read model and its queries: views per user, filters, sorts, cursor paging, tenants, timeline."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from adapters.embedded_runner import EmbeddedRunner
from adapters.sqlite_documents import SqliteDocumentStore
from commands import messages as m
from commands.bus import Actor, CommandBus, Result
from domain.errors import NotFound, ValidationFailed
from projections.queries import case_timeline
from projections.task_queries import get_task, list_tasks
from tests.unit.conftest import OTHER_TENANT, TENANT, open_claim

DAN = Actor("dan", TENANT, ("caseworker", "claims"))
FRAN = Actor("fran", TENANT, ("fraud",))


def _create(bus: CommandBus, actor: Actor, case_id: str, title: str, **fields: Any) -> str:
    return bus.dispatch(m.CreateTask(case_id=UUID(case_id), title=title, **fields), actor).id


def _ids(page_items: list[dict[str, Any]]) -> list[str]:
    return [d["title"] for d in page_items]


def _view(documents: SqliteDocumentStore, actor: Actor, view: str, **kw: Any) -> list[str]:
    return _ids(list_tasks(documents, actor.tenant, actor.user, actor.roles, view=view, **kw).items)


@pytest.fixture
def case_id(claim: Result, bus: CommandBus, alice: Actor) -> str:
    return open_claim(bus, alice, title="Hail on the roof").id


@pytest.fixture
def inbox(bus: CommandBus, alice: Actor, bob: Actor, case_id: str, runner: EmbeddedRunner) -> dict[str, str]:
    """Five tasks in known states, folded into the read model."""
    ids = {
        "for-alice": _create(bus, bob, case_id, "for-alice", assignee="alice", priority=10,
                             due_at=datetime(2026, 12, 3, tzinfo=UTC)),
        "claims": _create(bus, bob, case_id, "claims", candidate_groups=["claims"], priority=90,
                          due_at=datetime(2026, 12, 1, tzinfo=UTC)),
        "claimed": _create(bus, bob, case_id, "claimed", candidate_groups=["claims", "fraud"], priority=50),
        "nobody": _create(bus, bob, case_id, "nobody", priority=30, due_at=datetime(2026, 12, 2, tzinfo=UTC)),
        "done": _create(bus, bob, case_id, "done", assignee="alice", priority=70),
    }
    bus.dispatch(m.ClaimTask(task_id=UUID(ids["claimed"])), DAN)
    bus.dispatch(m.CompleteTask(task_id=UUID(ids["done"]), data={"ok": True}), alice)
    runner.catch_up()
    return ids


def test_task_document_carries_case_and_inbox_fields(documents, inbox, case_id):
    doc = get_task(documents, TENANT, inbox["claims"])
    assert (doc["case_id"], doc["case_number"], doc["case_title"]) == (case_id, "CLAIM-000001", "Hail on the roof")
    assert (doc["status"], doc["owner"], doc["candidate_groups"], doc["priority"]) == ("open", None, ["claims"], 90)
    assert (doc["due_at"], doc["kind"], doc["created_by"]) == ("2026-12-01T00:00:00+00:00", "ad-hoc", "bob")
    assert "search" not in doc and doc["position"] > 0
    done = get_task(documents, TENANT, inbox["done"])
    assert (done["status"], done["data"], done["completed_by"], done["active"]) == ("completed", {"ok": True},
                                                                                    "alice", False)


def test_views_per_user(documents, inbox, alice):
    assert _view(documents, alice, "mine") == ["for-alice"]
    assert _view(documents, alice, "mine", status="completed") == ["done"]
    assert _view(documents, DAN, "mine") == ["claimed"]
    assert _view(documents, DAN, "groups") == ["claims"]  # the claimed one has left the group view
    assert _view(documents, FRAN, "groups") == []
    assert _view(documents, alice, "groups") == []
    assert _view(documents, alice, "unassigned") == ["claims", "nobody"]  # by due date
    assert sorted(_view(documents, alice, "all")) == sorted(inbox)


def test_sorts_due_date_first_without_due_last_and_priority_highest_first(documents, inbox, alice):
    assert _view(documents, alice, "all", status="open") == ["claims", "nobody", "for-alice"]
    assert _view(documents, alice, "all", sort="priority") == ["claims", "done", "claimed", "nobody", "for-alice"]
    assert _view(documents, alice, "all", sort="priority", descending=False)[0] == "for-alice"


def test_cursor_pages_through_a_merged_group_view(bus, bob, case_id, documents, runner):
    both = Actor("gil", TENANT, ("claims", "fraud"))
    expected = []
    for n in range(7):
        groups = [["claims"], ["fraud"], ["claims", "fraud"]][n % 3]
        expected.append((100 - n * 10, _create(bus, bob, case_id, f"t{n}", candidate_groups=groups,
                                               priority=100 - n * 10)))
    runner.catch_up()
    seen: list[str] = []
    cursor = None
    while True:
        page = list_tasks(documents, TENANT, "gil", both.roles, view="groups", sort="priority", limit=2,
                          cursor=cursor)
        seen += [d["id"] for d in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [task_id for _priority, task_id in expected]


def test_filter_by_case(bus, alice, bob, documents, inbox, runner, case_id):
    other = open_claim(bus, alice, title="Flood").id
    _create(bus, bob, other, "elsewhere")
    runner.catch_up()
    assert _view(documents, alice, "all", case_id=other) == ["elsewhere"]
    assert "elsewhere" not in _view(documents, alice, "all", case_id=case_id)


def test_other_tenants_see_no_task(documents, inbox, mallory):
    assert _view(documents, mallory, "all") == []
    assert _view(documents, Actor("alice", OTHER_TENANT, ("caseworker",)), "mine") == []
    with pytest.raises(NotFound):
        get_task(documents, OTHER_TENANT, inbox["claims"])


def test_bad_query_parameters_name_the_field(documents, alice):
    with pytest.raises(ValidationFailed) as err:
        list_tasks(documents, TENANT, "alice", alice.roles, view="everything", status="done", sort="title")
    assert [e.path for e in err.value.errors] == ["view", "status", "sort"]
    with pytest.raises(ValidationFailed) as err:
        list_tasks(documents, TENANT, "alice", alice.roles, cursor="%%%")
    assert [e.path for e in err.value.errors] == ["cursor"]


def test_reassignment_and_unclaim_move_a_task_between_inboxes(bus, bob, documents, inbox, runner, alice):
    bus.dispatch(m.AssignTask(task_id=UUID(inbox["claimed"]), assignee="alice"), bob)  # releases dan's claim
    runner.catch_up()
    assert _view(documents, alice, "mine") == ["for-alice", "claimed"]
    assert _view(documents, DAN, "mine") == []
    bus.dispatch(m.CancelTask(task_id=UUID(inbox["for-alice"]), reason="not needed"), bob)
    runner.catch_up()
    assert _view(documents, alice, "mine") == ["claimed"]
    assert get_task(documents, TENANT, inbox["for-alice"])["cancel_reason"] == "not needed"


def test_task_events_appear_on_the_case_timeline_in_order(documents, inbox, case_id):
    entries = case_timeline(documents, TENANT, case_id)
    summaries = [e["summary"] for e in entries]
    assert summaries[0].startswith("opened CLAIM-000001")
    assert "created task “for-alice” for alice, due 2026-12-03 00:00 UTC" in summaries
    assert "created task “claimed” for group claims or group fraud" in summaries
    assert summaries[-2:] == ["claimed task “claimed”", "completed task “done”"]
    assert [e["actor"] for e in entries[-2:]] == ["dan", "alice"]
