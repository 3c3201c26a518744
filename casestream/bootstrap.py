"""The composition root: builds the adapters for the configured mode and wires them together."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore, postgres_event_store, sqlite_event_store
from adapters.issuer import BuiltinIssuer
from adapters.sqlite_documents import SqliteDocumentStore
from casestream.settings import Settings
from commands.bus import CommandBus
from projections.catalog import ALL


@dataclass
class Platform:
    """Everything an entrypoint needs, built once at start-up."""

    settings: Settings
    store: RecorderEventStore
    bus: CommandBus
    documents: SqliteDocumentStore
    runner: EmbeddedRunner
    issuer: BuiltinIssuer

    def close(self) -> None:
        self.runner.stop()
        self.documents.close()
        self.store.close()


def build_event_store(settings: Settings) -> RecorderEventStore:
    if settings.event_store == "postgres":
        return postgres_event_store(
            host=settings.postgres_host, port=settings.postgres_port, dbname=settings.postgres_db,
            user=settings.postgres_user, password=settings.postgres_password,
            pool_size=settings.postgres_pool_size, schema=settings.postgres_schema,
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return sqlite_event_store(settings.events_path, synchronous=settings.sqlite_synchronous)


def bootstrap(settings: Settings | None = None, *, start_runner: bool = True) -> Platform:
    """Build the platform for settings (read from the environment when None)."""
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = build_event_store(settings)
    documents = SqliteDocumentStore(settings.views_path, ALL)
    runner = EmbeddedRunner(store, documents, ALL, batch_size=settings.runner_batch_size)
    issuer = BuiltinIssuer(settings.key_path, settings.base_url, settings.audience, settings.token_ttl_seconds)
    platform = Platform(settings, store, CommandBus(store), documents, runner, issuer)
    if start_runner:
        runner.start()
    return platform
