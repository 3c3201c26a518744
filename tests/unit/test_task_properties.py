"""Hypothesis properties of tasks: random task commands against a reference model of the rules.

A refused command stores nothing; an accepted one is what the model predicts; the inbox document agrees with
the model after each command; folding the task events again (twice over) changes nothing in the inbox.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore, sqlite_event_store
from adapters.sqlite_documents import SqliteDocumentStore
from commands import messages as m
from commands.bus import Actor, CommandBus
from domain.errors import DomainError
from projections.folding import fold_batch
from projections.tasks import TASKS
from tests.unit.conftest import TENANT, claim_definition

ACTORS = {
    "alice": Actor("alice", TENANT, ("caseworker",)),
    "carol": Actor("carol", TENANT, ("caseworker",)),
    "dan": Actor("dan", TENANT, ("caseworker", "claims")),
    "bob": Actor("bob", TENANT, ("supervisor",)),
    "proc": Actor("process:p", TENANT, ("process",)),
}
MANAGERS = {"bob"}
FORM = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}


@dataclass
class ModelTask:
    """A task as the rules describe it (written from the rules, not from the aggregate)."""

    creator: str
    process: bool
    assignee: str | None
    groups: list[str]
    priority: int = 50
    status: str = "open"
    claimed_by: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ("open", "claimed")

    def may_manage(self, who: str) -> bool:
        return who in MANAGERS or who == "proc" or (not self.process and who == self.creator)


def predict(task: ModelTask, op: str, who: str, arg: Any) -> bool:
    """Whether the rules accept op by who on task (and, if so, apply it to the model)."""
    roles = set(ACTORS[who].roles)
    user = ACTORS[who].user
    if not task.active:
        return False
    if op == "claim":
        allowed = user == task.assignee or who in MANAGERS or bool(roles & set(task.groups)) or (
            task.assignee is None and not task.groups)
        if task.claimed_by is not None or not allowed:
            return False
        task.claimed_by, task.status = user, "claimed"
    elif op == "unclaim":
        if task.claimed_by is None or (user != task.claimed_by and who not in MANAGERS):
            return False
        task.claimed_by, task.status = None, "open"
    elif op == "complete":
        holder = task.claimed_by or task.assignee
        if (user != holder and who not in MANAGERS) or not arg:
            return False
        task.status = "completed"
    elif op == "cancel":
        if not task.may_manage(who):
            return False
        task.status = "cancelled"
    elif op == "priority":
        if not task.may_manage(who) or arg == task.priority:
            return False
        task.priority = arg
    elif op == "assign":
        if not task.may_manage(who) or arg == task.assignee:
            return False
        if arg is not None and task.claimed_by not in (None, arg):
            task.claimed_by, task.status = None, "open"
        task.assignee = arg
    return True


@dataclass
class World:
    tmp: Path
    store: RecorderEventStore = field(init=False)
    bus: CommandBus = field(init=False)
    documents: SqliteDocumentStore = field(init=False)
    runner: EmbeddedRunner = field(init=False)

    def __post_init__(self) -> None:
        self.store = sqlite_event_store(self.tmp / "events.db")
        self.bus = CommandBus(self.store)
        self.documents = SqliteDocumentStore(self.tmp / "views.db", [TASKS])
        self.runner = EmbeddedRunner(self.store, self.documents, [TASKS])

    def close(self) -> None:
        self.documents.close()
        self.store.close()


@contextmanager
def world() -> Iterator[World]:
    with tempfile.TemporaryDirectory(prefix="casestream-task-prop-") as tmp:
        w = World(Path(tmp))
        try:
            yield w
        finally:
            w.close()


def _command(op: str, task_id: UUID, arg: Any) -> m.Command:
    if op == "claim":
        return m.ClaimTask(task_id=task_id)
    if op == "unclaim":
        return m.UnclaimTask(task_id=task_id)
    if op == "complete":
        return m.CompleteTask(task_id=task_id, data={"ok": True} if arg else {"ok": "yes"})
    if op == "cancel":
        return m.CancelTask(task_id=task_id, reason="r")
    if op == "priority":
        return m.ChangeTaskPriority(task_id=task_id, priority=arg)
    return m.AssignTask(task_id=task_id, assignee=arg)


who = st.sampled_from(sorted(ACTORS))
creates = st.tuples(
    st.just("create"), who, st.sampled_from([None, "alice", "carol", "dan"]),
    st.sampled_from([[], ["claims"], ["fraud"]]),
)
ops = st.one_of(
    st.tuples(st.sampled_from(["claim", "unclaim", "cancel"]), who, st.integers(0, 2), st.none()),
    st.tuples(st.just("complete"), who, st.integers(0, 2), st.booleans()),
    st.tuples(st.just("priority"), who, st.integers(0, 2), st.sampled_from([50, 80])),
    st.tuples(st.just("assign"), who, st.integers(0, 2), st.sampled_from([None, "alice", "dan"])),
)
sequences = st.tuples(creates, st.lists(st.one_of(creates, ops, ops, ops), min_size=1, max_size=25))


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequences)
def test_task_commands_follow_the_rules_and_refusals_store_nothing(sequence: Any) -> None:
    first, rest = sequence
    with world() as w:
        admin = ACTORS["bob"]
        w.bus.dispatch(claim_definition(), admin)
        case_id = UUID(w.bus.dispatch(m.OpenCase(definition_key="claim", title="c", data={"amount": 1}), admin).id)
        tasks: list[tuple[UUID, ModelTask]] = []
        for step in [first, *rest]:
            before = w.store.max_position()
            if step[0] == "create":
                _op, name, assignee, groups = step
                process = name == "proc"
                command = m.CreateTask(
                    case_id=case_id, title="t", assignee=assignee, candidate_groups=groups, form_schema=FORM,
                    process_instance_key="pi" if process else None, element_id="e" if process else None,
                )
                result = w.bus.dispatch(command, ACTORS[name])
                tasks.append((UUID(result.id), ModelTask(ACTORS[name].user, process, assignee, groups)))
                continue
            op, name, index, arg = step
            task_id, model = tasks[index % len(tasks)]
            expected = predict(model, op, name, arg)
            try:
                w.bus.dispatch(_command(op, task_id, arg), ACTORS[name])
                accepted = True
            except DomainError:
                accepted = False
            assert accepted == expected, (op, name, arg, model)
            assert (w.store.max_position() > before) == accepted
        w.runner.catch_up()
        for task_id, model in tasks:
            found = w.documents.get("tasks", str(task_id))
            assert found is not None and found[0] is not None
            doc = found[0]
            assert (doc["status"], doc["assignee"], doc["claimed_by"], doc["priority"]) == (
                model.status, model.assignee, model.claimed_by, model.priority)
            assert doc["owner"] == (model.claimed_by or model.assignee)
        # replay: the whole log folded again over the inbox writes nothing; folded twice over from empty gives
        # the same documents as the runner built
        log = w.store.read(0, 10_000)
        assert fold_batch([TASKS], log, w.documents.get_many) == []
        rebuilt = fold_batch([TASKS], [*log, *log], lambda _c, _keys: {})
        assert {x.key: (x.doc, x.position) for x in rebuilt} == {
            x.key: w.documents.get("tasks", x.key) for x in rebuilt
        }
        assert len(rebuilt) == len(tasks)
