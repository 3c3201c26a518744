"""EventStore over the `eventsourcing` library's application recorders (SQLite file or PostgreSQL)."""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, IntegrityError, InterfaceError, OperationalError
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteConnection, SQLiteConnectionPool, SQLiteDatastore

from adapters.codec import decode_stored, decoder_for, encode
from adapters.group_commit import GroupCommitter
from domain.errors import VersionConflict
from domain.events import Event, Positioned

if TYPE_CHECKING:  # psycopg is imported with the PostgreSQL store only (start-up time of the embedded mode)
    from adapters.postgres_log_watch import LogWatch

# (position, originator id, version, topic, state) of the notifications after `after`, up to `stop`, at most
# `limit`, only of `topics` when given
Row = tuple[int, Any, int, str, bytes]
SelectRows = Callable[[int, int, int | None, Sequence[str]], Sequence[Row]]
# (originator id, version, topic, state) of the events of each (aggregate id, after version) asked for, newer than
# that version, in (aggregate, version) order
HistoryRow = tuple[Any, int, str, bytes]
SelectHistories = Callable[[Sequence[tuple[UUID, int]]], Sequence[HistoryRow]]
HISTORIES_PER_QUERY = 500
HISTORY_CACHE_BYTES = 24 * 2**20  # stored (JSON) bytes of the cached histories; decoded they take a few times more
# longer histories are not cached: a number sequence gains an event per case, and extending its cached copy (a new
# list per append: readers may hold the old one) would cost more with every case opened
HISTORY_MAX_EVENTS = 1_000


