"""MongoDB read models stored packed (adapters/mongo_documents.py): what FerretDB sees of a record, and records from
before packing still read."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from adapters.mongo_documents import MongoDocumentStore
from infra.server import Server
from projections.catalog import ALL
from projections.ports import Query, Write
from tests.integration.store.test_document_store_contract import mongo_uri

pytestmark = pytest.mark.integration


@pytest.fixture()
def store(ferretdb_server: Server) -> Iterator[MongoDocumentStore]:
    made = MongoDocumentStore(mongo_uri(ferretdb_server), f"packed_{uuid.uuid4().hex[:12]}", ALL)
    yield made
    made.client.drop_database(made.db.name)
    made.close()


def _case(key: str, comments: int) -> dict[str, object]:
    return {
        "id": key, "tenant": "acme", "number": f"C-{key}", "title": "Water damage", "definition_key": "claim",
        "status": "open", "stage": "intake", "queue": None, "assignee": None, "opened_at": "2026-12-07T10:00:00",
        "updated_at": "2026-12-07T11:00:00", "data": {"a.b": {"$ref": 1}, "nested": [[1, 2], [3]]},
        "comments": [{"id": str(i), "body": f"comment {i}", "history": []} for i in range(comments)],
        "comment_count": comments, "search": "c-1 water damage",
    }


def test_lists_and_sub_documents_reach_the_server_only_packed(store: MongoDocumentStore) -> None:
    doc = _case("k1", 30)
    store.write([Write("cases", "k1", doc, 7)])
    raw = store.db["cases"].find_one({"_id": "k1"})
    assert raw is not None
    assert isinstance(raw["packed"], bytes)
    assert "comments" not in raw["doc"] and "data" not in raw["doc"]
    assert raw["doc"]["title"] == "Water damage"
    found = store.get("cases", "k1")
    assert found == (doc, 7)
    assert list(found[0]) == list(doc)  # key order kept


def test_scalars_without_a_copy_still_filter_sort_and_search(store: MongoDocumentStore) -> None:
    store.write([Write("cases", f"k{i}", {**_case(f"k{i}", i), "title": f"title {9 - i}",
                                          "search": f"c-{i} needle" if i % 2 else f"c-{i}"}, i + 1)
                 for i in range(6)])
    by_title = store.find(Query("cases", "acme", {}, sort="title", descending=False, limit=10))
    assert [d["id"] for d in by_title] == ["k5", "k4", "k3", "k2", "k1", "k0"]
    found = store.find(Query("cases", "acme", {}, text="needle", sort="updated_at", limit=10))
    assert sorted(d["id"] for d in found) == ["k1", "k3", "k5"]
    assert all(len(d["comments"]) == int(d["id"][1:]) for d in found)


def test_a_record_written_before_packing_is_read_as_it_was(store: MongoDocumentStore) -> None:
    store.db["cases"].insert_one({
        "_id": "old", "tenant": "acme", "position": 3, "escaped": True, "f_status": "open",
        "doc": {"id": "old", "tenant": "acme", "status": "open", "data": {"a%2Eb": {"%24ref": 1}},
                "comments": [{"id": "1"}], "updated_at": "2026-12-07T11:00:00"},
    })
    assert store.get("cases", "old") == ({"id": "old", "tenant": "acme", "status": "open", "data": {"a.b": {"$ref": 1}},
                                          "comments": [{"id": "1"}], "updated_at": "2026-12-07T11:00:00"}, 3)
    store.write([Write("cases", "old", _case("old", 1), 4)])  # replaced over its older position: packed now
    assert store.get("cases", "old") == (_case("old", 1), 4)
