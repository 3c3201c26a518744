"""The demo loader: only commands, only allowed transitions, idempotent, varied and reproducible."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore, sqlite_event_store
from adapters.sqlite_documents import SqliteDocumentStore
from casestream.demo import DemoSummary, load_demo
from commands.bus import CommandBus
from domain import case as c
from domain.definition import CaseDefinition, definition_id
from projections.catalog import ALL
from projections.queries import list_cases, list_collection

TENANT = "acme"


@dataclass
class Loaded:
    store: RecorderEventStore
    bus: CommandBus
    documents: SqliteDocumentStore
    summary: DemoSummary
    cases: list[dict[str, Any]]
    progress: list[tuple[int, int]]


def _all_cases(documents: SqliteDocumentStore, tenant: str = TENANT) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = list_cases(documents, tenant, sort="number", descending=False, limit=200, cursor=cursor)
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def _load(tmp: Path, cases: int, **kwargs: Any) -> Loaded:
    store = sqlite_event_store(tmp / "events.db")
    bus = CommandBus(store)
    progress: list[tuple[int, int]] = []
    summary = load_demo(bus, cases=cases, progress=lambda done, total: progress.append((done, total)), **kwargs)
    documents = SqliteDocumentStore(tmp / "views.db", ALL)
    EmbeddedRunner(store, documents, ALL).catch_up()
    return Loaded(store, bus, documents, summary, _all_cases(documents), progress)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    result = _load(tmp_path_factory.mktemp("demo"), 240)
    yield result
    result.documents.close()
    result.store.close()


def test_loads_definitions_and_cases(loaded: Loaded) -> None:
    summary = loaded.summary
    assert summary.definitions >= 3
    assert summary.cases == 240
    assert summary.repeated == 0
    assert 10 <= summary.commands / summary.cases <= 16
    assert len(loaded.cases) == 240
    assert all(n > 20 for n in summary.by_definition.values())
    assert loaded.progress[-1] == (240, 240)
    assert len(loaded.progress) == 240

    definitions = list_collection(loaded.documents, "definitions", TENANT)
    assert {d["key"] for d in definitions} >= {"claim", "complaint", "onboarding"}
    for definition in definitions:
        spec = definition["latest"]
        assert spec["schema"]["required"] and spec["ui_schema"] and spec["card_fields"] and spec["statuses"]
        assert any(s["transitions"] for s in spec["stages"])
    queues = {q["key"] for q in list_collection(loaded.documents, "queues", TENANT)}
    assert queues >= {"intake", "claims-team", "fraud", "complaints", "onboarding"}
    record_types = {r["key"] for r in list_collection(loaded.documents, "record_types", TENANT)}
    assert record_types >= {"product", "country"}


def test_every_stage_move_is_allowed_by_the_pinned_definition(loaded: Loaded) -> None:
    definitions = {
        key: CaseDefinition.replay(definition_id(TENANT, key), loaded.store.events_of(definition_id(TENANT, key)))
        for key in ("claim", "complaint", "onboarding")
    }
    moves = 0
    back_edges = 0
    for doc in loaded.cases:
        events = loaded.store.events_of(UUID(doc["id"]))
        opened = events[0]
        assert isinstance(opened, c.CaseOpened)
        spec = definitions[opened.definition_key].spec(opened.definition_version)
        order = [s.key for s in spec.stages]
        stage = opened.stage
        assert stage == spec.initial_stage
        for event in events[1:]:
            if isinstance(event, c.CaseMovedToStage):
                current = spec.stage(stage)
                assert current is not None
                assert event.from_stage == stage
                assert event.to_stage in current.transitions, (doc["number"], stage, event.to_stage)
                back_edges += order.index(event.to_stage) < order.index(stage)
                stage = event.to_stage
                moves += 1
        assert doc["stage"] == stage
    assert moves > 500
    assert back_edges > 10


def test_case_numbers_are_unique_and_gap_free_per_definition(loaded: Loaded) -> None:
    numbers: dict[str, list[str]] = defaultdict(list)
    for doc in loaded.cases:
        numbers[doc["definition_key"]].append(doc["number"])
    for key, items in numbers.items():
        assert len(items) == len(set(items)), key
        prefix = items[0].split("-")[0]
        assert sorted(items) == [f"{prefix}-{n:06d}" for n in range(1, len(items) + 1)]


def test_histories_are_varied(loaded: Loaded) -> None:
    docs = loaded.cases
    status = Counter(d["status"] for d in docs)
    assert status["open"] > 50 and status["closed"] > 30 and status["archived"] > 5
    assert len({d["stage"] for d in docs}) > 10
    assert {d["resolution"] for d in docs if d["status"] != "open"} - {None}
    assert len({d["assignee"] for d in docs} - {None}) >= 3
    assert len({d["queue"] for d in docs} - {None}) >= 4
    assert all(" — " in d["title"] for d in docs)
    assert any(d["definition_key"] == "complaint" and d["definition_version"] == 2 for d in docs)
    assert any(d["definition_key"] == "complaint" and d["definition_version"] == 1 for d in docs)

    types: Counter[str] = Counter()
    actors: set[str] = set()
    for doc in docs:
        for event in loaded.store.events_of(UUID(doc["id"])):
            types[type(event).__name__] += 1
            actors.add(event.meta.actor)
    assert actors == {"alice", "bob", "carol", "admin"}
    for name in ("CaseDataChanged", "CaseAssigned", "CaseUnassigned", "CaseQueued", "CommentAdded",
                 "CommentEdited", "CommentDeleted", "CaseClosed", "CaseReopened", "CaseArchived", "CaseRetitled"):
        assert types[name] > 0, name
    assert types["CaseReopened"] >= 5

    full = [loaded.documents.get("cases", d["id"]) for d in docs]
    comments = [cm for found in full if found and found[0] for cm in found[0]["comments"]]
    assert any(cm["parent_id"] for cm in comments)


def test_loading_again_stores_nothing(loaded: Loaded) -> None:
    before = loaded.store.max_position()
    again = load_demo(loaded.bus, cases=240)
    assert loaded.store.max_position() == before
    assert again.commands == loaded.summary.commands
    assert again.repeated == again.commands
    assert again.stored == 0


def test_same_seed_same_data_and_larger_loads_extend_smaller_ones(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _load(tmp_path / "a", 12)
    b = _load(tmp_path / "b", 12)
    strip = ("id", "opened_at", "updated_at", "position")
    assert [{k: v for k, v in d.items() if k not in strip} for d in a.cases] == [
        {k: v for k, v in d.items() if k not in strip} for d in b.cases
    ]
    # a bigger load on top of a smaller one (same seed) repeats the first cases and adds the rest
    bigger = load_demo(a.bus, cases=20)
    assert bigger.repeated == a.summary.commands
    assert bigger.stored > 0
    # another seed in another tenant loads independently
    other = load_demo(a.bus, tenant="globex", cases=5, seed=11)
    assert other.repeated == 0
    for loaded in (a, b):
        loaded.documents.close()
        loaded.store.close()
