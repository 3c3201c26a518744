"""Projections: the cases, timeline and reference read models; folding, positions, tombstones, rebuilds."""

from __future__ import annotations

from uuid import UUID

import pytest

from adapters.embedded_runner import EmbeddedRunner
from adapters.sqlite_documents import SqliteDocumentStore
from commands import messages as m
from domain.case import Case
from projections.cases import CASES, search_text
from projections.catalog import ALL
from projections.folding import fold_batch
from projections.ports import Write
from projections.queries import case_timeline, get_case, list_collection
from tests.unit.conftest import TENANT, Clock, claim_spec, make_ctx, open_claim, snapshot


def _events_of_a_worked_case():
    clock = Clock()
    spec = claim_spec()
    case = Case.open(make_ctx(now=clock.tick()), spec, 1, 3, "Broken window", {"amount": 100, "customer": "Ann"})
    case.update_data(make_ctx(now=clock.tick()), spec, {"amount": 250})
    case.move_to_stage(make_ctx("carol", now=clock.tick()), spec, "review")
    case.assign(make_ctx(now=clock.tick()), "carol")
    first = case.add_comment(make_ctx(now=clock.tick()), "first")
    case.add_comment(make_ctx("carol", now=clock.tick()), "reply", first)
    case.edit_comment(make_ctx(now=clock.tick()), first, "first, edited")
    case.delete_comment(make_ctx("bob", roles=("supervisor",), now=clock.tick()), first, "off topic")
    case.close(make_ctx(now=clock.tick()), spec, "paid", "approved")
    return case, case.collect(), first


def test_cases_fold_builds_the_document_from_the_events():
    _case, events, first = _events_of_a_worked_case()
    doc = None
    for event in events:
        doc = CASES.fold(doc, event)
    assert doc is not None
    assert doc["number"] == "CLAIM-000003"
    assert (doc["stage"], doc["status"], doc["assignee"], doc["queue"]) == ("review", "closed", "carol", None)
    assert (doc["closed_reason"], doc["resolution"]) == ("paid", "approved")
    assert doc["data"] == {"amount": 250, "customer": "Ann"}
    assert doc["version"] == 9
    assert (doc["opened_at"], doc["updated_at"]) == ("2026-01-05T09:01:00+00:00", "2026-01-05T09:09:00+00:00")
    assert (doc["opened_by"], doc["updated_by"]) == ("alice", "alice")
    assert doc["comment_count"] == 1
    deleted, reply = doc["comments"]
    assert (deleted["id"], deleted["deleted"], deleted["body"]) == (first, True, "")
    assert [h["body"] for h in deleted["history"]] == ["first", "first, edited"]
    assert deleted["edited_at"] == "2026-01-05T09:07:00+00:00"
    assert (reply["parent_id"], reply["author"], reply["body"], reply["deleted"]) == (first, "carol", "reply", False)
    assert doc["search"] == "claim-000003 broken window 250 ann"


def test_cases_fold_never_mutates_its_input_document():
    _case, events, _first = _events_of_a_worked_case()
    docs = [CASES.fold(None, events[0])]
    for event in events[1:]:
        docs.append(CASES.fold(docs[-1], event))
    # refolding each event onto its input gives the same output: inputs were not changed in place
    refolded = [CASES.fold(None, events[0])] + [CASES.fold(docs[i], e) for i, e in enumerate(events[1:])]
    assert refolded == docs
    assert docs[0]["comments"] == [] and docs[0]["data"] == {"amount": 100, "customer": "Ann"}


def test_case_event_without_an_opened_document_is_ignored():
    _case, events, _first = _events_of_a_worked_case()
    assert CASES.fold(None, events[1]) is None


