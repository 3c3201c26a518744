"""Fixtures of the Kafka tests (defined in support_worker.py): fresh topics, a fresh MongoDB database, a
PostgreSQL event store. A module's own fixture of the same name takes precedence."""

from tests.integration.kafka.support_worker import (  # noqa: F401
    bootstrap,
    database,
    documents,
    event_store,
    mongo_url,
    prefix,
)
