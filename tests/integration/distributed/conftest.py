"""Fixtures for the distributed-mode tests: a fresh PostgreSQL database and fresh Kafka topics per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from adapters.contract import topics
from adapters.event_store import RecorderEventStore
from infra.server import Server
from tests.postgres_store import postgres_store, scratch_database


@pytest.fixture
def bootstrap(kafka_server: Server) -> str:
    return kafka_server.info()["bootstrap"]


@pytest.fixture
def pg_database(postgres_server: Server) -> Iterator[str]:
    """A database of its own for one test (dropped afterwards); yields its name."""
    with scratch_database(postgres_server, "dist") as name:
        yield name


@pytest.fixture
def pg_store(postgres_server: Server, pg_database: str) -> Iterator[RecorderEventStore]:
    store = postgres_store(postgres_server, pg_database)
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