def test_reopen_clears_closing_reason_and_archive_keeps_it():
    spec = claim_spec()
    case = Case.open(make_ctx(), spec, 1, 1, "T", {"amount": 1})
    case.close(make_ctx(), spec, "first close", "rejected")
    case.reopen(make_ctx(), "appeal")
    doc = None
    for event in case.collect():
        doc = CASES.fold(doc, event)
    assert (doc["status"], doc["closed_reason"], doc["resolution"]) == ("open", None, None)
    case.close(make_ctx(), spec, "second close")
    case.archive(make_ctx(), "retention")
    for event in case.collect():
        doc = CASES.fold(doc, event)
    assert (doc["status"], doc["closed_reason"], doc["resolution"]) == ("archived", "second close", None)


def test_search_text_covers_number_title_and_nested_values_but_not_booleans_or_nulls():
    doc = {"number": "X-1", "title": "Hello World", "data": {"a": {"b": ["Deep", 3]}, "flag": True, "n": None}}
    assert search_text(doc) == "x-1 hello world deep 3"


@pytest.mark.usefixtures("claim")
def test_runner_folds_the_log_into_case_and_timeline_docs(bus, alice, store, documents, runner):
    opened = open_claim(bus, alice, amount=100)
    bus.dispatch(m.MoveCaseToStage(case_id=opened.id, stage="review"), alice)
    runner.catch_up()
    assert runner.position == documents.tracking("embedded") == store.max_position()
    doc = get_case(documents, TENANT, opened.id)
    assert (doc["stage"], doc["version"], doc["position"]) == ("review", 2, store.position_of(UUID(opened.id), 2))
    assert "search" not in doc
    assert [e["version"] for e in case_timeline(documents, TENANT, opened.id)] == [1, 2]
    assert runner.lag() == 0
    assert runner.catch_up() == 0


@pytest.mark.usefixtures("claim")
def test_runner_resumes_from_its_tracking_position(bus, alice, store, documents, runner):
    open_claim(bus, alice)
    runner.catch_up()
    seen = store.max_position()
    second = open_claim(bus, alice)
    assert documents.get("cases", second.id) is None
    resumed = EmbeddedRunner(store, documents, ALL)
    assert resumed.position == seen
    assert resumed.catch_up() > 0
    assert resumed.position == store.max_position()
    assert get_case(documents, TENANT, second.id)["number"] == "CLAIM-000002"


@pytest.mark.usefixtures("claim")
def test_runner_notifies_subscribers_after_the_batch_is_visible(bus, alice, documents, runner):
    opened = open_claim(bus, alice)
    seen: list[tuple[bool, bool]] = []

    def subscriber(batch):  # type: ignore[no-untyped-def]
        has_case = any(str(p.event.aggregate_id) == opened.id for p in batch)
        seen.append((has_case, documents.get("cases", opened.id) is not None))

    def broken(_batch):  # type: ignore[no-untyped-def]
        raise RuntimeError("subscriber bug")

    runner.subscribe(broken)
    runner.subscribe(subscriber)
    runner.catch_up()
    assert seen == [(True, True)]  # one batch, holding the case, delivered after it became visible


@pytest.mark.usefixtures("claim")
def test_small_batches_and_one_batch_build_the_same_read_models(bus, alice, carol, store, documents, runner,
                                                                 tmp_path):
    opened = open_claim(bus, alice)
    comment = bus.dispatch(m.AddComment(case_id=opened.id, body="hi"), carol).extra["comment_id"]
    bus.dispatch(m.EditComment(case_id=opened.id, comment_id=comment, body="hello"), carol)
    bus.dispatch(m.DeleteComment(case_id=opened.id, comment_id=comment), carol)
    bus.dispatch(m.UpdateCaseData(case_id=opened.id, patch={"amount": 3}), alice)
    runner.catch_up()
    other = SqliteDocumentStore(tmp_path / "other.db", ALL)
    try:
        EmbeddedRunner(store, other, ALL, batch_size=1).catch_up()
        assert snapshot(other) == snapshot(documents)
    finally:
        other.close()