class RecorderEventStore:
    """Appends and reads domain events through an eventsourcing ApplicationRecorder."""

    def __init__(
        self, recorder: ApplicationRecorder, position_query: Callable[[UUID, int], int | None],
        select_rows: SelectRows | None = None, select_histories: SelectHistories | None = None,
        select_latest: Callable[[UUID], HistoryRow | None] | None = None,
        select_head: Callable[[], int] | None = None,
    ):
        self.recorder = recorder
        self._position_query = position_query
        self._select_rows = select_rows or self._library_rows
        self._select_histories = select_histories or self._library_histories
        self._select_latest = select_latest
        self._select_head = select_head
        self._listeners: list[Callable[[int], None]] = []
        self.committer = GroupCommitter(recorder.insert_events)
        # decoded history per aggregate (events are immutable): a load then decodes only what is new; bounded by
        # count and by the stored bytes of what it holds (a process instance's history is far larger than a case's)
        self._histories: OrderedDict[UUID, list[Event]] = OrderedDict()
        self._history_bytes: dict[UUID, int] = {}  # stored bytes of each cached history
        self._histories_lock = threading.Lock()
        self.history_cache_size = 20_000
        self.history_cache_bytes = HISTORY_CACHE_BYTES
        self.cached_bytes = 0
        # (file, synchronous) of a SQLite log, so a helper process can open it too; None for PostgreSQL
        self.sqlite_file: tuple[str, str] | None = None
        # PostgreSQL: hears other processes' appends; started with the first append listener (postgres_event_store)
        self.log_watch: LogWatch | None = None

    def append(self, events: Sequence[Event]) -> list[int]:
        if not events:
            return []
        stored = [encode(e) for e in events]
        try:
            ids = self.committer.insert(stored)
        except IntegrityError as exc:
            raise VersionConflict("another change to the same record was stored first; retry") from exc
        positions = list(ids or [])
        self._extend_histories(events, [len(s.state) for s in stored])
        if positions:
            for listener in self._listeners:
                listener(positions[-1])
        return positions

    def events_of(self, aggregate_id: UUID) -> list[Event]:
        return self.events_of_many([aggregate_id])[aggregate_id]

    def events_of_many(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, list[Event]]:
        """`events_of` for many aggregates in one query (a few hundred ids per query); absent ones map to []."""
        wanted = list(dict.fromkeys(aggregate_ids))
        known = {aggregate_id: self._known(aggregate_id) for aggregate_id in wanted}
        fresh: dict[UUID, list[Event]] = {aggregate_id: [] for aggregate_id in wanted}
        sizes = dict.fromkeys(wanted, 0)
        after = [(a, history[-1].version if (history := known[a][0]) else 0) for a in wanted]
        for start in range(0, len(after), HISTORIES_PER_QUERY):
            chunk = after[start : start + HISTORIES_PER_QUERY]
            for originator_id, version, topic, state in self._select_histories(chunk):
                event = decoder_for(topic)(state, originator_id, version)
                fresh[event.aggregate_id].append(event)
                sizes[event.aggregate_id] += len(state)
        return {a: self._remember(a, *known[a], fresh[a], sizes[a]) for a in wanted}

    def _extend_histories(self, events: Sequence[Event], sizes: Sequence[int]) -> None:
        """Just-stored events join the cached histories they continue (or start), so the next load of those
        aggregates reads nothing back. Cached lists are replaced, never changed: readers may hold them."""
        with self._histories_lock:
            for event, size in zip(events, sizes, strict=True):
                aggregate_id = event.aggregate_id
                known = self._histories.get(aggregate_id)
                if known is not None and len(known) >= HISTORY_MAX_EVENTS:
                    self._forget_history(aggregate_id)
                    continue
                if known is not None and known[-1].version + 1 == event.version:
                    self._histories[aggregate_id] = [*known, event]
                elif known is None and event.version == 1:
                    self._histories[aggregate_id] = [event]
                else:
                    continue
                self._histories.move_to_end(aggregate_id)
                self._history_bytes[aggregate_id] = self._history_bytes.get(aggregate_id, 0) + size
                self.cached_bytes += size
            self._trim_histories()

    def _trim_histories(self) -> None:
        """Evict the least recently used histories beyond the count and byte bounds (lock held)."""
        while self._histories and (len(self._histories) > self.history_cache_size
                                   or self.cached_bytes > self.history_cache_bytes):
            aggregate_id, _ = self._histories.popitem(last=False)
            self.cached_bytes -= self._history_bytes.pop(aggregate_id, 0)

    def _forget_history(self, aggregate_id: UUID) -> None:
        """Drop one cached history (lock held)."""
        self._histories.pop(aggregate_id, None)
        self.cached_bytes -= self._history_bytes.pop(aggregate_id, 0)

    def _known(self, aggregate_id: UUID) -> tuple[list[Event] | None, int]:
        """The cached history and its stored bytes."""
        with self._histories_lock:
            return self._histories.get(aggregate_id), self._history_bytes.get(aggregate_id, 0)

    def _remember(self, aggregate_id: UUID, known: list[Event] | None, known_bytes: int, fresh: list[Event],
                  size: int) -> list[Event]:
        """The whole history (what was cached, `known_bytes` stored bytes, plus what was read after it, `size`
        bytes), kept for the next load."""
        events = [*known, *fresh] if known else fresh
        if len(events) > HISTORY_MAX_EVENTS:
            with self._histories_lock:
                self._forget_history(aggregate_id)
        elif events:
            with self._histories_lock:
                current = self._histories.get(aggregate_id)
                if current is None or current[-1].version <= events[-1].version:
                    before = self._history_bytes.get(aggregate_id, 0) if current is not None else 0
                    total = known_bytes + size
                    self._histories[aggregate_id] = events
                    self._histories.move_to_end(aggregate_id)
                    self._history_bytes[aggregate_id] = total
                    self.cached_bytes += total - before
                    self._trim_histories()
        return list(events)

    def last_event_of(self, aggregate_id: UUID) -> Event | None:
        if self._select_latest is not None:
            row = self._select_latest(aggregate_id)
            return None if row is None else decoder_for(row[2])(row[3], row[0], row[1])
        stored = self.recorder.select_events(aggregate_id, desc=True, limit=1)
        return decode_stored(stored[0]) if stored else None

    def _library_rows(self, after: int, limit: int, stop: int | None, topics: Sequence[str]) -> Sequence[Row]:
        notes = self.recorder.select_notifications(
            after, limit, stop=stop, topics=topics, inclusive_of_start=False
        )
        return [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in notes]

    def _library_histories(self, wanted: Sequence[tuple[UUID, int]]) -> list[HistoryRow]:
        return [(s.originator_id, s.originator_version, s.topic, s.state)
                for aggregate_id, after in wanted for s in self.recorder.select_events(aggregate_id, gt=after)]

    @staticmethod
    def _decoded(rows: Sequence[Row]) -> list[Positioned]:
        return [Positioned(position, decoder_for(topic)(state, originator_id, version))
                for position, originator_id, version, topic, state in rows]

    def read(self, after: int, limit: int) -> list[Positioned]:
        return self._decoded(self._select_rows(after, limit, None, ()))

    def read_batch(
        self, after: int, limit: int, types: frozenset[str] | None = None
    ) -> tuple[list[Positioned], int]:
        rows, last = self.read_rows(after, limit, types)
        return self._decoded(rows), last

    def read_rows(self, after: int, limit: int, types: frozenset[str] | None = None) -> tuple[Sequence[Row], int]:
        """Undecoded rows (position, aggregate id, version, topic, state) of the next window of at most `limit`
        positions after `after`, only of `types` when given, and the window's last position (`after` at the end)."""
        if types is None:
            rows = self._select_rows(after, limit, None, ())
            return rows, (rows[-1][0] if rows else after)
        # filter in SQL over a window of positions, so skipped events are never fetched or decoded
        head = self.max_position()
        if head <= after:
            return [], after
        last = min(after + limit, head)
        return self._select_rows(after, limit, last, sorted(types)), last

    def read_raw(self, after: int, limit: int) -> Sequence[Any]:
        """Undecoded notifications (for measuring the raw log rate)."""
        return self.recorder.select_notifications(after, limit, inclusive_of_start=False)

    def max_position(self) -> int:
        if self._select_head is not None:
            return self._select_head()
        return self.recorder.max_notification_id() or 0

    def position_of(self, aggregate_id: UUID, version: int) -> int | None:
        return self._position_query(aggregate_id, version)

    def on_append(self, listener: Callable[[int], None]) -> None:
        self._listeners.append(listener)
        if self.log_watch is not None:
            self.log_watch.start()  # once: later calls do nothing

    def _heard_other_append(self) -> None:
        """Another process appended (or we cannot tell what we missed): wake the listeners (position 0: unknown)."""
        for listener in self._listeners:
            listener(0)

    def close(self) -> None:
        if self.log_watch is not None:
            self.log_watch.stop()
        datastore = getattr(self.recorder, "datastore", None)
        if datastore is not None:
            datastore.close()


