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


def _text_index(store: SqliteDocumentStore) -> list[tuple[object, ...]]:
    return [tuple(r) for r in store._writer.execute(
        "SELECT c.key, s.search FROM cases_search s JOIN cases c ON c.rowid = s.rowid ORDER BY c.key")]


def test_the_live_text_index_holds_what_an_index_built_from_the_stored_documents_holds(tmp_path: Path) -> None:
    live = SqliteDocumentStore(tmp_path / "live.sqlite", ALL)
    writes = [
        [Write("cases", "c01", _doc("c01", "water damage lyon"), 1)],  # new documents: indexed with the text given
        [Write("cases", "c02", _doc("c02", "nul\0after the nul"), 2), Write("cases", "c03", _doc("c03", "x"), 3)],
        [Write("cases", "c01", _doc("c01", "water damage paris"), 4)],  # a changed text
        [Write("cases", "c04", _doc("c04", "first"), 5), Write("cases", "c04", _doc("c04", "second"), 6)],
        [Write("cases", "c05", None, 7)],  # a tombstone: no text
        [Write("cases", "c01", _doc("c01", "stale"), 3)],  # below the stored position: changes nothing
    ]
    for batch in writes:
        live.write(batch)
    rebuilt = SqliteDocumentStore(tmp_path / "rebuilt.sqlite", ALL)
    rebuilt.reset(defer_indexes=True)
    for batch in writes:
        rebuilt.write(batch)
    rebuilt.ensure_indexes()
    assert _text_index(live) == _text_index(rebuilt)
    assert [k for k, _ in _text_index(live)] == ["c01", "c02", "c03", "c04"]
    assert _keys(live, "paris") == ["c01"] and _keys(live, "water") == ["c01"] and _keys(live, "second") == ["c04"]
