"""The published event contract: committed schemas stay compatible unless class_version is bumped.

`test_committed_schemas_are_compatible_with_the_code` is the gate: removing, renaming or retyping a payload field,
or adding a required one, under the same class_version fails here. The tests below it prove the check catches
each such change (on a deliberately changed copy of a real event) and lets an optional field or a bump through.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
from typer.testing import CliRunner

from adapters import cloudevents
from adapters.contract import (
    asyncapi,
    event_schema,
    event_schemas,
    export,
    incompatibilities,
    load_committed,
    published_types,
    rendered,
    schema_key,
    topic_config,
    topics,
)
from adapters.event_store import RecorderEventStore
from casestream.cli_distributed import register
from commands import messages as m
from commands.bus import Actor, CommandBus
from domain.events import EVENT_TYPES
from tests.unit.conftest import open_claim, publish_claim

CONTRACT_DIR = Path(__file__).resolve().parents[2] / "docs" / "contract"


def test_committed_schemas_are_compatible_with_the_code() -> None:
    problems = incompatibilities(load_committed(CONTRACT_DIR), event_schemas())
    assert not problems, "\n".join(problems)


def test_committed_contract_is_up_to_date() -> None:
    stale = [
        relative for relative, content in rendered().items()
        if not (CONTRACT_DIR / relative).exists() or (CONTRACT_DIR / relative).read_text() != content
    ]
    assert not stale, f"docs/contract is out of date ({', '.join(stale)}): run `casestream contract export`"


def test_every_event_type_is_published_or_internal_by_decision() -> None:
    families = published_types()  # raises for an event type in no family
    internal = set(EVENT_TYPES) - set(families)
    assert internal == {"CommandHandled", "CaseNumberIssued", "ProcessMessagePublished",
                        "ProcessMessageCorrelated", "ProcessMessageUnmatched", "ProcessOperationRequested",
                        "ProcessOperationApplied", "ProcessOperationRefused", "ProcessSignalBroadcast",
                        "ProcessSignalDelivered"}
    assert set(topics().values()) == {
        "casestream.case.v1", "casestream.definition.v1", "casestream.reference.v1", "casestream.task.v1",
        "casestream.process.v1", "casestream.audit.v1", "casestream.document.v1", "casestream.email.v1",
        "casestream.deployment.v1",
    }
    assert topics()["ProcessDeployed"] == "casestream.deployment.v1"
    assert topic_config("casestream.deployment.v1") == {"max.message.bytes": str(16 * 1024 * 1024)}
    assert topic_config("casestream.case.v1") == {}
    assert topics()["CommentAdded"] == topics()["CaseOpened"] == "casestream.case.v1"


# --- the check catches breaking changes --------------------------------------------------------------

def _variant(name: str, fields: list[tuple[str, Any] | tuple[str, Any, Any]], version: int = 1) -> type:
    """A stand-in event class with the given payload fields (not registered as a domain event)."""
    cls = dataclasses.make_dataclass(name, fields, frozen=True, kw_only=True)
    cls.class_version = version  # type: ignore[attr-defined]
    cls.__doc__ = "A deliberately changed copy."
    return cls


CASE_OPENED_FIELDS: list[Any] = [
    ("definition_key", str), ("definition_version", int), ("number", str), ("title", str),
    ("data", dict[str, Any]), ("stage", str),
]


def _generated_with(variant: type) -> dict[str, dict[str, Any]]:
    generated = {k: v for k, v in event_schemas().items() if not k.startswith(f"{variant.__name__}.v")}
    generated[schema_key(variant.__name__, variant.class_version)] = event_schema(variant)  # type: ignore[attr-defined]
    return generated


def test_the_stand_in_reproduces_the_committed_schema_exactly() -> None:
    variant = _variant("CaseOpened", CASE_OPENED_FIELDS)
    assert event_schema(variant)["properties"]["data"] == load_committed(CONTRACT_DIR)["CaseOpened.v1"][
        "properties"]["data"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param([f for f in CASE_OPENED_FIELDS if f[0] != "stage"], "data.stage was removed", id="removed"),
        pytest.param([("case_title" if f[0] == "title" else f[0], f[1]) for f in CASE_OPENED_FIELDS],
                     "data.title was removed", id="renamed"),
        pytest.param([(f[0], str if f[0] == "definition_version" else f[1]) for f in CASE_OPENED_FIELDS],
                     "data.definition_version changed type", id="retyped"),
        pytest.param([(f[0], f[1] | None if f[0] == "number" else f[1]) for f in CASE_OPENED_FIELDS],
                     "data.number changed type", id="made-nullable"),
        pytest.param([*CASE_OPENED_FIELDS, ("priority", str)], "data.priority is a new required field",
                     id="added-required"),
        pytest.param([("data", list[Any]) if f[0] == "data" else f for f in CASE_OPENED_FIELDS],
                     "data.data changed type", id="object-to-array"),
    ],
)
def test_an_incompatible_change_without_a_version_bump_fails(fields: list[Any], expected: str) -> None:
    variant = _variant("CaseOpened", fields)
    problems = incompatibilities(load_committed(CONTRACT_DIR), _generated_with(variant))
    assert any(expected in p and p.startswith("CaseOpened.v1:") for p in problems), problems
    # ...and the same change with class_version bumped starts a new contract: accepted
    bumped = _variant("CaseOpened", fields, version=2)
    assert incompatibilities(load_committed(CONTRACT_DIR), _generated_with(bumped)) == []


def test_adding_an_optional_field_is_compatible() -> None:
    variant = _variant("CaseOpened", [*CASE_OPENED_FIELDS, ("priority", str | None, dataclasses.field(default=None))])
    assert incompatibilities(load_committed(CONTRACT_DIR), _generated_with(variant)) == []
    # a consumer validating with the old schema still accepts the new event
    old = load_committed(CONTRACT_DIR)["CaseOpened.v1"]["properties"]["data"]
    jsonschema.validate({"definition_key": "k", "definition_version": 1, "number": "N-1", "title": "t", "data": {},
                         "stage": "new", "priority": "high"}, old)


def test_a_removed_event_type_or_a_lower_version_fails() -> None:
    committed = load_committed(CONTRACT_DIR)
    generated = {k: v for k, v in event_schemas().items() if not k.startswith("CaseArchived.")}
    assert "CaseArchived: published event type removed from the contract" in incompatibilities(committed, generated)
    lowered = _generated_with(_variant("CommentAdded", [("comment_id", str), ("body", str)], version=1))
    assert any("below the published v2" in p for p in incompatibilities(committed, lowered))


def test_export_refuses_a_breaking_change_and_keeps_older_versions(tmp_path: Path) -> None:
    folder = tmp_path / "contract"
    shutil.copytree(CONTRACT_DIR, folder)
    committed = folder / "schemas" / "CaseOpened.v1.json"
    schema = json.loads(committed.read_text())
    schema["properties"]["data"]["properties"]["legacy"] = {"type": "string"}  # the code no longer has it
    committed.write_text(json.dumps(schema))
    older = folder / "schemas" / "CommentAdded.v1.json"
    older.write_text("{}")

    with pytest.raises(ValueError, match=r"CaseOpened\.v1: data\.legacy was removed"):
        export(folder)
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["contract", "export", "--out", str(folder)])
    assert result.exit_code == 1
    assert "data.legacy was removed" in result.output

    export(folder, allow_breaking=True)
    assert json.loads(committed.read_text()) == event_schemas()["CaseOpened.v1"]
    assert older.exists()  # the contract of an earlier version stays documented


# --- the documents themselves ------------------------------------------------------------------------

def test_schemas_are_valid_and_stored_events_conform(
    bus: CommandBus, alice: Actor, store: RecorderEventStore,
) -> None:
    schemas = event_schemas()
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    publish_claim(bus, alice)
    bus.dispatch(m.DefineQueue(key="intake", name="Intake"), Actor("root", "acme", ("admin",)))
    case_id = uuid.UUID(open_claim(bus, alice).id)
    bus.dispatch(m.AddComment(case_id=case_id, body="hi"), alice)
    bus.dispatch(m.QueueCase(case_id=case_id, queue="intake"), alice)
    bus.dispatch(m.CloseCase(case_id=case_id, reason="done"), alice)
    checked = 0
    for item in store.read(0, 1000):
        name = type(item.event).__name__
        if name not in published_types():
            continue
        ce = json.loads(cloudevents.dumps(cloudevents.to_cloudevent(item.position, item.event)))
        validator = jsonschema.Draft202012Validator(
            schemas[schema_key(name, type(item.event).class_version)],
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )
        validator.validate(ce)
        checked += 1
    assert checked >= 6


def test_asyncapi_lists_every_topic_message_and_schema() -> None:
    doc = asyncapi()
    assert doc["asyncapi"] == "3.0.0"
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == set(topics().values())
    listed = [name for c in doc["channels"].values() for name in c["messages"]]
    assert sorted(listed) == sorted(published_types())  # each message in exactly one channel
    for channel in doc["channels"].values():
        assert channel["bindings"]["kafka"]["partitions"] >= 6
    for operation in doc["operations"].values():
        assert operation["action"] == "send"

    def resolve(ref: str) -> Any:
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [node["$ref"]] if "$ref" in node else [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        resolve(ref)  # every reference points into the document
    message = doc["components"]["messages"]["CommentAdded"]
    assert resolve(message["payload"]["$ref"])["properties"]["type"] == {"const": "casestream.CommentAdded.v2"}
    assert json.loads((CONTRACT_DIR / "asyncapi.json").read_text()) == doc

