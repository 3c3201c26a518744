"""The library's PostgreSQL application recorder, inserting a transaction's events with one function call.

The library's insert is five statements in a pipeline (BEGIN, SET LOCAL lock_timeout, LOCK TABLE, NOTIFY, INSERT of
an array of a composite type that psycopg dumps field by field in Python, COMMIT): about a third of the CPU of
storing a batch of commands. Here one prepared call of a PL/pgSQL function does the same in the statement's own
transaction: it takes the same EXCLUSIVE table lock (so commit order stays notification order for readers tailing
the log), notifies the same channel, and inserts from four arrays of plain values (uuid, bigint, text, bytea) that
psycopg dumps in C, returning the notification ids.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier, Literal

FUNCTION = "casestream_insert_events"


class ArrayInsertRecorder(PostgresApplicationRecorder):
    """PostgresApplicationRecorder whose inserts are one call of `casestream_insert_events`."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema, id_type = Identifier(datastore.schema), Identifier(datastore.originator_id_type)
        self._create_function = SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}("
            "ids {id_type}[], versions bigint[], topics text[], states bytea[]) RETURNS SETOF bigint "
            "LANGUAGE plpgsql AS $body$ BEGIN "
            "SET LOCAL lock_timeout = {timeout}; "
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; "
            "RETURN QUERY INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(ids, versions, topics, states) RETURNING notification_id; "
            "END $body$"
        ).format(
            schema=schema, function=Identifier(FUNCTION), id_type=id_type, table=Identifier(events_table_name),
            timeout=Literal(f"{datastore.lock_timeout}s"), channel=Identifier(self.channel_name),
        )
        self._call = SQL("SELECT * FROM {schema}.{function}(%s, %s, %s, %s)").format(
            schema=schema, function=Identifier(FUNCTION)
        )

    def create_table(self) -> None:
        super().create_table()
        # several processes may start at once on a fresh database: a concurrent CREATE OR REPLACE of one function
        # fails with "tuple concurrently updated"; the definition is the same, so trying again settles it
        for attempt in range(10):
            try:
                with self.datastore.get_connection() as conn, conn.cursor() as curs:
                    curs.execute(self._create_function)
                return
            except Exception:
                if attempt == 9:
                    raise
                time.sleep(0.05 * (attempt + 1))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library's insert_events
    def insert_events(self, stored_events: Sequence[StoredEvent], **_: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        params = (
            [e.originator_id for e in stored_events], [e.originator_version for e in stored_events],
            [e.topic for e in stored_events], [e.state for e in stored_events],
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._call, params, prepare=True)
            return [row[FUNCTION] for row in curs.fetchall()]


