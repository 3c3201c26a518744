"""The audit read model's queries (filters, newest-first paging, inclusive time bounds) on SQLite and MongoDB."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from adapters.event_store import sqlite_event_store
from adapters.mongo_documents import MongoDocumentStore
from adapters.sqlite_documents import SqliteDocumentStore
from commands.audit import AuditRecorder, Denial, record_membership_change
from commands.bus import Actor, CommandBus
from commands.messages import DefineQueue
from infra.server import Server
from projections.audit import AUDIT, list_audit
from projections.folding import fold_batch
from projections.ports import DocumentStore
from tests.integration.store.test_document_store_contract import mongo_uri


class Clock:
    """Moved by hand; starts an hour ahead, so the refusals are the newest entries."""

    def __init__(self) -> None:
        self.now = time.time() + 3600

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "mongo"])
def documents(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    if request.param == "sqlite":
        sqlite = SqliteDocumentStore(tmp_path / "views.db", (AUDIT,))
        yield sqlite
        sqlite.close()
        return
    server: Server = request.getfixturevalue("ferretdb_server")
    mongo = MongoDocumentStore(mongo_uri(server), f"audit_{uuid.uuid4().hex[:12]}", (AUDIT,))
    try:
        yield mongo
    finally:
        mongo.client.drop_database(mongo.db.name)
        mongo.close()


@pytest.mark.integration
def test_audit_queries_behave_the_same_on_every_store(documents: DocumentStore, tmp_path: Path) -> None:
    store = sqlite_event_store(tmp_path / "events.db")
    try:
        CommandBus(store).dispatch(DefineQueue(key="intake", name="Intake"), Actor("root", "acme", ("admin",)))
        clock = Clock()
        recorder = AuditRecorder(store, clock=clock, background=False)
        for user in ("alice", "carol", "alice"):
            clock.now += 61  # each in its own window
            recorder.denied(Denial(Actor(user, "acme", ("caseworker",)), "CloseCase", ("case:1",),
                                   ("only the assignee closes",), "forbidden", str(uuid.uuid4()), "corr"))
            recorder.flush()
        record_membership_change(store, "acme", "carol", {"roles": ["viewer"]}, {"roles": ["caseworker"]},
                                 "root", "cli")
        record_membership_change(store, "globex", "mallory", {}, {"roles": ["admin"]}, "root", "cli")
        documents.write(fold_batch((AUDIT,), store.read(0, 1000), documents.get_many))
    finally:
        store.close()

    everything = list_audit(documents, "acme").items
    assert [(d["kind"], d["actor"]) for d in everything] == [
        ("denied", "alice"), ("denied", "carol"), ("denied", "alice"), ("membership", "root"), ("admin", "root"),
    ]
    assert [d["actor"] for d in list_audit(documents, "acme", kind="denied", actor="alice").items] == ["alice"] * 2
    assert [d["tenant"] for d in list_audit(documents, "globex").items] == ["globex"]
    pages, cursor = [], None
    while True:
        page = list_audit(documents, "acme", limit=2, cursor=cursor)
        pages.extend(page.items)
        if (cursor := page.next_cursor) is None:
            break
    assert pages == everything
    denials = [d for d in everything if d["kind"] == "denied"]
    middle = datetime.fromisoformat(denials[1]["at"])
    assert list_audit(documents, "acme", kind="denied", until=middle).items == denials[1:]
    assert list_audit(documents, "acme", kind="denied", since=middle).items == denials[:2]
    assert list_audit(documents, "acme", kind="denied", since=middle + timedelta(microseconds=1)).items == denials[:1]
