"""Row-level read authorization: the readable definitions filter every query; scopes are cached and refreshed."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore
from adapters.sqlite_documents import SqliteDocumentStore
from commands.bus import Actor, CommandBus
from commands.messages import CreateTask
from commands.policy import Decision
from domain.errors import Forbidden, NotFound
from projections import queries, task_queries
from projections.catalog import ALL, VERSION, VERSION_MARK
from projections.read_scope import ReadScope, ReadScopes
from tests.unit.conftest import TENANT, open_claim, publish_claim

SECRET = {"read_groups": ["fraud-team"]}


class GroupPolicy:
    """A hand-written stand-in for the Rego policy's read rules: roles read, read_groups restrict; counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def decide(self, request: Mapping[str, Any]) -> Decision:
        self.calls += 1
        subject, resource = request["subject"], request["resource"]
        if not subject["roles"]:
            return Decision(False, ("no role",))
        if request["action"] == "read_reference":
            return Decision(True)
        groups = resource.get("access", {}).get("read_groups", [])
        return Decision(not groups or bool(set(groups) & set(subject["groups"])), ("not in the group",))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(bus: CommandBus, alice: Actor, runner: EmbeddedRunner) -> dict[str, str]:
    """A public and a confidential definition, a case and a task in each (folded into the read models)."""
    publish_claim(bus, alice)
    publish_claim(bus, alice, "fraud", "FRAUD", access=SECRET)
    ids: dict[str, str] = {}
    for key in ("claim", "fraud"):
        case = open_claim(bus, alice, title=f"{key} window", definition_key=key)
        task = bus.dispatch(CreateTask(case_id=uuid.UUID(case.id), title=f"{key} check"), alice)
        ids[f"{key}_case"], ids[f"{key}_task"] = case.id, task.id
    runner.catch_up()
    return ids


def test_the_definitions_read_model_keeps_the_latest_access_rules(world: dict[str, str],
                                                                   documents: SqliteDocumentStore) -> None:
    found = {d["key"]: d["access"] for d in queries.list_collection(documents, "definitions", TENANT)}
    assert found == {"claim": {}, "fraud": SECRET}


def test_an_outsider_of_the_group_finds_nothing_of_the_confidential_definition(
    world: dict[str, str], documents: SqliteDocumentStore,
) -> None:
    scope = ReadScopes(documents, GroupPolicy()).of("carol", TENANT, ("caseworker",))
    assert scope.definitions == frozenset({"claim"})
    assert [c["id"] for c in queries.list_cases(documents, TENANT, scope=scope).items] == [world["claim_case"]]
    assert queries.list_cases(documents, TENANT, text="fraud window", scope=scope).items == []
    assert queries.list_cases(documents, TENANT, filters={"definition_key": "fraud"}, scope=scope).items == []
    assert queries.case_counts(documents, TENANT, scope=scope)["definition_key"] == {"claim": 1}
    assert queries.case_counts(documents, TENANT, "fraud", scope=scope)["status"] == {}
    for read in (lambda: queries.get_case(documents, TENANT, world["fraud_case"], scope),
                 lambda: queries.case_timeline(documents, TENANT, world["fraud_case"], scope),
                 lambda: queries.kanban(documents, TENANT, "fraud", scope=scope),
                 lambda: queries.get_definition(documents, TENANT, "fraud", scope),
                 lambda: task_queries.get_task(documents, TENANT, world["fraud_task"], scope)):
        with pytest.raises(NotFound):
            read()
    tasks = task_queries.list_tasks(documents, TENANT, "carol", ("caseworker",), view="all", scope=scope)
    assert [t["id"] for t in tasks.items] == [world["claim_task"]]
    assert [d["key"] for d in queries.list_collection(documents, "definitions", TENANT, scope)] == ["claim"]


