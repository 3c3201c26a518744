"""Fixtures for the distributed-mode tests: a fresh PostgreSQL database and fresh Kafka topics per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from adapters.contract import topics
from adapters.event_store import RecorderEventStore, postgres_event_store
from infra.postgres import PostgresServer
from infra.server import Server


@pytest.fixture
def bootstrap(kafka_server: Server) -> str:
    return kafka_server.info()["bootstrap"]


@pytest.fixture
def pg_database(postgres_server: Server) -> Iterator[str]:
    """A database of its own for one test (dropped afterwards); yields its name."""
    assert isinstance(postgres_server, PostgresServer)
    name = f"dist_{uuid.uuid4().hex[:8]}"
    postgres_server.create_database(name)
    try:
        yield name
    finally:
        with psycopg.connect(postgres_server.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def pg_store(postgres_server: Server, pg_database: str) -> Iterator[RecorderEventStore]:
    info = postgres_server.info()
    store = postgres_event_store(
        host=info["host"], port=int(info["port"]), dbname=pg_database, user=info["user"],
        password=info["password"], pool_size=4,
    )
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
async def prefix(bootstrap: str) -> AsyncIterator[str]:
    """A topic prefix of its own (the relay creates the topics; they are deleted afterwards)."""
    name = f"d{uuid.uuid4().hex[:10]}"
    yield name
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        present = set(await admin.list_topics()) & set(topics(name).values())
        if present:
            await admin.delete_topics(sorted(present))
    finally:
        await admin.close()