STATEMENTS_CACHED = 256  # per connection: every query the store runs stays prepared


class _SyncModePool(SQLiteConnectionPool):
    """The library's pool, with the `synchronous` pragma set on each new connection and a real statement cache.

    The library opens its connections with `cached_statements=True`, which sqlite3 takes as a cache of one
    statement: the BEGIN of every transaction evicted the query after it, so each query was parsed and planned
    again (~20 us of a ~25 us read). Otherwise its connections are made as the library makes them.
    """

    synchronous = "FULL"

    def _create_connection(self) -> SQLiteConnection:
        try:
            raw = sqlite3.connect(database=self.db_name, uri=True, check_same_thread=False, isolation_level=None,
                                  cached_statements=STATEMENTS_CACHED, timeout=self.lock_timeout or 5)
        except (sqlite3.Error, TypeError) as exc:
            raise InterfaceError(exc) from exc
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            if raw.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                raw.execute("PRAGMA journal_mode=WAL")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        raw.row_factory = sqlite3.Row
        raw.execute(f"PRAGMA synchronous={self.synchronous}")
        return SQLiteConnection(sqlite_conn=raw, max_age=self.max_age)


def sqlite_event_store(path: Path | str, pool_size: int = 5, synchronous: str = "FULL") -> RecorderEventStore:
    """Event store in a SQLite file (the embedded default).

    synchronous=NORMAL (with WAL) survives application crashes but may lose the last commits on an OS crash or
    power cut; FULL syncs every commit (about 6 ms each on a busy disk).
    """
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError("synchronous must be FULL or NORMAL")
    datastore = SQLiteDatastore(str(path), pool_size=pool_size, lock_timeout=30)
    datastore.pool.close()
    pool = _SyncModePool(db_name=str(path), lock_timeout=30, pool_size=pool_size)
    pool.synchronous = synchronous
    datastore.pool = pool
    recorder = SQLiteApplicationRecorder(datastore)
    recorder.create_table()
    with datastore.transaction(commit=True) as curs:
        curs.execute("PRAGMA journal_mode=WAL")

    def query(sql: str, params: Sequence[Any]) -> list[Any]:
        # one statement is its own consistent snapshot: no BEGIN and ROLLBACK around it (with them, and the
        # library's transaction layers, a one-row read cost ~10 times the statement)
        with datastore.get_connection(commit=False) as connection:
            try:
                return connection._sqlite_conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                raise OperationalError(exc) from exc

    def position(aggregate_id: UUID, version: int) -> int | None:
        rows = query("SELECT rowid FROM stored_events WHERE originator_id=? AND originator_version=?",
                     (aggregate_id.hex, version))
        return int(rows[0][0]) if rows else None

    def select_head() -> int:
        return int(query("SELECT MAX(rowid) FROM stored_events", ())[0][0] or 0)

    def select_latest(aggregate_id: UUID) -> HistoryRow | None:
        rows = query("SELECT originator_id, originator_version, topic, state FROM stored_events WHERE originator_id=? "
                     "ORDER BY originator_version DESC LIMIT 1", (aggregate_id.hex,))
        return tuple(rows[0]) if rows else None

    def select_rows(after: int, limit: int, stop: int | None, topics: Sequence[str]) -> list[Row]:
        # the library's select_notifications, without building a Notification and a UUID per row: the
        # decoder parses (and caches) the aggregate ids itself
        sql = "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events WHERE rowid > ?"
        params: list[Any] = [after]
        if stop is not None:
            sql += " AND rowid <= ?"
            params.append(stop)
        if topics:
            sql += f" AND topic IN ({','.join('?' * len(topics))})"
            params.extend(topics)
        sql += " ORDER BY rowid LIMIT ?"
        params.append(limit)
        return [tuple(row) for row in query(sql, params)]

    def select_histories(wanted: Sequence[tuple[UUID, int]]) -> list[HistoryRow]:
        values = ",".join("(?,?)" for _ in wanted)
        sql = (f"WITH w(id, after) AS (VALUES {values}) SELECT e.originator_id, e.originator_version, e.topic, "
               "e.state FROM w JOIN stored_events e ON e.originator_id = w.id AND e.originator_version > w.after "
               "ORDER BY e.originator_id, e.originator_version")
        params = [p for aggregate_id, after in wanted for p in (aggregate_id.hex, after)]
        return [tuple(row) for row in query(sql, params)]

    store = RecorderEventStore(recorder, position, select_rows, select_histories, select_latest, select_head)
    store.sqlite_file = (str(path), synchronous)
    return store


