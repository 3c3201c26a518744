"""Read models in SQLite: one table per collection, documents as JSON with their position.

A document is written together with the position of the event that produced it and the runner's
tracking position, in one transaction. Deleted documents stay as tombstones (doc NULL) so a replayed
event cannot bring them back.

The fields a projection indexes (its `indexes` and `order`) are also stored as plain columns `f_<field>`, filled
from the document when it is written, and the indexes and queries use those columns: an index on
`json_extract(doc, ...)` parsed every stored document once per index when it was built (a rebuild builds 11).
A column holds what `json_extract` gives for the field, so the queries' answers are the same. A file from
before the columns gets them added and filled when it is opened.

A rebuild writes into a fresh file (`fresh_file`: no journal, no fsync, tables without their key index until
their first load is in) and swaps it in for this one (`swap_in`) once it is complete, when it could claim the
file for itself (`claim`: no other connection has it open; then it holds it until the swap).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from projections.base import Doc, Projection
from projections.ports import In, Query, Write

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def _field(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"bad field name {name!r}")
    return f"json_extract(doc, '$.{name}')"


def _column(name: str) -> str:
    """The column holding a copy of the document's field `name`."""
    _field(name)  # checks the name
    return f"f_{name}"


_INT64 = range(-(2**63), 2**63)


def _column_value(value: Any) -> Any:
    """A document field as `json_extract` returns it from the stored JSON: scalars as they are (booleans as 1/0,
    integers past 64 bits as REAL), objects and arrays as JSON text."""
    if value is None or type(value) in (str, float, bool):
        return value
    if type(value) is int:
        return value if value in _INT64 else float(value)
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return _column_value(orjson.loads(orjson.dumps(value)))  # what the stored JSON holds (a datetime as text ...)


Row = Callable[[str, Doc | None, int], tuple[Any, ...]]


def _row_maker(fields: tuple[str, ...]) -> Row:
    """The row builder of a table with these indexed fields: key, tenant, position, JSON text and the copies of
    the fields. Built once per table, with the two-field case (the timeline's 500,000 rows in a rebuild) spelled
    out; strings and None, nearly every indexed value, are stored as they are without a call."""
    dumps = orjson.dumps
    blank = (None,) * len(fields)
    if len(fields) == 2:
        first, second = fields

        def row_of_two(key: str, doc: Doc | None, position: int) -> tuple[Any, ...]:
            if doc is None:
                return (key, None, position, None, None, None)
            get = doc.get
            a, b = get(first), get(second)
            return (key, get("tenant"), position, dumps(doc).decode(),
                    a if a is None or type(a) is str else _column_value(a),
                    b if b is None or type(b) is str else _column_value(b))

        return row_of_two

    def row(key: str, doc: Doc | None, position: int) -> tuple[Any, ...]:
        if doc is None:
            return (key, None, position, None, *blank)
        get = doc.get
        return (key, get("tenant"), position, dumps(doc).decode(),
                *[v if (v := get(f)) is None or type(v) is str else _column_value(v) for f in fields])

    return row


def _after(order: str, descending: bool, value: Any, key: str) -> tuple[str, list[Any]]:
    """Keyset condition for rows after (value, key); SQLite sorts NULL first ascending, last descending."""
    op = "<" if descending else ">"
    if value is None:
        if descending:  # only more NULLs follow
            return f"({order} IS NULL AND key < ?)", [key]
        return f"(({order} IS NULL AND key > ?) OR {order} IS NOT NULL)", [key]
    tail = f" OR {order} IS NULL" if descending else ""
    return f"({order} {op} ? OR ({order} = ? AND key {op} ?){tail})", [value, value, key]

def _insert(table: str, columns: Sequence[str]) -> str:
    """A plain insert, for a fresh table's first load (every key new)."""
    names = ["key", "tenant", "position", "doc", *columns]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"

# a document lands only over an older position (a replayed or stale write changes nothing); tracking only moves on
def _upsert(table: str, columns: Sequence[str]) -> str:
    names = ["key", "tenant", "position", "doc", *columns]
    changed = ", ".join(f"{n} = excluded.{n}" for n in names[1:])
    return (f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) ON CONFLICT(key) "
            f"DO UPDATE SET {changed} WHERE excluded.position > position")

_ADVANCE = (
    "INSERT INTO tracking (name, position) VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
    "SET position = excluded.position WHERE excluded.position > position"
)