def test_a_member_of_the_group_sees_both(world: dict[str, str], documents: SqliteDocumentStore) -> None:
    scope = ReadScopes(documents, GroupPolicy()).of("fay", TENANT, ("caseworker",), ("fraud-team",))
    assert scope.definitions == frozenset({"claim", "fraud"})
    assert len(queries.list_cases(documents, TENANT, scope=scope).items) == 2
    assert queries.get_case(documents, TENANT, world["fraud_case"], scope)["definition_key"] == "fraud"
    tasks = task_queries.list_tasks(documents, TENANT, "fay", ("caseworker",), view="all", scope=scope)
    assert {t["definition_key"] for t in tasks.items} == {"claim", "fraud"}


def test_no_role_reads_no_case_and_no_reference_data(world: dict[str, str], documents: SqliteDocumentStore) -> None:
    scope = ReadScopes(documents, GroupPolicy()).of("nobody", TENANT, ())
    assert scope.definitions == frozenset() and not scope.reference
    assert queries.list_cases(documents, TENANT, scope=scope).items == []
    assert queries.case_counts(documents, TENANT, scope=scope)["status"] == {}
    with pytest.raises(Forbidden):
        queries.list_collection(documents, "queues", TENANT, scope)


def test_without_a_policy_everything_of_the_tenant_is_readable(world: dict[str, str],
                                                                documents: SqliteDocumentStore) -> None:
    scope = ReadScopes(documents, None).of("carol", TENANT, ())
    assert scope == ReadScope.everything(TENANT)
    assert len(queries.list_cases(documents, TENANT, scope=scope).items) == 2


def test_a_scope_is_reused_until_a_definition_is_published_or_it_expires(
    world: dict[str, str], documents: SqliteDocumentStore, bus: CommandBus, alice: Actor, runner: EmbeddedRunner,
) -> None:
    policy, clock = GroupPolicy(), Clock()
    scopes = ReadScopes(documents, policy, ttl=5, clock=clock)
    first = scopes.of("carol", TENANT, ("caseworker",))
    asked = policy.calls
    assert asked == 3  # "read" per definition and "read_reference" once
    assert scopes.of("carol", TENANT, ("caseworker",)) is first and policy.calls == asked
    scopes.of("carol", TENANT, ("caseworker", "supervisor"))  # another subject is decided on its own
    assert policy.calls == 2 * asked
    # the public definition becomes confidential: in force for queries within the signature's 0.2 s, no restart
    publish_claim(bus, alice, access=SECRET)
    runner.catch_up()
    clock.now += 0.25
    assert scopes.of("carol", TENANT, ("caseworker",)).definitions == frozenset()
    calls = policy.calls
    clock.now += 6
    scopes.of("carol", TENANT, ("caseworker",))
    assert policy.calls == calls + asked


def test_read_models_of_an_older_shape_are_rebuilt_at_start(
    world: dict[str, str], store: RecorderEventStore, documents: SqliteDocumentStore,
) -> None:
    conn = sqlite3.connect(documents.path)
    try:
        # what an older version stored: tasks without their definition, no version mark
        row = conn.execute("SELECT doc FROM tasks WHERE key = ?", (world["fraud_task"],)).fetchone()
        old = {k: v for k, v in orjson.loads(row[0]).items() if k != "definition_key"}
        conn.execute("UPDATE tasks SET doc = ?, f_definition_key = NULL WHERE key = ?",
                     (orjson.dumps(old).decode(), world["fraud_task"]))
        conn.execute("DELETE FROM tracking WHERE name = ?", (VERSION_MARK,))
        conn.commit()
    finally:
        conn.close()
    runner = EmbeddedRunner(store, documents, ALL)
    assert runner.position == 0 and documents.tracking(VERSION_MARK) == VERSION
    runner.catch_up()
    assert task_queries.get_task(documents, TENANT, world["fraud_task"])["definition_key"] == "fraud"
    again = EmbeddedRunner(store, documents, ALL)  # the current shape: nothing to rebuild
    assert again.position == store.max_position()
