"""Where followers of the event log keep their marks: one text per name, in the event store's own database.

A mark says what a follower had taken from the log up to a position (processes/checkpoint.py `LogMark`), so its next
start reads from there instead of from the log's beginning. It lives beside the events (a `log_marks` table in the
SQLite file or the PostgreSQL database, as the relay's position does), so the embedded mode, `serve --workers N` and
the distributed process worker all find theirs, and a log restored from a backup is noticed by the head the mark
names (a mark for another log is ignored).
"""

from __future__ import annotations

import sqlite3
from typing import Any, Protocol

from adapters.event_store import RecorderEventStore


class LogMarks(Protocol):
    """Named texts kept beside the event log."""

    def load_mark(self, name: str) -> str | None: ...

    def save_mark(self, name: str, text: str) -> None: ...


class SqliteLogMarks:
    """log_marks in the SQLite event store file (its own short connections, as the relay's positions)."""

    def __init__(self, path: str) -> None:
        self.path = path
        conn = self._connect()
        try:
            with conn:
                conn.execute("CREATE TABLE IF NOT EXISTS log_marks (name TEXT PRIMARY KEY, mark TEXT NOT NULL)")
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def load_mark(self, name: str) -> str | None:
        conn = self._connect()
        try:
            row = conn.execute("SELECT mark FROM log_marks WHERE name=?", (name,)).fetchone()
        finally:
            conn.close()
        return str(row[0]) if row else None

    def save_mark(self, name: str, text: str) -> None:
        conn = self._connect()
        try:
            with conn:
                conn.execute("INSERT INTO log_marks (name, mark) VALUES (?, ?) "
                             "ON CONFLICT(name) DO UPDATE SET mark=excluded.mark", (name, text))
        finally:
            conn.close()


class PostgresLogMarks:
    """log_marks in the PostgreSQL event store's database (through the recorder's datastore pool)."""

    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore
        schema = getattr(datastore, "schema", "")
        self.table = f"{schema}.log_marks" if schema else "log_marks"
        with datastore.transaction(commit=True) as curs:
            curs.execute(f"CREATE TABLE IF NOT EXISTS {self.table} (name text PRIMARY KEY, mark text NOT NULL)")

    def load_mark(self, name: str) -> str | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(f"SELECT mark FROM {self.table} WHERE name=%s", (name,))
            row = curs.fetchone()
        return str(row["mark"]) if row else None

    def save_mark(self, name: str, text: str) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(f"INSERT INTO {self.table} (name, mark) VALUES (%s, %s) "
                         "ON CONFLICT (name) DO UPDATE SET mark=EXCLUDED.mark", (name, text))


def log_marks_for(store: object) -> LogMarks | None:
    """The marks kept in the same database as the store's events; None for a store of another kind (its
    followers read the whole log at start, as before)."""
    if not isinstance(store, RecorderEventStore):
        return None
    datastore = getattr(store.recorder, "datastore", None)
    kind = type(datastore).__name__
    if kind == "PostgresDatastore":
        return PostgresLogMarks(datastore)
    if kind == "SQLiteDatastore" and store.sqlite_file is not None:
        return SqliteLogMarks(store.sqlite_file[0])
    return None
