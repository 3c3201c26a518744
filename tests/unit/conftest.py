"""Platform-free fixtures for the core: a SQLite event store, the command bus, read models and an in-process runner.

Nothing here starts a server. The runner is driven synchronously with `runner.catch_up()`.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore, sqlite_event_store
from adapters.sqlite_documents import SqliteDocumentStore
from commands.bus import Actor, CommandBus, Result
from commands.messages import OpenCase, PublishCaseDefinition, StageIn
from domain.definition import DefinitionSpec, Stage
from domain.events import Context
from projections.catalog import ALL, VERSION_MARK

TENANT = "acme"
OTHER_TENANT = "globex"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

CLAIM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["amount"],
    "properties": {
        "amount": {"type": "number", "minimum": 0},
        "customer": {"type": "string"},
        "details": {"type": "object"},
    },
}
# new -> review -> done, and back from review to new
CLAIM_STAGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("new", "New", ("review",)),
    ("review", "In review", ("new", "done")),
    ("done", "Done", ()),
)
CLAIM_QUEUES = ("intake", "fraud")
CLAIM_STATUSES = ("approved", "rejected")
ALLOWED_MOVES = {(src, dst) for src, _name, targets in CLAIM_STAGES for dst in targets}
STAGE_KEYS = tuple(key for key, _name, _targets in CLAIM_STAGES)


def claim_definition(key: str = "claim", prefix: str = "CLAIM", **overrides: Any) -> PublishCaseDefinition:
    """The small test definition as a command (overrides replace any field)."""
    fields: dict[str, Any] = {
        "key": key,
        "name": "Insurance claim",
        "schema": CLAIM_SCHEMA,
        "stages": [StageIn(key=k, name=n, transitions=list(t)) for k, n, t in CLAIM_STAGES],
        "statuses": list(CLAIM_STATUSES),
        "queues": list(CLAIM_QUEUES),
        "card_fields": ["amount", "customer"],
        "number_prefix": prefix,
    }
    fields.update(overrides)
    return PublishCaseDefinition(**fields)


def claim_spec(key: str = "claim", prefix: str = "CLAIM") -> DefinitionSpec:
    """The same definition as a domain spec (for aggregate-level tests without a bus)."""
    return DefinitionSpec(
        key=key,
        name="Insurance claim",
        schema=CLAIM_SCHEMA,
        stages=tuple(Stage(k, n, t) for k, n, t in CLAIM_STAGES),
        statuses=CLAIM_STATUSES,
        queues=CLAIM_QUEUES,
        card_fields=("amount", "customer"),
        number_prefix=prefix,
    )


def publish_claim(bus: CommandBus, actor: Actor, key: str = "claim", prefix: str = "CLAIM", **overrides: Any) -> Result:
    return bus.dispatch(claim_definition(key, prefix, **overrides), actor)


def open_claim(
    bus: CommandBus, actor: Actor, title: str = "Broken window", amount: float = 100, definition_key: str = "claim",
    **data: Any,
) -> Result:
    return bus.dispatch(OpenCase(definition_key=definition_key, title=title, data={"amount": amount, **data}), actor)


def make_ctx(
    actor: str = "alice", tenant: str = TENANT, roles: tuple[str, ...] = ("caseworker",), now: datetime | None = None,
) -> Context:
    """A Context for calling aggregates directly."""
    command_id = str(uuid.uuid4())
    return Context(actor, tenant, command_id, command_id, command_id, now or datetime.now(UTC), roles)


class Clock:
    """Hands out strictly increasing, known timestamps (one minute apart)."""

    def __init__(self, start: datetime = T0) -> None:
        self.current = start

    def tick(self) -> datetime:
        self.current += timedelta(minutes=1)
        return self.current


def snapshot(documents: SqliteDocumentStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read-model table (tombstones and positions included) plus tracking (without the read
    models' version mark, which a reset by hand drops and the runner's start writes again)."""
    conn = sqlite3.connect(documents.path)
    try:
        out = {
            name: [tuple(r) for r in conn.execute(f"SELECT key, tenant, position, doc FROM {name} ORDER BY key")]
            for name in documents.projections
        }
        out["tracking"] = [tuple(r) for r in conn.execute(
            "SELECT name, position FROM tracking WHERE name != ? ORDER BY name", (VERSION_MARK,)
        )]
        return out
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecorderEventStore]:
    event_store = sqlite_event_store(tmp_path / "events.db")
    yield event_store
    event_store.close()


@pytest.fixture
def bus(store: RecorderEventStore) -> CommandBus:
    return CommandBus(store)


@pytest.fixture
def alice() -> Actor:
    return Actor("alice", TENANT, ("caseworker",))


@pytest.fixture
def carol() -> Actor:
    return Actor("carol", TENANT, ("caseworker",))


@pytest.fixture
def bob() -> Actor:
    """A supervisor of the same tenant."""
    return Actor("bob", TENANT, ("supervisor",))


@pytest.fixture
def mallory() -> Actor:
    """A user of another tenant."""
    return Actor("mallory", OTHER_TENANT, ("caseworker",))


@pytest.fixture
def claim(bus: CommandBus, alice: Actor) -> Result:
    """The claim definition published in tenant acme."""
    return publish_claim(bus, alice)


@pytest.fixture
def documents(tmp_path: Path) -> Iterator[SqliteDocumentStore]:
    docs = SqliteDocumentStore(tmp_path / "views.db", ALL)
    yield docs
    docs.close()


@pytest.fixture
def runner(store: RecorderEventStore, documents: SqliteDocumentStore) -> EmbeddedRunner:
    """Not started: tests call `runner.catch_up()` to fold the log synchronously."""
    return EmbeddedRunner(store, documents, ALL)
