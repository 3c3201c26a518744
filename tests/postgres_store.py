"""A PostgreSQL event store in a database of its own, for one test (the distributed mode's store)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from adapters.event_store import RecorderEventStore, postgres_event_store
from infra.postgres import PostgresServer
from infra.server import Server


@contextmanager
def scratch_database(server: Server, stem: str) -> Iterator[str]:
    """Create a database named `<stem>_<random>`, yield its name, drop it afterwards (closing what is left open)."""
    assert isinstance(server, PostgresServer)
    name = f"{stem}_{uuid.uuid4().hex[:8]}"
    server.create_database(name)
    try:
        yield name
    finally:
        with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def postgres_store(server: Server, dbname: str) -> RecorderEventStore:
    """The event store on database dbname of server (a pool of 4 connections)."""
    info = server.info()
    return postgres_event_store(host=info["host"], port=int(info["port"]), dbname=dbname, user=info["user"],
                                password=info["password"], pool_size=4)