def postgres_event_store(
    *, host: str, port: int, dbname: str, user: str, password: str, pool_size: int = 10, schema: str = "",
    pool_timeout: float = 5.0,
) -> RecorderEventStore:
    """Event store in PostgreSQL (the distributed mode); pool_timeout: longest wait for a pooled connection."""
    # imported here: psycopg and the library's PostgreSQL module cost a second of start-up in embedded mode
    import psycopg
    from eventsourcing.postgres import PostgresDatastore
    from psycopg.rows import tuple_row

    from adapters.postgres_log_watch import LogWatch
    from adapters.postgres_recorder import ArrayInsertRecorder

    datastore = PostgresDatastore(
        dbname=dbname, host=host, port=port, user=user, password=password,
        pool_size=pool_size, max_overflow=pool_size, max_waiting=1000, schema=schema, connect_timeout=pool_timeout,
        # no pool_open_timeout: with one, every checkout calls pool.open(wait=True), which races across threads
    )
    recorder = ArrayInsertRecorder(datastore)
    recorder.create_table()

    def position(aggregate_id: UUID, version: int) -> int | None:
        with datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                f"SELECT notification_id FROM {datastore.schema + '.' if datastore.schema else ''}"
                "stored_events WHERE originator_id=%s AND originator_version=%s",
                (aggregate_id, version),
            )
            row = curs.fetchone()
        return int(row["notification_id"]) if row else None

    table = f"{datastore.schema + '.' if datastore.schema else ''}{recorder.events_table_name}"

    def select_rows(after: int, limit: int, stop: int | None, topics: Sequence[str]) -> list[Row]:
        # as for SQLite: plain tuples, no Notification object and UUID per row
        sql = f"SELECT notification_id, originator_id, originator_version, topic, state FROM {table} " \
              "WHERE notification_id > %s"
        params: list[Any] = [after]
        if stop is not None:
            sql += " AND notification_id <= %s"
            params.append(stop)
        if topics:
            sql += " AND topic = ANY(%s)"
            params.append(list(topics))
        sql += " ORDER BY notification_id LIMIT %s"
        params.append(limit)
        with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(sql, params, prepare=True)
            return curs.fetchall()

    def select_histories(wanted: Sequence[tuple[UUID, int]]) -> list[HistoryRow]:
        with datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                "SELECT e.originator_id, e.originator_version, e.topic, e.state "
                "FROM unnest(%s::uuid[], %s::bigint[]) AS w(id, after) "
                f"JOIN {table} e ON e.originator_id = w.id AND e.originator_version > w.after "
                "ORDER BY e.originator_id, e.originator_version",
                ([aggregate_id for aggregate_id, _ in wanted], [after for _, after in wanted]), prepare=True,
            )
            return [(row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"]))
                    for row in curs.fetchall()]

    store = RecorderEventStore(recorder, position, select_rows, select_histories)

    def listen() -> Any:
        return psycopg.connect(dbname=dbname, host=host, port=port, user=user, password=password, autocommit=True,
                               connect_timeout=10)

    store.log_watch = LogWatch(listen, recorder.channel_name, store._heard_other_append)
    return store
