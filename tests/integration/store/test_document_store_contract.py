"""One contract for the DocumentStore port, run against the SQLite file store and MongoDB (FerretDB v1)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from adapters.event_store import sqlite_event_store
from adapters.mongo_documents import MongoDocumentStore
from adapters.sqlite_documents import SqliteDocumentStore
from commands.bus import Actor, CommandBus
from commands.messages import (
    AddComment,
    AssignCase,
    CloseCase,
    DefineQueue,
    DefineRecordType,
    MoveCaseToStage,
    OpenCase,
    PublishCaseDefinition,
    RemoveRecord,
    RetitleCase,
    SaveRecord,
    StageIn,
    UpdateCaseData,
)
from domain.events import Positioned
from infra.server import Server
from projections import queries
from projections.base import Doc, Projection
from projections.catalog import ALL
from projections.folding import fold_batch
from projections.ports import DocumentStore, In, Query, Write

# small read models of our own, so the contract does not depend on what the real projections store
ITEMS = Projection("items", {}, indexes=("status", "owner"), order="updated_at")
NOTES = Projection("notes", {}, indexes=("case_id",), order="at")
TEST_PROJECTIONS = (ITEMS, NOTES)

MakeStore = Callable[[Sequence[Projection]], DocumentStore]


def item(key: str, tenant: str = "acme", **fields: Any) -> Doc:
    return {"id": key, "tenant": tenant, "updated_at": "2026-01-01T00:00:00", **fields}


def put(store: DocumentStore, position: int, doc: Doc, collection: str = "items") -> None:
    store.write([Write(collection, doc["id"], doc, position)])


def keys(docs: Sequence[Doc]) -> list[str]:
    return [d["id"] for d in docs]


# --------------------------------------------------------------------------------------------------
# a small real event log (two tenants, every read model touched, a tombstone, awkward data keys)

ACME = Actor("alice", "acme", ("caseworker", "supervisor"))
GLOBEX = Actor("gina", "globex", ("caseworker",))
AWKWARD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["amount"],
    "properties": {"amount": {"type": "number"}, "a.b": {"type": "number"}, "$x": {"type": "object"}},
}


def _build_log(path: Path) -> list[Positioned]:
    store = sqlite_event_store(path)
    try:
        bus = CommandBus(store)
        for actor in (ACME, GLOBEX):
            bus.dispatch(PublishCaseDefinition(
                key="claim", name="Claim", schema=AWKWARD_SCHEMA, queues=["intake"],
                stages=[StageIn(key="new", transitions=["review"]), StageIn(key="review", transitions=["done"]),
                        StageIn(key="done")],
                card_fields=["amount"],
            ), actor)
            bus.dispatch(DefineQueue(key="intake", name="Intake"), actor)
            bus.dispatch(DefineRecordType(key="vendor", name="Vendor", schema={"type": "object"}), actor)
            bus.dispatch(SaveRecord(type_key="vendor", key="v1", data={"name": "Glazier", "x.y": [[1, 2], []]}),
                         actor)
            bus.dispatch(SaveRecord(type_key="vendor", key="v2", data={"name": "Gone"}), actor)
            bus.dispatch(RemoveRecord(type_key="vendor", key="v2", reason="duplicate"), actor)
            for i in range(6):
                data = {"amount": 100 + i, "a.b": i, "$x": {"y.z": f"deep {i}", "%25": "percent"},
                        "grid": [[i, i + 1], ["x"]]}
                case = uuid.UUID(bus.dispatch(OpenCase(definition_key="claim", title=f"Window {i}", data=data),
                                              actor).id)
                if i % 2:
                    bus.dispatch(AssignCase(case_id=case, assignee="bob"), actor)
                if i % 3 == 0:
                    bus.dispatch(MoveCaseToStage(case_id=case, stage="review"), actor)
                bus.dispatch(AddComment(case_id=case, body=f"Looked at {i}"), actor)
                bus.dispatch(UpdateCaseData(case_id=case, patch={"a.b": None, "$x": {"n": i}}), actor)
                if i == 4:
                    bus.dispatch(RetitleCase(case_id=case, title="Roof 100% gone_now"), actor)
                    bus.dispatch(CloseCase(case_id=case, reason="paid"), actor)
        types = frozenset(t.type_name() for p in ALL for t in p.folds)
        batch, _last = store.read_batch(0, 100_000, types)
        return batch
    finally:
        store.close()


@pytest.fixture(scope="module")
def event_log(tmp_path_factory: pytest.TempPathFactory) -> list[Positioned]:
    return _build_log(tmp_path_factory.mktemp("log") / "events.db")


def fold_into(store: DocumentStore, log: Sequence[Positioned], batch_size: int = 7) -> None:
    """What a runner does: fold the log batch by batch into the store with its tracking position."""
    for start in range(0, len(log), batch_size):
        batch = log[start : start + batch_size]
        store.write(fold_batch(ALL, batch, store.get_many), ("contract", batch[-1].position))


def reference_fold(log: Sequence[Positioned]) -> dict[tuple[str, str], tuple[Doc | None, int]]:
    """The same log folded into a plain dict: what every store must end up holding."""
    state: dict[tuple[str, str], tuple[Doc | None, int]] = {}

    def load_many(collection: str, wanted: Sequence[str]) -> dict[str, tuple[Doc | None, int]]:
        return {k: state[(collection, k)] for k in wanted if (collection, k) in state}

    for start in range(0, len(log), 7):
        for w in fold_batch(ALL, log[start : start + 7], load_many):
            state[(w.collection, w.key)] = (w.doc, w.position)
    return state


def stored(store: DocumentStore, keys_by_collection: dict[str, list[str]]) -> dict[tuple[str, str], Any]:
    return {
        (collection, key): value
        for collection, wanted in keys_by_collection.items()
        for key, value in store.get_many(collection, wanted).items()
    }


def views(store: DocumentStore) -> dict[str, Any]:
    """What the API's queries answer from a store, for both tenants."""
    out: dict[str, Any] = {}
    for tenant in ("acme", "globex"):
        out[f"{tenant}/list"] = queries.list_cases(store, tenant, limit=4).items
        out[f"{tenant}/search"] = queries.list_cases(store, tenant, text="100% GONE_").items
        out[f"{tenant}/by-title"] = queries.list_cases(store, tenant, sort="title", descending=False).items
        out[f"{tenant}/assigned"] = queries.list_cases(store, tenant, filters={"assignee": "bob"}).items
        out[f"{tenant}/kanban"] = queries.kanban(store, tenant, "claim")
        out[f"{tenant}/counts"] = queries.case_counts(store, tenant)
        out[f"{tenant}/records"] = queries.list_collection(store, "records", tenant, type_key="vendor")
        first = out[f"{tenant}/list"][0]["id"]
        out[f"{tenant}/timeline"] = queries.case_timeline(store, tenant, first)
    return out


