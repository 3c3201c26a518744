"""The SQLite read models keep each indexed field in a column: it holds what json_extract reads from the stored
document, the queries use its index, and a file from before the columns gets them when it is opened."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.sqlite_documents import SqliteDocumentStore
from projections.base import Projection
from projections.ports import Query, Write

ITEMS = Projection("items", {}, indexes=("status", "value"), order="updated_at")

# what orjson stores (64-bit integers, unsigned ones past the signed range too); no NUL in texts: SQLite's
# json_extract ends a text at a NUL ("a\x00b" reads as "a") while the column keeps it whole, so for such a text the
# column is the right one and json_extract is not a reference
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(st.characters(exclude_characters="\x00"),
                                                                 max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(json_values, min_size=1, max_size=6))
def test_a_column_holds_what_json_extract_reads_from_the_document(tmp_path_factory: Any, values: list[Any]) -> None:
    store = SqliteDocumentStore(tmp_path_factory.mktemp("columns") / "v.db", [ITEMS])
    try:
        writes = [Write("items", f"k{i}", {"id": f"k{i}", "tenant": "acme", "updated_at": "t", "value": v}, i + 1)
                  for i, v in enumerate(values)]
        store.write(writes[: len(writes) // 2])
        store.bulk_write({"items": {w.key: (w.doc, w.position) for w in writes[len(writes) // 2 :]}})
        rows = store._writer.execute("SELECT f_value, json_extract(doc, '$.value') FROM items").fetchall()
        assert len(rows) == len(values)
        for column, extracted in rows:
            assert (type(column), column) == (type(extracted), extracted)
    finally:
        store.close()


def _old_file(path: Path) -> None:
    """A read-model file as stores before the columns wrote it: expression indexes, no f_ columns."""
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE tracking (name TEXT PRIMARY KEY, position INTEGER NOT NULL);
        CREATE TABLE items (key TEXT PRIMARY KEY, tenant TEXT, position INTEGER NOT NULL, doc TEXT);
        CREATE INDEX ix_items_order ON items (tenant, json_extract(doc, '$.updated_at'));
        CREATE INDEX ix_items_position ON items (position);
        CREATE INDEX ix_items_status ON items
          (tenant, json_extract(doc, '$.status'), json_extract(doc, '$.updated_at'));
        INSERT INTO items VALUES
          ('a', 'acme', 1, '{"id":"a","tenant":"acme","updated_at":"2026-01-03","status":"open","value":7}'),
          ('b', 'acme', 2, '{"id":"b","tenant":"acme","updated_at":"2026-01-01","status":"closed","value":null}'),
          ('c', 'acme', 3, '{"id":"c","tenant":"acme","updated_at":"2026-01-02","status":"open"}'),
          ('d', NULL, 4, NULL);
        INSERT INTO tracking VALUES ('embedded', 4);
        """
    )
    conn.commit()
    conn.close()


def test_a_file_from_before_the_columns_gets_them_filled_and_indexed(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_file(path)
    store = SqliteDocumentStore(path, [ITEMS])
    try:
        rows = store._writer.execute(
            "SELECT key, f_status, f_value, f_updated_at FROM items ORDER BY key"
        ).fetchall()
        assert rows == [("a", "open", 7, "2026-01-03"), ("b", "closed", None, "2026-01-01"),
                        ("c", "open", None, "2026-01-02"), ("d", None, None, None)]
        indexes = dict(store._writer.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ))
        assert set(indexes) == {"ix_items_order", "ix_items_position", "ix_items_status", "ix_items_value"}
        assert not any("json_extract" in sql for sql in indexes.values())
        found = store.find(Query("items", "acme", {"status": "open"}, sort="updated_at", descending=True))
        assert [d["id"] for d in found] == ["a", "c"]
        assert store.count_by("items", "acme", "status", {}) == {"open": 2, "closed": 1}
        assert store.tracking("embedded") == 4
        store.write([Write("items", "c", {"id": "c", "tenant": "acme", "updated_at": "2026-01-04",
                                          "status": "closed"}, 5)])
        found = store.find(Query("items", "acme", {"status": "closed"}, sort="updated_at", descending=True))
        assert [d["id"] for d in found] == ["c", "b"]
    finally:
        store.close()
    reopened = SqliteDocumentStore(path, [ITEMS])  # a second open finds the columns and changes nothing
    try:
        assert reopened._writer.execute("SELECT key, f_status FROM items ORDER BY key").fetchall() == [
            ("a", "open"), ("b", "closed"), ("c", "closed"), ("d", None)]
    finally:
        reopened.close()


def test_list_queries_search_the_column_indexes(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path / "v.db", [ITEMS])
    try:
        store.write([Write("items", f"k{i}", {"id": f"k{i}", "tenant": "acme", "updated_at": f"2026-01-{i:02}",
                                              "status": ("open", "closed")[i % 2]}, i) for i in range(1, 30)])
        issued: list[str] = []
        conn = store._reader()
        conn.set_trace_callback(issued.append)
        try:
            found = store.find(Query("items", "acme", {"status": "open"}, sort="updated_at", descending=True))
            unfiltered = store.find(Query("items", "acme", {}, sort="updated_at", descending=True, limit=3))
        finally:
            conn.set_trace_callback(None)
        assert [d["id"] for d in found] == [f"k{i}" for i in range(28, 0, -2)]
        assert [d["id"] for d in unfiltered] == ["k29", "k28", "k27"]
        plans = [" / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)) for sql in issued]
        assert "USING INDEX ix_items_status (tenant=? AND f_status=?)" in plans[0]
        assert "USING INDEX ix_items_order (tenant=?)" in plans[1]
    finally:
        store.close()


def test_a_store_opening_an_old_file_while_another_process_migrates_it_adds_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_file(path)
    other = sqlite3.connect(path, isolation_level=None, timeout=30)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("BEGIN IMMEDIATE")  # the other process is migrating: columns added, not committed yet
    for column in ("f_status", "f_value", "f_updated_at"):
        other.execute(f"ALTER TABLE items ADD COLUMN {column}")
    other.execute("UPDATE items SET f_status = json_extract(doc, '$.status'), f_value = json_extract(doc, '$.value'), "
                  "f_updated_at = json_extract(doc, '$.updated_at') WHERE doc IS NOT NULL")
    opened: list[SqliteDocumentStore] = []
    failed: list[BaseException] = []

    def open_store() -> None:
        try:
            opened.append(SqliteDocumentStore(path, [ITEMS]))
        except BaseException as error:  # handed to the test thread
            failed.append(error)

    thread = threading.Thread(target=open_store)
    thread.start()
    time.sleep(0.5)  # it has seen the columns missing and waits for the write lock
    other.execute("COMMIT")
    other.close()
    thread.join(timeout=30)
    assert failed == [] and len(opened) == 1
    store = opened[0]
    try:
        columns = [row[1] for row in store._writer.execute("PRAGMA table_info(items)")]
        assert columns == ["key", "tenant", "position", "doc", "f_status", "f_value", "f_updated_at"]
        assert store.count_by("items", "acme", "status", {}) == {"open": 2, "closed": 1}
    finally:
        store.close()