@pytest.mark.usefixtures("claim")
def test_folding_a_batch_again_writes_nothing(bus, alice, store, documents):
    opened = open_claim(bus, alice)
    bus.dispatch(m.RetitleCase(case_id=opened.id, title="Again"), alice)
    batch = store.read(0, 100)
    writes = fold_batch(ALL, batch, documents.get_many)
    documents.write(writes, ("embedded", batch[-1].position))
    before = snapshot(documents)
    assert fold_batch(ALL, batch, documents.get_many) == []
    documents.write(writes, ("embedded", batch[-1].position))  # a redelivered write is ignored too
    assert snapshot(documents) == before


def test_older_write_never_replaces_a_newer_document(documents):
    doc_new = {"id": "k", "tenant": TENANT, "key": "q", "name": "new", "description": ""}
    doc_old = {**doc_new, "name": "old"}
    documents.write([Write("queues", "k", doc_new, 10)])
    documents.write([Write("queues", "k", doc_old, 9)])
    documents.write([Write("queues", "k", doc_old, 10)])
    assert documents.get("queues", "k") == (doc_new, 10)


# -- tombstones -----------------------------------------------------------------------------------------------------


def _record_setup(bus, actor):  # type: ignore[no-untyped-def]
    bus.dispatch(m.DefineRecordType(key="country", name="Country", schema={"type": "object"}), actor)
    saved = bus.dispatch(m.SaveRecord(type_key="country", key="fr", data={"iso": "FR"}), actor)
    bus.dispatch(m.SaveRecord(type_key="country", key="de", data={"iso": "DE"}), actor)
    return saved


def test_record_removed_deletes_the_record_doc_and_replay_does_not_resurrect_it(bus, alice, store, documents, runner):
    saved = _record_setup(bus, alice)
    runner.catch_up()
    bus.dispatch(m.RemoveRecord(type_key="country", key="fr", reason="gone"), alice)
    runner.catch_up()
    removed_at = store.position_of(UUID(saved.id), 2)
    assert documents.get("records", saved.id) == (None, removed_at)
    assert [r["key"] for r in list_collection(documents, "records", TENANT)] == ["de"]

    # a runner that lost its tracking replays the whole log: the tombstone keeps the record deleted
    replaying = EmbeddedRunner(store, documents, ALL)
    replaying.position = 0
    replaying.catch_up()
    assert replaying.position == store.max_position()
    assert documents.get("records", saved.id) == (None, removed_at)

    # a redelivered RecordSaved (older position) is ignored
    stale = Write("records", saved.id, {"id": saved.id, "tenant": TENANT, "key": "fr"}, removed_at - 1)
    documents.write([stale])
    assert documents.get("records", saved.id) == (None, removed_at)
    assert [r["key"] for r in list_collection(documents, "records", TENANT)] == ["de"]
    assert documents.count_by("records", TENANT, "type_key", {}) == {"country": 1}


def test_full_rebuild_after_removal_keeps_the_record_deleted(bus, alice, store, documents, runner):
    saved = _record_setup(bus, alice)
    bus.dispatch(m.RemoveRecord(type_key="country", key="fr"), alice)
    runner.catch_up()
    documents.reset()
    EmbeddedRunner(store, documents, ALL).catch_up()
    assert documents.get("records", saved.id) == (None, store.position_of(UUID(saved.id), 2))
    assert [r["key"] for r in list_collection(documents, "records", TENANT)] == ["de"]


def test_saving_a_removed_record_again_brings_it_back(bus, alice, documents, runner):
    saved = _record_setup(bus, alice)
    bus.dispatch(m.RemoveRecord(type_key="country", key="fr"), alice)
    runner.catch_up()
    bus.dispatch(m.SaveRecord(type_key="country", key="fr", data={"iso": "FR", "eu": True}), alice)
    runner.catch_up()
    doc, _pos = documents.get("records", saved.id)
    assert (doc["data"], doc["version"]) == ({"iso": "FR", "eu": True}, 3)


def test_reset_drops_every_read_model_and_tracking(bus, alice, documents, runner):
    _record_setup(bus, alice)
    runner.catch_up()
    documents.reset()
    assert documents.tracking("embedded") == 0
    assert all(rows == [] for rows in snapshot(documents).values())