# --------------------------------------------------------------------------------------------------


class DocumentStoreContract:
    """Behaviour every DocumentStore must have."""

    @pytest.fixture()
    def make_store(self) -> Iterator[MakeStore]:
        raise NotImplementedError

    @pytest.fixture()
    def documents(self, make_store: MakeStore) -> DocumentStore:
        return make_store(TEST_PROJECTIONS)

    # get / get_many / write -------------------------------------------------------------------------

    def test_never_written_key_is_absent(self, documents: DocumentStore) -> None:
        assert documents.get("items", "nope") is None
        assert documents.get_many("items", ["nope"]) == {}

    def test_written_document_reads_back_with_its_position(self, documents: DocumentStore) -> None:
        doc = item("a", title="Ünïcode ✓", amount=12.5, count=3, flag=True, none=None,
                   nested={"list": [1, "two", {"three": 3}], "empty": {}})
        put(documents, 7, doc)
        assert documents.get("items", "a") == (doc, 7)
        assert documents.get("notes", "a") is None  # collections are separate

    def test_get_many_returns_written_and_deleted_keys_and_omits_unknown(self, documents: DocumentStore) -> None:
        docs = [item(f"k{i}") for i in range(3)]
        documents.write([Write("items", d["id"], d, i + 1) for i, d in enumerate(docs)])
        documents.write([Write("items", "k1", None, 10)])
        found = documents.get_many("items", ["k0", "k1", "k2", "unknown"])
        assert found == {"k0": (docs[0], 1), "k1": (None, 10), "k2": (docs[2], 3)}

    def test_get_many_reads_more_keys_than_one_chunk(self, documents: DocumentStore) -> None:
        documents.write([Write("items", f"k{i:04}", item(f"k{i:04}"), i + 1) for i in range(1200)])
        found = documents.get_many("items", [f"k{i:04}" for i in range(1300)])
        assert len(found) == 1200
        assert found["k1199"] == (item("k1199"), 1200)

    def test_large_write_over_existing_documents(self, documents: DocumentStore) -> None:
        # more statements than FerretDB's backend pool holds connections (see MongoDocumentStore)
        documents.write([Write("items", f"k{i:03}", item(f"k{i:03}", v=1), i + 1) for i in range(120)])
        documents.write([Write("items", f"k{i:03}", item(f"k{i:03}", v=2), 1000 + i) for i in range(120)])
        assert documents.get_many("items", ["k000", "k119"]) == {
            "k000": (item("k000", v=2), 1000), "k119": (item("k119", v=2), 1119),
        }

    def test_keys_with_dots_dollars_and_percents_round_trip(self, documents: DocumentStore) -> None:
        data = {
            "a.b": 1, "$x": {"y.z": [1, {"$ref": "#/q"}]}, "100%": "p", "%2E": "literal", "%list": "not a list",
            "%": "lone", "": "empty key", "grid": [[1, 2], [[3]], [], [{"k.k": [4]}]], "nul\x00key": 0,
        }
        doc = item("odd", data=data, status="open")
        put(documents, 3, doc)
        assert documents.get("items", "odd") == (doc, 3)
        assert documents.get_many("items", ["odd"]) == {"odd": (doc, 3)}
        assert documents.find(Query("items", "acme", {"status": "open"})) == [doc]

    def test_newer_write_replaces_the_whole_document(self, documents: DocumentStore) -> None:
        put(documents, 1, item("a", status="open", owner="bob", extra=1))
        put(documents, 2, item("a", status="closed"))
        assert documents.get("items", "a") == (item("a", status="closed"), 2)
        assert documents.find(Query("items", "acme", {"status": "open"})) == []
        assert documents.find(Query("items", "acme", {"owner": "bob"})) == []
        assert keys(documents.find(Query("items", "acme", {"owner": None}))) == ["a"]

    def test_stale_or_repeated_write_is_refused(self, documents: DocumentStore) -> None:
        put(documents, 5, item("a", status="current"))
        put(documents, 4, item("a", status="older"))
        put(documents, 5, item("a", status="same position"))
        assert documents.get("items", "a") == (item("a", status="current"), 5)
        assert keys(documents.find(Query("items", "acme", {"status": "current"}))) == ["a"]

    def test_tombstone_keeps_its_position_and_refuses_older_writes(self, documents: DocumentStore) -> None:
        put(documents, 1, item("a", status="open"))
        documents.write([Write("items", "a", None, 3)])
        put(documents, 2, item("a", status="resurrected"))
        assert documents.get("items", "a") == (None, 3)
        assert documents.find(Query("items", "acme")) == []
        assert documents.count_by("items", "acme", "status", {}) == {}
        put(documents, 4, item("a", status="reopened"))
        assert documents.get("items", "a") == (item("a", status="reopened"), 4)

    def test_tombstone_of_a_key_never_written(self, documents: DocumentStore) -> None:
        documents.write([Write("items", "ghost", None, 9)])
        put(documents, 8, item("ghost"))
        assert documents.get("items", "ghost") == (None, 9)

    def test_same_key_twice_in_one_write_keeps_the_later_position(self, documents: DocumentStore) -> None:
        documents.write([Write("items", "a", item("a", v=1), 1), Write("items", "a", item("a", v=2), 2)])
        documents.write([Write("items", "b", item("b", v=2), 2), Write("items", "b", item("b", v=1), 1)])
        put(documents, 3, item("c", v=3))
        documents.write([Write("items", "c", item("c", v=4), 4), Write("items", "c", item("c", v=5), 5)])
        assert documents.get("items", "a") == (item("a", v=2), 2)
        assert documents.get("items", "b") == (item("b", v=2), 2)
        assert documents.get("items", "c") == (item("c", v=5), 5)

    def test_write_spans_collections(self, documents: DocumentStore) -> None:
        note = {"id": "n1", "tenant": "acme", "case_id": "a", "at": "2026-01-01T00:00:00"}
        documents.write([Write("items", "a", item("a"), 1), Write("notes", "n1", note, 1)], ("runner", 1))
        assert documents.get("notes", "n1") == (note, 1)
        assert documents.find(Query("notes", "acme", {"case_id": "a"}, sort="at")) == [note]
        assert documents.tracking("runner") == 1

    def test_unknown_collection_is_refused(self, documents: DocumentStore) -> None:
        with pytest.raises(KeyError):
            documents.get("nope", "a")
        with pytest.raises(KeyError):
            documents.write([Write("nope", "a", item("a"), 1)])
        with pytest.raises(KeyError):
            documents.find(Query("nope", "acme"))

    def test_bad_field_names_are_refused(self, documents: DocumentStore) -> None:
        put(documents, 1, item("a"))
        for bad in ("a.b", "$where", "x; DROP TABLE items", "Upper"):
            with pytest.raises(ValueError):
                documents.find(Query("items", "acme", {bad: 1}))
            with pytest.raises(ValueError):
                documents.find(Query("items", "acme", sort=bad))

    # tracking ---------------------------------------------------------------------------------------

    def test_tracking_starts_at_zero_and_only_moves_forward(self, documents: DocumentStore) -> None:
        assert documents.tracking("runner") == 0
        documents.write([], ("runner", 5))
        documents.write([Write("items", "a", item("a"), 6)], ("runner", 6))
        documents.write([], ("runner", 4))
        documents.write([], ("other", 2))
        assert documents.tracking("runner") == 6
        assert documents.tracking("other") == 2

    # find -------------------------------------------------------------------------------------------

    def test_find_filters_by_equality_and_none(self, documents: DocumentStore) -> None:
        put(documents, 1, item("a", status="open", owner="bob", kind="x"))
        put(documents, 2, item("b", status="open", owner=None, kind="y"))
        put(documents, 3, item("c", status="open", kind="x"))  # owner missing: same as None
        put(documents, 4, item("d", status="closed", owner="bob", kind="x"))
        find = documents.find

        def found(**filters: Any) -> list[str]:
            return sorted(keys(find(Query("items", "acme", filters))))

        assert found(status="open") == ["a", "b", "c"]
        assert found(status="open", owner="bob") == ["a"]
        assert found(owner=None) == ["b", "c"]
        assert found(kind="x") == ["a", "c", "d"]  # not an indexed field
        assert found(kind="x", status="closed") == ["d"]
        assert found(status="nope") == []
        assert found() == ["a", "b", "c", "d"]

    def test_in_filter_matches_any_of_its_values_and_nothing_when_empty(self, documents: DocumentStore) -> None:
        put(documents, 1, item("a", status="open", owner="bob", kind="x"))
        put(documents, 2, item("b", status="closed", owner="ann", kind="y"))
        put(documents, 3, item("c", status="open", kind="z"))
        put(documents, 4, item("d", tenant="globex", status="open", owner="bob", kind="x"))

        def found(**filters: Any) -> list[str]:
            return sorted(keys(documents.find(Query("items", "acme", filters))))

        assert found(owner=In(("bob", "ann"))) == ["a", "b"]
        assert found(owner=In(("bob",))) == ["a"]
        assert found(owner=In(())) == []
        assert found(kind=In(("x", "z")), status="open") == ["a", "c"]  # not an indexed field
        assert found(owner=In(("carl",))) == []
        assert documents.count_by("items", "acme", "status", {"owner": In(("bob", "ann"))}) == {"open": 1, "closed": 1}
        assert documents.count_by("items", "acme", "status", {"owner": In(())}) == {}
        assert keys(documents.find(Query("items", "acme", {"owner": In(("ann",))}, text="nothing"))) == []

    def test_find_filters_numbers(self, documents: DocumentStore) -> None:
        put(documents, 1, item("a", rank=1))
        put(documents, 2, item("b", rank=2.5))
        assert keys(documents.find(Query("items", "acme", {"rank": 1}))) == ["a"]
        assert keys(documents.find(Query("items", "acme", {"rank": 2.5}))) == ["b"]

    def test_text_search_is_a_case_insensitive_literal_substring(self, documents: DocumentStore) -> None:
        texts = {
            "pct": "paid 100% now", "under": "file a_b here", "plain": "abc here", "dot": "x.y (z) [q] ^$ |+*?",
            "slash": "back\\slash", "uni": "straße über",
        }
        for i, (key, text) in enumerate(texts.items(), start=1):
            put(documents, i, item(key, search=text))
        put(documents, 10, item("nosearch"))

        def search(text: str) -> list[str]:
            return sorted(keys(documents.find(Query("items", "acme", text=text))))

        assert search("%") == ["pct"]
        assert search("100%") == ["pct"]
        assert search("_") == ["under"]
        assert search("A_B") == ["under"]
        assert search("HERE") == ["plain", "under"]
        assert search(".") == ["dot"]
        assert search("(z) [q] ^$ |+*?") == ["dot"]
        assert search("\\") == ["slash"]
        assert search("ÜBER") == ["uni"]
        assert search("a%c") == []
        assert search("a_c") == []
        assert search("nothing like it") == []
        assert len(search("")) == len(texts) + 1  # empty text: no search

    def test_text_search_combines_with_filters(self, documents: DocumentStore) -> None:
        put(documents, 1, item("a", status="open", search="window"))
        put(documents, 2, item("b", status="closed", search="window"))
        assert keys(documents.find(Query("items", "acme", {"status": "closed"}, text="wind"))) == ["b"]

    def test_sort_ascending_and_descending(self, documents: DocumentStore) -> None:
        put(documents, 3, item("a", updated_at="2026-01-02", title="b", rank=10))
        put(documents, 1, item("b", updated_at="2026-01-03", title="c", rank=2))
        put(documents, 2, item("c", updated_at="2026-01-01", title="a", rank=2.5))

        def order(sort: str, descending: bool) -> list[str]:
            return keys(documents.find(Query("items", "acme", sort=sort, descending=descending)))

        assert order("updated_at", True) == ["b", "a", "c"]
        assert order("updated_at", False) == ["c", "a", "b"]
        assert order("title", False) == ["c", "a", "b"]  # not a copied field
        assert order("rank", False) == ["b", "c", "a"]  # numbers sort as numbers
        assert order("position", False) == ["b", "c", "a"]
        assert order("position", True) == ["a", "c", "b"]

    def test_find_positioned_gives_each_document_its_position(self, documents: DocumentStore) -> None:
        put(documents, 4, item("a", updated_at="1"))
        put(documents, 9, item("b", updated_at="2"))
        found = documents.find_positioned(Query("items", "acme", sort="updated_at", descending=False))
        assert found == [(4, item("a", updated_at="1")), (9, item("b", updated_at="2"))]

    @pytest.mark.parametrize("sort", ["updated_at", "rank", "position", "owner"])
    @pytest.mark.parametrize("descending", [False, True])
    def test_keyset_paging_with_ties_has_no_duplicates_or_gaps(
        self, documents: DocumentStore, sort: str, descending: bool,
    ) -> None:
        # 23 documents, many sharing a sort value; keys written out of order
        order = [17, 3, 22, 8, 0, 12, 19, 5, 1, 14, 9, 21, 6, 2, 16, 11, 4, 20, 13, 7, 18, 10, 15]
        for position, i in enumerate(order, start=1):
            put(documents, position, item(f"k{i:02}", updated_at=f"2026-01-0{i % 4 + 1}", rank=i % 3,
                                          owner=["ann", "bob"][i % 2], status="open"))
        put(documents, 100, item("other-status", status="closed"))
        base = Query("items", "acme", {"status": "open"}, sort=sort, descending=descending, limit=1000)
        everything = documents.find_positioned(base)
        assert len(everything) == 23
        paged: list[str] = []
        after = None
        for _ in range(10):
            page = documents.find_positioned(
                Query("items", "acme", {"status": "open"}, sort=sort, descending=descending, limit=5, after=after)
            )
            if not page:
                break
            paged += keys([d for _, d in page])
            position, last = page[-1]
            after = (position if sort == "position" else last[sort], last["id"])
        assert paged == keys([d for _, d in everything])
        values = [p if sort == "position" else d[sort] for p, d in everything]
        assert values == sorted(values, reverse=descending)

    @pytest.mark.parametrize("descending", [False, True])
    def test_keyset_paging_through_null_sort_values(self, documents: DocumentStore, descending: bool) -> None:
        for position, (key, owner) in enumerate([("a", None), ("b", "ann"), ("c", None), ("d", "bob"), ("e", None)]):
            doc = item(key, owner=owner)
            if key == "e":
                del doc["owner"]  # missing sorts like null
            put(documents, position + 1, doc)
        everything = keys(documents.find(Query("items", "acme", sort="owner", descending=descending)))
        paged: list[str] = []
        after = None
        while page := documents.find(Query("items", "acme", sort="owner", descending=descending, limit=2, after=after)):
            paged += keys(page)
            after = (page[-1].get("owner"), page[-1]["id"])
        assert paged == everything
        assert everything == (["d", "b", "e", "c", "a"] if descending else ["a", "c", "e", "b", "d"])

    def test_min_position_keeps_only_later_documents(self, documents: DocumentStore) -> None:
        for i in range(1, 6):
            put(documents, i, item(f"k{i}", updated_at=str(i)))
        later = documents.find(Query("items", "acme", sort="updated_at", descending=False, min_position=3))
        assert keys(later) == ["k4", "k5"]

    def test_limit(self, documents: DocumentStore) -> None:
        for i in range(1, 6):
            put(documents, i, item(f"k{i}", updated_at=str(i)))
        assert keys(documents.find(Query("items", "acme", limit=2))) == ["k5", "k4"]

    # count_by ---------------------------------------------------------------------------------------

    def test_count_by_groups_values_with_missing_as_empty(self, documents: DocumentStore) -> None:
        put(documents, 1, item("a", status="open", owner="bob", kind="x", rank=1))
        put(documents, 2, item("b", status="open", owner="ann", kind="x", rank=1))
        put(documents, 3, item("c", status="open", kind="y", rank=2))
        put(documents, 4, item("d", status="closed", owner="bob", kind="y"))
        put(documents, 5, item("e", tenant="globex", status="open", owner="bob"))
        assert documents.count_by("items", "acme", "status", {}) == {"open": 3, "closed": 1}
        assert documents.count_by("items", "acme", "owner", {"status": "open"}) == {"bob": 1, "ann": 1, "": 1}
        assert documents.count_by("items", "acme", "kind", {"owner": "bob"}) == {"x": 1, "y": 1}  # not indexed
        assert documents.count_by("items", "acme", "rank", {}) == {"1": 2, "2": 1, "": 1}
        assert documents.count_by("items", "acme", "status", {"status": "nope"}) == {}

    # reset ------------------------------------------------------------------------------------------

    def test_reset_drops_documents_tombstones_and_tracking(self, documents: DocumentStore) -> None:
        put(documents, 1, item("a", status="open"))
        documents.write([Write("items", "b", None, 2)], ("runner", 2))
        documents.reset()
        assert documents.get("items", "a") is None
        assert documents.get("items", "b") is None
        assert documents.tracking("runner") == 0
        assert documents.find(Query("items", "acme")) == []
        put(documents, 1, item("a", status="open"))  # a rebuild starts from position 1 again
        assert keys(documents.find(Query("items", "acme", {"status": "open"}))) == ["a"]

    # tenancy ----------------------------------------------------------------------------------------

    def test_queries_never_cross_tenants(self, documents: DocumentStore) -> None:
        put(documents, 1, item("a", status="open", search="shared words"))
        put(documents, 2, item("b", tenant="globex", status="open", search="shared words"))
        for tenant, key in (("acme", "a"), ("globex", "b")):
            assert keys(documents.find(Query("items", tenant))) == [key]
            assert keys(documents.find(Query("items", tenant, {"status": "open"}, text="shared"))) == [key]
            assert keys(documents.find(Query("items", tenant, sort="position", after=(99, "zzz")))) == [key]
            assert documents.count_by("items", tenant, "status", {}) == {"open": 1}
        assert documents.find(Query("items", "initech")) == []

    # a real event log -------------------------------------------------------------------------------

    def test_folded_event_log_gives_the_reference_documents_and_replays_safely(
        self, make_store: MakeStore, event_log: list[Positioned],
    ) -> None:
        store = make_store(ALL)
        fold_into(store, event_log)
        expected = reference_fold(event_log)
        wanted: dict[str, list[str]] = {}
        for collection, key in expected:
            wanted.setdefault(collection, []).append(key)
        assert stored(store, wanted) == expected
        assert any(doc is None for doc, _ in expected.values())  # a removed record left a tombstone
        assert store.tracking("contract") == event_log[-1].position
        before = views(store)
        fold_into(store, event_log, batch_size=5)  # a crash before tracking was written: the log replays
        assert stored(store, wanted) == expected
        assert views(store) == before