def _remove_file(path: str) -> None:
    """Remove a SQLite file and its journal, WAL and shared-memory files, where they exist."""
    for name in (path, f"{path}-journal", f"{path}-wal", f"{path}-shm"):
        if os.path.exists(name):
            os.remove(name)


class SqliteDocumentStore:
    """DocumentStore on a SQLite file (WAL: one writer, many concurrent readers).

    bulk: a file being filled by a rebuild and nothing else (`fresh_file`): no journal and no fsync (a crash
    leaves a file that is thrown away), and each table created without its key index, which is built once after
    the table's first load (random-key inserts into it were a quarter of the load).
    """

    def __init__(
        self, path: Path | str, projections: Iterable[Projection], *, indexes: bool = True, bulk: bool = False
    ) -> None:
        self.path = str(path)
        self.bulk = bulk
        self.projections = {p.collection: p for p in projections}
        # per collection: the document fields copied into columns (its indexed fields and its sort order)
        self._fields = {name: tuple(dict.fromkeys((*p.indexes, p.order))) for name, p in self.projections.items()}
        self._columns = {name: {f: _column(f) for f in fields} for name, fields in self._fields.items()}
        self._upserts = {name: _upsert(name, list(columns.values())) for name, columns in self._columns.items()}
        self._inserts = {name: _insert(name, list(columns.values())) for name, columns in self._columns.items()}
        self._rows = {name: _row_maker(fields) for name, fields in self._fields.items()}
        self._local = threading.local()
        self._write_lock = threading.RLock()  # reentrant: _table may key a table under it
        # collections whose text index exists and is kept up to date; during a rebuild it is built at the end
        self._text_indexed: set[str] = set()
        # bulk: tables without their key index yet, and those of them never written (loaded by plain inserts)
        self._unkeyed: set[str] = set()
        self._unwritten: set[str] = set()
        # every reader connection (one per thread), and the file generation they belong to (a swap moves it on)
        self._readers: list[sqlite3.Connection] = []
        self._generation = 0
        self._claimed = False
        self._writer = self._connect()
        self._create(indexes=indexes)  # indexes=False: a rebuild's helper, which builds them after its writes

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        if self.bulk:
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA threads=2")  # index builds sort with a helper thread when a core is free
        else:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-65536")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.generation != self._generation:
            conn = self._connect()
            self._local.conn, self._local.generation = conn, self._generation
            with self._write_lock:
                self._readers.append(conn)
        return conn

    def _close_readers(self) -> None:
        """Close every reader connection (of all threads); each thread opens a new one on its next read."""
        with self._write_lock:
            readers, self._readers = self._readers, []
            self._generation += 1
        for conn in readers:
            conn.close()

    def _create(self, *, indexes: bool = True) -> None:
        with self._write_lock:
            cur = self._writer
            cur.execute("CREATE TABLE IF NOT EXISTS tracking (name TEXT PRIMARY KEY, position INTEGER NOT NULL)")
            for name, columns in self._columns.items():
                # the columns before `doc`: an index build reads them without stepping over a long document
                extra = "".join(f"{c}, " for c in columns.values())
                if self.bulk:
                    cur.execute(f"CREATE TABLE IF NOT EXISTS {name} (key TEXT NOT NULL, tenant TEXT, "
                                f"position INTEGER NOT NULL, {extra}doc TEXT)")
                    if not cur.execute(f"SELECT 1 FROM {name} LIMIT 1").fetchone():
                        self._unkeyed.add(name)
                        self._unwritten.add(name)
                    continue
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {name} (key TEXT PRIMARY KEY, tenant TEXT, "
                    f"position INTEGER NOT NULL, {extra}doc TEXT)"
                )
                self._add_columns(cur, name)
        if indexes:
            self.ensure_indexes()

    def _add_columns(self, cur: sqlite3.Connection, name: str) -> None:
        """Give a table from an older file the columns it lacks, filled from its documents, and drop the indexes
        built on JSON expressions (`ensure_indexes` builds them again on the columns)."""
        if not self._missing_columns(cur, name):
            return
        cur.execute("BEGIN IMMEDIATE")
        try:
            missing = self._missing_columns(cur, name)  # again under the lock: another process may have added them
            if missing:
                for column in missing.values():
                    cur.execute(f"ALTER TABLE {name} ADD COLUMN {column}")
                fill = ", ".join(f"{c} = {_field(f)}" for f, c in missing.items())
                cur.execute(f"UPDATE {name} SET {fill} WHERE doc IS NOT NULL")
                stale = cur.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                    "AND sql LIKE '%json_extract%'", (name,),
                ).fetchall()
                for (index,) in stale:
                    cur.execute(f"DROP INDEX {index}")
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def _missing_columns(self, cur: sqlite3.Connection, name: str) -> dict[str, str]:
        present = {row[1] for row in cur.execute(f"PRAGMA table_info({name})")}
        return {f: c for f, c in self._columns[name].items() if c not in present}

    def _expr(self, table: str, name: str) -> str:
        """How a query reads the document field `name`: its column if it has one, else from the JSON."""
        return self._columns[table].get(name) or _field(name)

    def _row(self, table: str, key: str, doc: Doc | None, position: int) -> tuple[Any, ...]:
        """A row to store: key, tenant, position, JSON text and the copies of the indexed fields."""
        return self._rows[table](key, doc, position)

    def _keyed(self, table: str) -> str:
        """The table, given its unique key index first if it was created without one (bulk)."""
        if table in self._unkeyed:
            self._writer.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS ux_{table}_key ON {table} (key)")
            self._unkeyed.discard(table)
            self._unwritten.discard(table)
        return table

    def ensure_indexes(self, collections: Iterable[str] | None = None, *, text: bool = True) -> None:
        """Create the query and text indexes (idempotent; a rebuild creates them once at the end, not row by row),
        of every collection or of those named; not the text indexes unless `text`."""
        chosen = self.projections if collections is None else {c: self.projections[self._table(c)] for c in collections}
        with self._write_lock:
            cur = self._writer
            for name, projection in chosen.items():
                self._keyed(name)
                columns = self._columns[name]
                order = columns[projection.order]
                cur.execute(f"CREATE INDEX IF NOT EXISTS ix_{name}_order ON {name} (tenant, {order})")
                cur.execute(f"CREATE INDEX IF NOT EXISTS ix_{name}_position ON {name} (position)")
                for f in projection.indexes:
                    cur.execute(f"CREATE INDEX IF NOT EXISTS ix_{name}_{f} ON {name} (tenant, {columns[f]}, {order})")
                if projection.text_search and text:
                    self._create_text_index(cur, name)

    def _create_text_index(self, cur: sqlite3.Connection, name: str) -> None:
        """The trigram full-text index of a collection: substring LIKE queries of 3+ characters use it instead
        of a scan. A new index (a deferred one after a rebuild, or a file from before it existed) is filled
        from the stored documents in one statement."""
        existed = cur.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (f"{name}_search",)).fetchone()
        if not existed:
            cur.execute(f"CREATE VIRTUAL TABLE {name}_search USING fts5(search, tokenize='trigram')")
            cur.execute(
                f"INSERT INTO {name}_search (rowid, search) SELECT rowid, json_extract(doc, '$.search') "
                f"FROM {name} WHERE json_extract(doc, '$.search') IS NOT NULL"
            )
        self._text_indexed.add(name)

    def _table(self, collection: str) -> str:
        if collection not in self.projections:
            raise KeyError(f"unknown collection {collection!r}")
        if collection in self._unkeyed:  # looked up or written by key: it needs its key index now
            with self._write_lock:
                self._keyed(collection)
        return collection

    def get(self, collection: str, key: str) -> tuple[Doc | None, int] | None:
        row = self._reader().execute(
            f"SELECT doc, position FROM {self._table(collection)} WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        return (orjson.loads(row[0]) if row[0] is not None else None), int(row[1])

    def get_many(self, collection: str, keys: Sequence[str]) -> dict[str, tuple[Doc | None, int]]:
        table = self._table(collection)
        found: dict[str, tuple[Doc | None, int]] = {}
        conn = self._reader()
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for key, doc, position in conn.execute(
                f"SELECT key, doc, position FROM {table} WHERE key IN ({marks})", chunk
            ):
                found[key] = ((orjson.loads(doc) if doc is not None else None), int(position))
        return found

    def write(self, writes: Sequence[Write], tracking: tuple[str, int] | None = None) -> None:
        with self._write_lock:
            cur = self._writer
            cur.execute("BEGIN IMMEDIATE")
            try:
                by_table: dict[str, list[tuple[Any, ...]]] = {}
                for w in writes:
                    table = self._table(w.collection)
                    by_table.setdefault(table, []).append(self._row(table, w.key, w.doc, w.position))
                for table, rows in by_table.items():
                    stale, fresh = self._text_changes(cur, table, writes) if table in self._text_indexed else ([], {})
                    cur.executemany(self._upserts[table], rows)
                    if stale:
                        self._index_text(cur, table, stale, fresh)
                if tracking is not None:
                    cur.execute(_ADVANCE, tracking)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def bulk_write(
        self, documents: Mapping[str, Mapping[str, tuple[Doc | None, int]]], tracking: tuple[str, int] | None = None
    ) -> None:
        """Store many documents ({collection: {key: (doc, position)}}) and a tracking position in one transaction.

        For a rebuild: rows go in the order of the mappings (a rebuild's: the order the documents were first
        folded, so the timeline's rows follow the log and its position and time indexes are built from nearly
        sorted rows; sorting 500,000 random keys first cost more than the key index's random inserts it saved),
        with the same position guard as `write`; a collection whose text index is live is written by `write`.
        """
        for collection in documents:
            if collection not in self.projections:
                raise KeyError(f"unknown collection {collection!r}")
        live_text = [c for c in documents if c in self._text_indexed]
        if live_text:
            self.write([Write(c, key, doc, position) for c in live_text for key, (doc, position)
                        in sorted(documents[c].items())])
        with self._write_lock:
            cur = self._writer
            cur.execute("BEGIN IMMEDIATE")
            try:
                for collection, docs in documents.items():
                    if collection in live_text or not docs:
                        continue
                    if collection in self._unwritten:  # a fresh table's first load: every key is new
                        self._unwritten.discard(collection)
                        sql = self._inserts[collection]
                    else:
                        sql = self._upserts[self._table(collection)]
                    row = self._rows[collection]
                    # rows made as SQLite takes them: no list of them all, each encoded just before it is stored
                    cur.executemany(sql, (row(key, doc, position) for key, (doc, position) in docs.items()))
                if tracking is not None:
                    cur.execute(_ADVANCE, tracking)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _attached(self, path: str) -> Iterator[sqlite3.Connection]:
        """The writer with another read-model file attached as `helper`, in one transaction (rolled back on
        failure); detached after. The caller holds the write lock."""
        cur = self._writer
        cur.execute("ATTACH DATABASE ? AS helper", (path,))
        try:
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        finally:
            cur.execute("DETACH DATABASE helper")

    def append_tables(self, path: str, collections: Sequence[str]) -> None:
        """Add to these collections' tables the rows of the same tables in another read-model file of these
        projections (a rebuild helper's share: keys none of these rows have), in one transaction.

        For a rebuild before its indexes are built: each row is then one append, and the indexes are built once
        over all of them."""
        for collection in collections:
            if collection not in self.projections:
                raise KeyError(f"unknown collection {collection!r}")
        with self._write_lock, self._attached(path) as cur:
            for table in collections:
                # named: a file from before the columns has them in another order
                listed = ", ".join(row[1] for row in cur.execute(f"PRAGMA main.table_info({table})"))
                cur.execute(f"INSERT INTO main.{table} ({listed}) SELECT {listed} FROM helper.{table}")
        self._unwritten.difference_update(collections)  # not empty any more: a later load upserts

    def copy_tables(self, path: str, collections: Sequence[str]) -> None:
        """Fill these collections' (empty) tables with the rows of the same tables in another read-model file of
        these projections, written in bulk and indexed (a rebuild helper's), in one transaction.

        The tables and their indexes are created here first, so each `INSERT ... SELECT *` is SQLite's transfer
        of whole records and index entries (no decoding, no index build); then the text indexes."""
        tables = [self._table(c) for c in collections]
        self.ensure_indexes(tables, text=False)
        with self._write_lock, self._attached(path) as cur:
            for table in tables:
                names = [row[1] for row in cur.execute(f"PRAGMA main.table_info({table})")]
                if names == [row[1] for row in cur.execute(f"PRAGMA helper.table_info({table})")]:
                    cur.execute(f"INSERT INTO main.{table} SELECT * FROM helper.{table}")
                else:  # columns in another order (a file from before the columns): named, row by row
                    listed = ", ".join(names)
                    cur.execute(f"INSERT INTO main.{table} ({listed}) SELECT {listed} FROM helper.{table}")
        self._unwritten.difference_update(tables)
        self.ensure_indexes(tables)

    def claim(self) -> bool:
        """Take this file for a rebuild that swaps a fresh one in: only when no other connection has it open (no
        other process reads it) and it holds nothing but these read models; then hold it (readers wait) until
        `swap_in` or `release`. False, and nothing changed, otherwise."""
        known = {"tracking", *self.projections}
        with self._write_lock:
            cur = self._writer
            tables = [row[0] for row in cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            # a text index's FTS5 table and its shadow tables are named after their collection
            if any(t not in known and not any(t.startswith(f"{c}_search") for c in self.projections)
                   for t in tables):
                return False
        self._close_readers()
        with self._write_lock:
            cur = self._writer
            cur.execute("PRAGMA busy_timeout=0")
            try:
                # leaving WAL needs every other connection closed: SQLite's own test of sole use
                mode = cur.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
                if mode != "delete":
                    return False
                cur.execute("BEGIN EXCLUSIVE")  # new connections wait until the swap
            except sqlite3.OperationalError:
                return False
            finally:
                cur.execute("PRAGMA busy_timeout=30000")
            self._claimed = True
            return True

    def fresh_file(self) -> SqliteDocumentStore:
        """An empty store of these projections in a new file beside this one, for a rebuild (bulk, no indexes)."""
        fresh = f"{self.path}.rebuilding"
        _remove_file(fresh)
        return SqliteDocumentStore(fresh, self.projections.values(), indexes=False, bulk=True)

    def swap_in(self, fresh: SqliteDocumentStore) -> None:
        """Replace this store's file with a complete fresh one (`fresh_file`, indexed), which is closed; needs
        `claim`. The fresh file is made durable and put in WAL mode before the atomic rename."""
        if not self._claimed:
            raise RuntimeError("swap_in needs the file claimed first")
        fresh.ensure_indexes()
        fresh._close_readers()
        fresh._writer.execute("PRAGMA journal_mode=WAL")
        fresh.close()
        with open(fresh.path, "rb+") as handle:
            os.fsync(handle.fileno())
        for stale in (f"{fresh.path}-wal", f"{fresh.path}-shm"):  # checkpointed: empty after the last close
            if os.path.exists(stale):
                os.remove(stale)
        with self._write_lock:
            os.replace(fresh.path, self.path)
            self._writer.execute("ROLLBACK")  # releases the old file, which nobody opens by this name any more
            self._writer.close()
            self._claimed = False
            for stale in (f"{self.path}-journal", f"{self.path}-wal", f"{self.path}-shm"):
                if os.path.exists(stale):
                    os.remove(stale)
            if hasattr(os, "O_DIRECTORY"):  # the rename itself made durable
                directory = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(directory)
                finally:
                    os.close(directory)
            self._writer = self._connect()
            self._text_indexed = {n for n, p in self.projections.items() if p.text_search}
        self._close_readers()

    def release(self, fresh: SqliteDocumentStore | None = None) -> None:
        """Give up a claim (a rebuild that failed): the file stays as it was, in WAL mode; the fresh one is removed."""
        if fresh is not None:
            fresh.close()
            _remove_file(fresh.path)
        with self._write_lock:
            if self._claimed:
                self._writer.execute("ROLLBACK")
                self._writer.execute("PRAGMA journal_mode=WAL")
                self._claimed = False

    @staticmethod
    def _text_changes(cur: sqlite3.Connection, table: str, writes: Sequence[Write]) -> tuple[list[str], dict[str, str]]:
        """Keys of this table's writes whose search text may change (most updates, an assignment, a comment, a
        stage move, leave it as stored, and refreshing the trigram index costs more than the rest of the write),
        and of those the new documents' texts: keys without a row before (a case just opened), which the write
        stores as given and whose text nothing indexed yet."""
        new_text: dict[str, Any] = {}
        repeated: set[str] = set()
        for w in writes:
            if w.collection == table:
                if w.key in new_text:
                    repeated.add(w.key)  # several writes of one key in a call: compare with what is stored after
                new_text[w.key] = w.doc.get("search") if w.doc is not None else None
        keys = list(new_text)
        stored: dict[str, Any] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            stored.update(cur.execute(
                f"SELECT key, CASE WHEN doc IS NULL THEN NULL ELSE json_extract(doc, '$.search') END "
                f"FROM {table} WHERE key IN ({marks})", chunk,
            ).fetchall())
        stale = [k for k in keys if k in repeated or k not in stored or stored[k] != new_text[k]]
        fresh = {k: new_text[k] for k in stale if k not in stored and k not in repeated}
        return stale, fresh

    @staticmethod
    def _index_text(cur: sqlite3.Connection, table: str, keys: list[str], fresh: Mapping[str, str | None]) -> None:
        """Refresh the full-text rows of these documents from what is stored now (a stale write left it as is);
        `fresh`: those that had no row before, inserted with the text given (nothing to remove, no JSON to read)."""
        rowid = f"(SELECT rowid FROM {table} WHERE key = ?)"
        known = [(key,) for key in keys if key not in fresh]
        if known:
            cur.executemany(f"DELETE FROM {table}_search WHERE rowid = {rowid}", known)
            cur.executemany(
                f"INSERT INTO {table}_search (rowid, search) SELECT rowid, json_extract(doc, '$.search') "
                f"FROM {table} WHERE key = ? AND json_extract(doc, '$.search') IS NOT NULL",
                known,
            )
        # as json_extract gives it from the stored JSON, which ends a text at a NUL
        texts = [(text.partition("\0")[0], key) for key, text in fresh.items() if text is not None]
        if texts:
            cur.executemany(f"INSERT INTO {table}_search (rowid, search) SELECT rowid, ? FROM {table} WHERE key = ?",
                            texts)

    def tracking(self, name: str) -> int:
        row = self._reader().execute("SELECT position FROM tracking WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _where(self, tenant: str, filters: Mapping[str, Any], text: str | None, table: str) -> tuple[str, list[Any]]:
        clauses = ["tenant = ?", "doc IS NOT NULL"]
        params: list[Any] = [tenant]
        for name, value in filters.items():
            if isinstance(value, In):
                # an empty set matches nothing; NULL is never IN a list, as in MongoDB's $in without null
                marks = ",".join("?" * len(value.values))
                clauses.append(f"{self._expr(table, name)} IN ({marks})" if value.values else "0")
                params.extend(value.values)
            elif value is None:
                clauses.append(f"{self._expr(table, name)} IS NULL")
            else:
                clauses.append(f"{self._expr(table, name)} = ?")
                params.append(value)
        plain = text is not None and len(text) >= 3 and not any(c in text for c in "%_\\")
        if text and plain and table in self._text_indexed:
            clauses.append(f"rowid IN (SELECT rowid FROM {table}_search WHERE search LIKE ?)")
            params.append(f"%{text.lower()}%")
        elif text:
            clauses.append(f"{_field('search')} LIKE ? ESCAPE '\\'")
            escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{escaped}%")
        return " AND ".join(clauses), params

    def find(self, query: Query) -> list[Doc]:
        return [doc for _, doc in self.find_positioned(query)]

    def find_positioned(self, query: Query) -> list[tuple[int, Doc]]:
        table = self._table(query.collection)
        where, params = self._where(query.tenant, query.filters, query.text, table)
        order = "position" if query.sort == "position" else self._expr(table, query.sort)
        direction = "DESC" if query.descending else "ASC"
        if query.min_position is not None:
            where += " AND position > ?"
            params.append(query.min_position)
        if query.after is not None:
            clause, values = _after(order, query.descending, *query.after)
            where += f" AND {clause}"
            params.extend(values)
        sql = (
            f"SELECT position, doc FROM {table} WHERE {where} ORDER BY {order} {direction}, key {direction} LIMIT ?"
        )
        params.append(query.limit)
        return [(int(row[0]), orjson.loads(row[1])) for row in self._reader().execute(sql, params)]

    def count_by(self, collection: str, tenant: str, field: str, filters: Mapping[str, Any]) -> dict[str, int]:
        table = self._table(collection)
        where, params = self._where(tenant, filters, None, table)
        sql = f"SELECT {self._expr(table, field)}, COUNT(*) FROM {table} WHERE {where} GROUP BY 1"
        return {("" if v is None else str(v)): int(n) for v, n in self._reader().execute(sql, params)}

    def reset(self, *, defer_indexes: bool = False) -> None:
        with self._write_lock:
            for name in self.projections:
                self._writer.execute(f"DROP TABLE IF EXISTS {name}")
                self._writer.execute(f"DROP TABLE IF EXISTS {name}_search")
            self._writer.execute("DROP TABLE IF EXISTS tracking")
            self._text_indexed.clear()
        self._create(indexes=not defer_indexes)

    def close(self) -> None:
        self._close_readers()
        self._writer.close()
