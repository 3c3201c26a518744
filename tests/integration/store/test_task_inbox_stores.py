"""The task inbox on both document stores: SQLite and MongoDB (FerretDB v1) hold the same task documents and
answer every inbox view the same (the group view's `|group|` text match included)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.event_store import sqlite_event_store
from adapters.mongo_documents import MongoDocumentStore
from adapters.sqlite_documents import SqliteDocumentStore
from commands import messages as m
from commands.bus import Actor, CommandBus
from domain.events import Positioned
from infra.server import Server
from projections.folding import fold_batch
from projections.ports import DocumentStore
from projections.task_queries import get_task, list_tasks
from projections.tasks import TASKS
from tests.integration.store.test_document_store_contract import mongo_uri

BOSS = Actor("boss", "acme", ("supervisor",))
DAN = Actor("dan", "acme", ("caseworker", "claims"))
GINA = Actor("gina", "globex", ("supervisor", "claims"))
FORM: dict[str, Any] = {  # keys a MongoDB document may not hold as they are
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"a.b": {"type": "number"}, "$x": {"type": "array", "items": {"type": "array"}}},
}


def _log(path: Path) -> list[Positioned]:
    store = sqlite_event_store(path)
    try:
        bus = CommandBus(store)
        for actor in (BOSS, GINA):
            bus.dispatch(m.PublishCaseDefinition(key="claim", name="Claim", schema={"type": "object"},
                                                 stages=[m.StageIn(key="new")]), actor)
            case = UUID(bus.dispatch(m.OpenCase(definition_key="claim", title="Roof", data={}), actor).id)
            ids = []
            for n in range(6):
                ids.append(UUID(bus.dispatch(m.CreateTask(
                    case_id=case, title=f"{actor.tenant}-{n}", priority=n * 10,
                    candidate_groups=[["claims"], ["fraud"], ["claims", "under_writing"], []][n % 4],
                    assignee="dan" if n == 5 else None, form_schema=FORM if n == 0 else None,
                    due_at=datetime(2026, 12, 1 + n % 3, tzinfo=UTC) if n % 2 else None,
                ), actor).id))
            bus.dispatch(m.ClaimTask(task_id=ids[2]), actor)
            bus.dispatch(m.CompleteTask(task_id=ids[2], data={"a.b": 1, "$x": [[1, 2]]}), actor)
            bus.dispatch(m.CancelTask(task_id=ids[4], reason="dup"), actor)
        batch, _last = store.read_batch(0, 100_000, frozenset(t.type_name() for t in TASKS.folds))
        return batch
    finally:
        store.close()


def _views(store: DocumentStore) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for actor in (DAN, GINA, Actor("uwe", "acme", ("under_writing", "fraud"))):
        for view in ("mine", "groups", "unassigned", "all"):
            for sort in ("due_at", "priority", "created_at"):
                page = list_tasks(store, actor.tenant, actor.user, actor.roles, view=view, sort=sort, limit=2)
                pages = [page.items]
                while page.next_cursor:
                    page = list_tasks(store, actor.tenant, actor.user, actor.roles, view=view, sort=sort, limit=2,
                                      cursor=page.next_cursor)
                    pages.append(page.items)
                out[f"{actor.user}/{view}/{sort}"] = pages
    return out


@pytest.mark.integration
def test_sqlite_and_mongo_answer_the_inbox_alike(tmp_path: Path, ferretdb_server: Server) -> None:
    log = _log(tmp_path / "events.db")
    sqlite = SqliteDocumentStore(tmp_path / "views.db", [TASKS])
    mongo = MongoDocumentStore(mongo_uri(ferretdb_server), f"tasks_{uuid.uuid4().hex[:12]}", [TASKS])
    try:
        for target, size in ((sqlite, 5), (mongo, 3)):
            for start in range(0, len(log), size):
                batch = log[start : start + size]
                target.write(fold_batch([TASKS], batch, target.get_many), ("inbox", batch[-1].position))
        keys = sorted({str(p.event.aggregate_id) for p in log})
        assert len(keys) == 12
        assert mongo.get_many("tasks", keys) == sqlite.get_many("tasks", keys)
        views = _views(sqlite)
        assert _views(mongo) == views
        # spot checks written from the log above, not from either store
        flat = {name: [d["title"] for page in pages for d in page] for name, pages in views.items()}
        assert flat["uwe/groups/priority"] == ["acme-5", "acme-1"]  # fraud; its under_writing task is completed
        assert flat["dan/groups/priority"] == ["acme-0"]  # claims: the others are completed or cancelled
        assert flat["dan/mine/due_at"] == ["acme-5"]
        assert flat["gina/mine/due_at"] == []  # her one claimed task is completed
        assert flat["gina/unassigned/priority"] == ["globex-3", "globex-1", "globex-0"]
        assert flat["gina/unassigned/due_at"] == ["globex-3", "globex-1", "globex-0"]  # no due date last
        first = next(p.event for p in log if p.event.tenant == "acme")
        completed = get_task(mongo, "acme", str(first.aggregate_id))
        assert completed["form_schema"] == FORM
    finally:
        sqlite.close()
        mongo.client.drop_database(mongo.db.name)
        mongo.close()