class TestSqliteDocumentStore(DocumentStoreContract):
    @pytest.fixture()
    def make_store(self, tmp_path: Path) -> Iterator[MakeStore]:
        made: list[SqliteDocumentStore] = []

        def make(projections: Sequence[Projection]) -> DocumentStore:
            made.append(SqliteDocumentStore(tmp_path / f"views{len(made)}.db", projections))
            return made[-1]

        yield make
        for store in made:
            store.close()


@pytest.mark.integration
class TestMongoDocumentStore(DocumentStoreContract):
    @pytest.fixture()
    def make_store(self, ferretdb_server: Server) -> Iterator[MakeStore]:
        made: list[MongoDocumentStore] = []

        def make(projections: Sequence[Projection]) -> DocumentStore:
            made.append(MongoDocumentStore(mongo_uri(ferretdb_server), f"contract_{uuid.uuid4().hex[:12]}",
                                           projections))
            return made[-1]

        yield make
        for store in made:
            store.client.drop_database(store.db.name)
            store.close()


def mongo_uri(server: Server) -> str:
    """The server's URI with timeouts, so that a stuck server fails the test instead of hanging it."""
    return f"{server.info()['uri']}?serverSelectionTimeoutMS=10000&socketTimeoutMS=60000"


@pytest.mark.integration
def test_sqlite_and_mongo_hold_the_same_read_models(
    event_log: list[Positioned], tmp_path: Path, ferretdb_server: Server,
) -> None:
    sqlite = SqliteDocumentStore(tmp_path / "views.db", ALL)
    mongo = MongoDocumentStore(mongo_uri(ferretdb_server), f"contract_{uuid.uuid4().hex[:12]}", ALL)
    try:
        fold_into(sqlite, event_log, batch_size=11)
        fold_into(mongo, event_log, batch_size=3)
        wanted: dict[str, list[str]] = {}
        for collection, key in reference_fold(event_log):
            wanted.setdefault(collection, []).append(key)
        assert stored(mongo, wanted) == stored(sqlite, wanted)
        assert views(mongo) == views(sqlite)
    finally:
        sqlite.close()
        mongo.client.drop_database(mongo.db.name)
        mongo.close()
