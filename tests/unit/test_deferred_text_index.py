"""A rebuild defers the trigram text index: searches still answer (by scan) and the index is built at the end."""

from __future__ import annotations

from pathlib import Path

from adapters.sqlite_documents import SqliteDocumentStore
from projections.catalog import ALL
from projections.ports import Query, Write


def _doc(key: str, search: str) -> dict[str, object]:
    return {"id": key, "tenant": "acme", "updated_at": f"2026-01-01T00:00:{key[-2:]}", "search": search}


def _keys(store: SqliteDocumentStore, text: str) -> list[str]:
    return sorted(d["id"] for d in store.find(Query("cases", "acme", text=text, limit=100)))


def _indexed_rows(store: SqliteDocumentStore) -> int:
    return int(store._writer.execute("SELECT COUNT(*) FROM cases_search").fetchone()[0])


def test_search_during_a_deferred_rebuild_scans_and_the_index_is_filled_at_the_end(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path / "v.sqlite", ALL)
    store.reset(defer_indexes=True)
    assert store._writer.execute("SELECT 1 FROM sqlite_master WHERE name = 'cases_search'").fetchone() is None
    store.write([Write("cases", "c01", _doc("c01", "water damage lyon"), 1)])
    store.write([Write("cases", "c01", _doc("c01", "water damage paris"), 2)])
    store.write([Write("cases", "c02", _doc("c02", "late delivery lyon"), 3)])
    assert _keys(store, "lyon") == ["c02"]  # no index yet: answered by the scan
    store.ensure_indexes()
    assert _indexed_rows(store) == 2  # one row per stored document, from what is stored now
    assert _keys(store, "paris") == ["c01"]
    store.write([Write("cases", "c02", _doc("c02", "late delivery nantes"), 4)])  # maintained again after it
    assert _keys(store, "nantes") == ["c02"]
    assert _keys(store, "lyon") == []


def test_a_store_opened_during_an_unfinished_rebuild_builds_the_index(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    store = SqliteDocumentStore(path, ALL)
    store.reset(defer_indexes=True)
    store.write([Write("cases", "c01", _doc("c01", "written mid rebuild"), 1)])
    store.close()  # the rebuild stopped before ensure_indexes (a crash)
    reopened = SqliteDocumentStore(path, ALL)
    assert _indexed_rows(reopened) == 1
    assert _keys(reopened, "mid rebuild") == ["c01"]


def test_updates_that_keep_the_search_text_leave_the_index_right(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path / "v.sqlite", ALL)
    store.write([Write("cases", "c01", _doc("c01", "water damage lyon"), 1)])
    store.write([Write("cases", "c01", {**_doc("c01", "water damage lyon"), "assignee": "carol"}, 2)])
    assert _keys(store, "damage") == ["c01"] and _indexed_rows(store) == 1
    store.write([Write("cases", "c01", _doc("c01", "water damage paris"), 3),
                 Write("cases", "c02", _doc("c02", "paris too"), 4)])
    assert _keys(store, "lyon") == [] and _keys(store, "paris") == ["c01", "c02"]
    # two writes of one key in one call: the index follows the one that is stored
    store.write([Write("cases", "c02", _doc("c02", "nantes now"), 6),
                 Write("cases", "c02", _doc("c02", "paris too"), 5)])
    assert _keys(store, "nantes") == ["c02"] and _keys(store, "paris") == ["c01"]
    store.write([Write("cases", "c01", None, 7)])
    assert _keys(store, "paris") == [] and _indexed_rows(store) == 1
