"""Queries over the read models: case list (filters, sort, search, cursors), detail, kanban, counts, timeline."""

from __future__ import annotations

import pytest

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import sqlite_event_store
from adapters.sqlite_documents import SqliteDocumentStore
from commands import messages as m
from commands.bus import Actor, CommandBus
from domain.errors import NotFound, ValidationFailed
from projections.catalog import ALL
from projections.queries import case_counts, case_timeline, decode_cursor, encode_cursor, get_case, kanban, list_cases
from tests.unit.conftest import OTHER_TENANT, TENANT, open_claim, publish_claim

# (title, amount, customer, stage path, assignee, queue, closed)
CASES = [
    ("Broken window", 100, "Ann Smith", [], None, None, False),
    ("Water damage", 2500, "Bob Jones", ["review"], "carol", "fraud", False),
    ("Stolen bike", 800, "Cara 100% Corp", ["review"], "carol", None, False),
    ("Hail on car", 1000, "Dan", ["review", "done"], None, "intake", False),
    ("Flooded cellar", 4000, "Eve", [], "bob", "intake", True),
    ("Cracked screen", 150, "Fay", [], None, None, False),
    ("Burst pipe", 1000, "Gus_Corp", ["review"], None, None, False),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Seven acme claims worked to different states (in CASES order), one complaint, one globex claim.

    Built once per module (the queries only read): {"documents", "ids", "complaint", "foreign"}.
    """
    path = tmp_path_factory.mktemp("world")
    store = sqlite_event_store(path / "events.db")
    documents = SqliteDocumentStore(path / "views.db", ALL)
    bus = CommandBus(store)
    alice, mallory = Actor("alice", TENANT), Actor("mallory", OTHER_TENANT)
    publish_claim(bus, alice)
    publish_claim(bus, alice, key="complaint", prefix="COMP", card_fields=[])
    publish_claim(bus, mallory)
    ids = []
    for title, amount, customer, stages, assignee, queue, closed in CASES:
        case_id = open_claim(bus, alice, title=title, amount=amount, customer=customer).id
        for stage in stages:
            bus.dispatch(m.MoveCaseToStage(case_id=case_id, stage=stage), alice)
        if assignee:
            bus.dispatch(m.AssignCase(case_id=case_id, assignee=assignee), alice)
        if queue:
            bus.dispatch(m.QueueCase(case_id=case_id, queue=queue), alice)
        if closed:
            bus.dispatch(m.CloseCase(case_id=case_id, reason="duplicate", resolution="rejected"), alice)
        ids.append(case_id)
    complaint = open_claim(bus, alice, title="Rude agent", amount=0, definition_key="complaint").id
    foreign = open_claim(bus, mallory, title="Broken window", amount=100).id
    EmbeddedRunner(store, documents, ALL).catch_up()
    yield {"documents": documents, "ids": ids, "complaint": complaint, "foreign": foreign}
    documents.close()
    store.close()


@pytest.fixture
def docs(world):  # type: ignore[no-untyped-def]
    return world["documents"]


def _titles(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [d["title"] for d in page.items]


def _all_pages(documents, **kwargs) -> list[list[str]]:  # type: ignore[no-untyped-def]
    pages, cursor = [], None
    while True:
        page = list_cases(documents, TENANT, cursor=cursor, **kwargs)
        pages.append([d["id"] for d in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return pages


def test_default_list_is_newest_change_first_and_only_this_tenant(world, docs):
    page = list_cases(docs, TENANT)
    # the complaint was touched last, then the claims in reverse order of being worked
    assert [d["id"] for d in page.items] == [world["complaint"], *reversed(world["ids"])]
    assert world["foreign"] not in [d["id"] for d in page.items]
    assert page.next_cursor is None
    assert all("comments" not in d and "search" not in d for d in page.items)


@pytest.mark.parametrize(
    ("filters", "titles"),
    [
        ({"status": "closed"}, ["Flooded cellar"]),
        ({"stage": "review"}, ["Burst pipe", "Stolen bike", "Water damage"]),
        ({"assignee": "carol"}, ["Stolen bike", "Water damage"]),
        ({"queue": "intake"}, ["Flooded cellar", "Hail on car"]),
        ({"definition_key": "complaint"}, ["Rude agent"]),
        ({"stage": "review", "queue": "fraud"}, ["Water damage"]),
        ({"stage": "done", "status": "closed"}, []),
        ({"assignee": None}, ["Broken window", "Burst pipe", "Cracked screen", "Flooded cellar", "Hail on car",
                              "Rude agent", "Stolen bike", "Water damage"]),
    ],
)
def test_list_filters_by_equality(docs, filters, titles):
    assert _titles(list_cases(docs, TENANT, filters=filters, sort="title", descending=False)) == titles


@pytest.mark.parametrize(
    ("text", "titles"),
    [
        ("window", ["Broken window"]),
        ("WATER", ["Water damage"]),
        ("ann smith", ["Broken window"]),
        ("1000", ["Burst pipe", "Hail on car"]),
        ("claim-000003", ["Stolen bike"]),
        ("100%", ["Stolen bike"]),  # % is literal, not a wildcard (else 1000 would match)
        ("gus_", ["Burst pipe"]),
        ("nothing like this", []),
    ],
)
def test_list_text_search_is_case_insensitive_over_number_title_and_data(docs, text, titles):
    assert _titles(list_cases(docs, TENANT, text=text, sort="title", descending=False)) == titles


def test_underscore_in_search_is_not_a_single_character_wildcard(docs):
    # "ann_smith" would match "ann smith" if _ were a wildcard
    assert _titles(list_cases(docs, TENANT, text="ann_smith")) == []


def test_list_sorts_by_title_and_number_both_ways(docs):
    claims = {"definition_key": "claim"}
    by_title = sorted(t for t, *_ in CASES)
    assert _titles(list_cases(docs, TENANT, filters=claims, sort="title", descending=False)) == by_title
    assert _titles(list_cases(docs, TENANT, filters=claims, sort="title")) == by_title[::-1]
    numbers = [d["number"] for d in list_cases(docs, TENANT, filters=claims, sort="number").items]
    assert numbers == [f"CLAIM-{n:06d}" for n in range(7, 0, -1)]


def test_list_sorts_by_opened_at_in_opening_order(world, docs):
    page = list_cases(docs, TENANT, sort="opened_at", descending=False)
    assert [d["id"] for d in page.items] == [*world["ids"], world["complaint"]]


@pytest.mark.parametrize("sort", ["updated_at", "opened_at", "number", "title"])
@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("limit", [1, 2, 3])
def test_cursor_pages_have_no_duplicates_and_no_gaps(world, docs, sort, descending, limit):
    pages = _all_pages(docs, sort=sort, descending=descending, limit=limit)
    flat = [i for p in pages for i in p]
    whole = [d["id"] for d in list_cases(docs, TENANT, sort=sort, descending=descending, limit=200).items]
    assert flat == whole
    assert sorted(flat) == sorted([*world["ids"], world["complaint"]])
    assert [len(p) for p in pages[:-1]] == [limit] * (len(pages) - 1)


def test_cursor_paging_is_stable_when_the_sort_value_ties(bus, alice, documents, runner):
    publish_claim(bus, alice)
    ids = {open_claim(bus, alice, title="Same title").id for _ in range(5)}
    runner.catch_up()
    pages = _all_pages(documents, sort="title", descending=False, limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    flat = [i for p in pages for i in p]
    assert flat == sorted(ids)  # ties are broken by id


def test_filters_and_search_combine_with_paging(docs):
    pages = _all_pages(docs, filters={"stage": "review"}, text="o", sort="title", descending=False, limit=1)
    # review cases: Water damage (Bob Jones), Stolen bike (Cara 100% Corp), Burst pipe (Gus_Corp) - all contain "o"
    titles = [get_case(docs, TENANT, p[0])["title"] for p in pages if p]
    assert titles == ["Burst pipe", "Stolen bike", "Water damage"]


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"filters": {"tenant": "globex"}}, "tenant"),
        ({"sort": "amount"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": encode_cursor("x", "y")[:-3] + "@@@"}, "cursor"),
    ],
)
def test_list_refuses_bad_parameters_naming_them(docs, kwargs, path):
    with pytest.raises(ValidationFailed) as err:
        list_cases(docs, TENANT, **kwargs)
    assert [e.path for e in err.value.errors] == [path]


def test_cursor_round_trips():
    assert decode_cursor(encode_cursor("2026-01-01T00:00:00+00:00", "abc")) == ("2026-01-01T00:00:00+00:00", "abc")
    with pytest.raises(ValidationFailed):
        decode_cursor(encode_cursor("v", 5))  # type: ignore[arg-type]


def test_get_case_hides_other_tenants_and_unknown_ids(world, docs):
    doc = get_case(docs, TENANT, world["ids"][1])
    assert (doc["title"], doc["stage"], doc["assignee"], doc["queue"]) == ("Water damage", "review", "carol", "fraud")
    with pytest.raises(NotFound):
        get_case(docs, TENANT, world["foreign"])
    with pytest.raises(NotFound):
        get_case(docs, OTHER_TENANT, world["ids"][0])
    with pytest.raises(NotFound):
        get_case(docs, TENANT, "00000000-0000-0000-0000-000000000000")


def test_kanban_columns_follow_stage_order_with_open_cases_only(world, docs):
    board = kanban(docs, TENANT, "claim")
    assert [c["stage"] for c in board["columns"]] == ["new", "review", "done"]
    assert [c["name"] for c in board["columns"]] == ["New", "In review", "Done"]
    assert [c["transitions"] for c in board["columns"]] == [["review"], ["new", "done"], []]
    assert [c["count"] for c in board["columns"]] == [2, 3, 1]  # Flooded cellar is closed
    new = board["columns"][0]
    assert sorted(card["title"] for card in new["cards"]) == ["Broken window", "Cracked screen"]
    water = next(card for card in board["columns"][1]["cards"] if card["title"] == "Water damage")
    assert water["fields"] == {"amount": 2500, "customer": "Bob Jones"}
    assert water["assignee"] == "carol"
    assert water["number"] == "CLAIM-000002"


def test_kanban_column_count_is_the_total_even_when_cards_are_capped(docs):
    board = kanban(docs, TENANT, "claim", per_column=1)
    assert [(c["count"], len(c["cards"])) for c in board["columns"]] == [(2, 1), (3, 1), (1, 1)]


def test_kanban_of_unknown_or_foreign_definition_is_not_found(docs):
    with pytest.raises(NotFound):
        kanban(docs, TENANT, "nope")
    with pytest.raises(NotFound):
        kanban(docs, "initech", "claim")


def test_counts_group_cases_by_status_stage_queue_and_assignee(docs):
    counts = case_counts(docs, TENANT, "claim")
    assert counts["status"] == {"open": 6, "closed": 1}
    assert counts["stage"] == {"new": 3, "review": 3, "done": 1}
    assert counts["queue"] == {"": 4, "fraud": 1, "intake": 2}
    assert counts["assignee"] == {"": 4, "carol": 2, "bob": 1}
    assert counts["definition_key"] == {"claim": 7}
    assert case_counts(docs, TENANT)["definition_key"] == {"claim": 7, "complaint": 1}
    assert case_counts(docs, OTHER_TENANT)["status"] == {"open": 1}


@pytest.mark.usefixtures("claim")
def test_timeline_lists_readable_summaries_in_version_order(bus, alice, carol, bob, documents, runner):
    opened = open_claim(bus, alice, title="Broken window", amount=100)
    case_id = opened.id
    bus.dispatch(m.UpdateCaseData(case_id=case_id, patch={"amount": 250, "customer": "Ann"}), alice)
    bus.dispatch(m.MoveCaseToStage(case_id=case_id, stage="review"), alice)
    bus.dispatch(m.AssignCase(case_id=case_id, assignee="carol"), alice)
    bus.dispatch(m.QueueCase(case_id=case_id, queue="fraud"), alice)
    parent = bus.dispatch(m.AddComment(case_id=case_id, body="Looks odd"), carol).extra["comment_id"]
    bus.dispatch(m.AddComment(case_id=case_id, body="Agreed", parent_id=parent), bob)
    bus.dispatch(m.DeleteComment(case_id=case_id, comment_id=parent, reason="dup"), bob)
    bus.dispatch(m.QueueCase(case_id=case_id, queue=None), alice)
    bus.dispatch(m.UnassignCase(case_id=case_id), alice)
    bus.dispatch(m.RetitleCase(case_id=case_id, title="Broken front window"), alice)
    bus.dispatch(m.CloseCase(case_id=case_id, reason="paid out", resolution="approved"), alice)
    bus.dispatch(m.ReopenCase(case_id=case_id, reason="appeal"), alice)
    bus.dispatch(m.CloseCase(case_id=case_id, reason="final"), alice)
    bus.dispatch(m.ArchiveCase(case_id=case_id, reason="retention"), alice)
    runner.catch_up()
    timeline = case_timeline(documents, TENANT, case_id)
    assert [e["version"] for e in timeline] == list(range(1, 16))
    assert [e["summary"] for e in timeline] == [
        "opened CLAIM-000001 “Broken window” in stage new",
        "changed data: amount: 100 → 250; customer: (empty) → Ann",
        "moved the case from new to review",
        "assigned the case to carol",
        "put the case in queue fraud",
        "commented: Looks odd",
        "replied: Agreed",
        "deleted a comment (dup)",
        "took the case out of its queue",
        "unassigned carol",
        "renamed the case to “Broken front window”",
        "closed the case as approved: paid out",
        "reopened the case: appeal",
        "closed the case: final",
        "archived the case: retention",
    ]
    assert [e["actor"] for e in timeline][5:8] == ["carol", "bob", "bob"]
    assert {e["case_id"] for e in timeline} == {case_id}
    with pytest.raises(NotFound):
        case_timeline(documents, OTHER_TENANT, case_id)


@pytest.mark.usefixtures("claim")
def test_timeline_summarises_long_data_changes(bus, alice, documents, runner):
    opened = open_claim(bus, alice, amount=1)
    patch = {"details": {f"k{i}": i for i in range(7)}}
    bus.dispatch(m.UpdateCaseData(case_id=opened.id, patch=patch), alice)
    bus.dispatch(m.UpdateCaseData(case_id=opened.id, patch={"details": None}), alice)
    runner.catch_up()
    summaries = [e["summary"] for e in case_timeline(documents, TENANT, opened.id)]
    assert summaries[1] == (
        'changed data: details: (empty) → {"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6}'
    )
    assert summaries[2] == "changed data: removed details"
