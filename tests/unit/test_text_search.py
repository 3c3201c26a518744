"""Case-list text search: the trigram index and the plain scan agree, and stale writes do not change the index."""

from __future__ import annotations

from pathlib import Path

from adapters.sqlite_documents import SqliteDocumentStore
from projections.catalog import ALL
from projections.ports import Query, Write


def _doc(key: str, search: str, tenant: str = "acme") -> dict[str, object]:
    return {"id": key, "tenant": tenant, "updated_at": f"2026-01-01T00:00:{key[-2:]}", "search": search}


def _keys(store: SqliteDocumentStore, text: str, tenant: str = "acme") -> list[str]:
    return sorted(d["id"] for d in store.find(Query("cases", tenant, text=text, limit=100)))


def test_indexed_search_matches_substrings_like_the_scan(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path / "v.sqlite", ALL)
    texts = {"c01": "clm-000001 water damage kitchen jansen", "c02": "cmp-000002 late delivery lyon",
             "c03": "onb-000003 acme holding lyonnaise"}
    store.write([Write("cases", k, _doc(k, t), i + 1) for i, (k, t) in enumerate(texts.items())])
    store.write([Write("cases", "x09", _doc("x09", "lyon other tenant", "globex"), 10)])
    assert _keys(store, "lyon") == ["c02", "c03"]  # indexed (3+ plain characters), tenant-filtered
    assert _keys(store, "LYON") == ["c02", "c03"]
    assert _keys(store, "ly") == ["c02", "c03"]  # short: plain scan, same answer
    assert _keys(store, "000001 w") == ["c01"]
    assert _keys(store, "nothing") == []
    assert _keys(store, "%") == []  # literal, not a wildcard


def test_stale_write_leaves_the_text_index_alone_and_deletes_clear_it(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path / "v.sqlite", ALL)
    store.write([Write("cases", "c01", _doc("c01", "fresh words"), 5)])
    store.write([Write("cases", "c01", _doc("c01", "stale words"), 3)])  # older position: refused
    assert _keys(store, "fresh") == ["c01"]
    assert _keys(store, "stale") == []
    store.write([Write("cases", "c01", None, 6)])  # tombstone
    assert _keys(store, "fresh") == []


def test_reset_and_rebuild_keep_search_working(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path / "v.sqlite", ALL)
    store.write([Write("cases", "c01", _doc("c01", "before reset"), 1)])
    store.reset(defer_indexes=True)
    assert _keys(store, "before") == []
    store.write([Write("cases", "c02", _doc("c02", "after reset"), 2)])
    store.ensure_indexes()
    assert _keys(store, "after") == ["c02"]


def test_read_models_from_before_the_index_are_indexed_on_open(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    store = SqliteDocumentStore(path, ALL)
    store.write([Write("cases", "c01", _doc("c01", "older document text"), 1)])
    store._writer.execute("DROP TABLE cases_search")  # as a file written before the index existed
    store.close()
    reopened = SqliteDocumentStore(path, ALL)
    assert _keys(reopened, "older") == ["c01"]
