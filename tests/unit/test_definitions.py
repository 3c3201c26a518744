"""Case definitions: checks with field paths, versioning, pinning, tenant scoping; reference data aggregates."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from commands import messages as m
from domain import schema as schema_module
from domain.case import Case
from domain.definition import CaseDefinition, DefinitionSpec, Stage, definition_id
from domain.errors import (
    AlreadyExists,
    CaseNotOpen,
    InvalidStateChange,
    NotFound,
    StageTransitionNotAllowed,
    ValidationFailed,
    VersionConflict,
)
from domain.reference import Queue, Record, RecordType
from projections.queries import get_definition, list_collection
from tests.unit.conftest import CLAIM_SCHEMA, TENANT, claim_definition, claim_spec, make_ctx, open_claim, publish_claim


def _paths(err: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [e.path for e in err.value.errors]


def _spec(**changes) -> DefinitionSpec:  # type: ignore[no-untyped-def]
    base = claim_spec()
    return DefinitionSpec(**{**base.__dict__, **changes})


def test_valid_spec_passes_its_check():
    claim_spec().check()


@pytest.mark.parametrize(
    ("changes", "paths"),
    [
        ({"key": "Claim"}, ["key"]),
        ({"key": "c"}, ["key"]),
        ({"name": "  "}, ["name"]),
        ({"number_prefix": "claim"}, ["number_prefix"]),
        ({"stages": ()}, ["stages"]),
        ({"stages": (Stage("new", "New", ("gone",)),)}, ["stages[0].transitions[0]"]),
        ({"stages": (Stage("new", "New"), Stage("new", "Again"))}, ["stages[0].key", "stages[1].key"]),
        ({"stages": (Stage("New", "New"),)}, ["stages[0].key"]),
        ({"queues": ("intake", "Bad Queue")}, ["queues[1]"]),
    ],
    ids=["upper-key", "short-key", "blank-name", "lower-prefix", "no-stages", "unknown-target", "duplicate-stage",
         "bad-stage-key", "bad-queue"],
)
def test_spec_check_names_each_bad_field(changes, paths):
    with pytest.raises(ValidationFailed) as err:
        _spec(**changes).check()
    assert _paths(err) == paths


def test_spec_with_invalid_json_schema_is_refused_at_the_schema_path():
    with pytest.raises(ValidationFailed) as err:
        _spec(schema={"type": "object", "properties": {"amount": {"type": "money"}}}).check()
    assert _paths(err) == ["schema.properties.amount.type"]


def test_spec_round_trips_through_its_dict_form():
    spec = claim_spec()
    assert DefinitionSpec.from_dict(spec.to_dict()) == spec


def test_publish_creates_version_one_then_new_versions(bus, alice, store):
    first = publish_claim(bus, alice)
    assert (first.version, first.extra) == (1, {"definition_version": 1})
    assert first.id == str(definition_id(TENANT, "claim"))
    second = publish_claim(bus, alice, name="Claim v2")
    assert (second.version, second.extra) == (2, {"definition_version": 2})
    definition = CaseDefinition.replay(UUID(first.id), store.events_of(UUID(first.id)))
    assert [s.name for s in definition.specs] == ["Insurance claim", "Claim v2"]
    with pytest.raises(NotFound):
        definition.spec(3)


def test_publishing_an_identical_definition_is_refused(bus, alice, store):
    publish_claim(bus, alice)
    before = store.max_position()
    with pytest.raises(AlreadyExists):
        publish_claim(bus, alice)
    assert store.max_position() == before


def test_definition_key_cannot_change_on_the_aggregate():
    definition = CaseDefinition.create(make_ctx(), claim_spec())
    with pytest.raises(ValidationFailed) as err:
        definition.publish(make_ctx(), claim_spec(key="other"))
    assert _paths(err) == ["key"]


def test_publish_through_the_bus_refuses_bad_definition_with_field_paths(bus, alice, store):
    with pytest.raises(ValidationFailed) as err:
        bus.dispatch(claim_definition(queues=["intake", "NOPE"]), alice)
    assert _paths(err) == ["queues[1]"]
    assert store.max_position() == 0


def test_existing_cases_keep_their_definition_version_new_cases_get_the_latest(bus, alice, store):
    publish_claim(bus, alice)
    old = open_claim(bus, alice, amount=10)
    stricter = {**CLAIM_SCHEMA, "required": ["amount", "customer"]}
    publish_claim(bus, alice, schema=stricter, stages=[
        m.StageIn(key="new", name="New", transitions=["done"]), m.StageIn(key="done", name="Done"),
    ])
    # the old case still follows version 1: no customer needed, and new -> done is not allowed there
    bus.dispatch(m.UpdateCaseData(case_id=old.id, patch={"amount": 11}), alice)
    with pytest.raises(StageTransitionNotAllowed):
        bus.dispatch(m.MoveCaseToStage(case_id=old.id, stage="done"), alice)
    with pytest.raises(ValidationFailed) as verr:
        open_claim(bus, alice, amount=5)
    assert _paths(verr) == ["data.customer"]
    new = open_claim(bus, alice, amount=5, customer="Ann")
    bus.dispatch(m.MoveCaseToStage(case_id=new.id, stage="done"), alice)
    pinned = [Case.replay(UUID(r.id), store.events_of(UUID(r.id))).definition_version for r in (old, new)]
    assert pinned == [1, 2]


def test_definitions_are_per_tenant(bus, alice, mallory):
    publish_claim(bus, alice)
    with pytest.raises(NotFound):
        open_claim(bus, mallory)
    assert publish_claim(bus, mallory).extra == {"definition_version": 1}


def test_definition_read_model_keeps_every_version(bus, alice, documents, runner):
    publish_claim(bus, alice)
    publish_claim(bus, alice, name="Claim v2")
    runner.catch_up()
    doc = get_definition(documents, TENANT, "claim")
    assert (doc["key"], doc["name"], doc["latest_version"]) == ("claim", "Claim v2", 2)
    assert [v["version"] for v in doc["versions"]] == [1, 2]
    assert [s["key"] for s in doc["latest"]["stages"]] == ["new", "review", "done"]
    with pytest.raises(NotFound):
        get_definition(documents, "globex", "claim")


def test_expected_version_guards_definition_publish(bus, alice):
    publish_claim(bus, alice)
    with pytest.raises(VersionConflict):
        bus.dispatch(claim_definition(name="v2", expected_version=0), alice)
    assert bus.dispatch(claim_definition(name="v2", expected_version=1), alice).version == 2


@pytest.mark.usefixtures("claim")
def test_schema_validator_is_compiled_once_not_once_per_command(bus, alice, monkeypatch):
    """Each command replays the definition into a fresh schema dict; validators must still be reused."""
    opened = open_claim(bus, alice, amount=0)
    original = schema_module.Draft202012Validator
    built: list[int] = []

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        built.append(1)
        return original(*args, **kwargs)

    counting.FORMAT_CHECKER = original.FORMAT_CHECKER  # type: ignore[attr-defined]
    counting.check_schema = original.check_schema  # type: ignore[attr-defined]
    monkeypatch.setattr(schema_module, "Draft202012Validator", counting)
    for amount in range(1, 21):
        bus.dispatch(m.UpdateCaseData(case_id=opened.id, patch={"amount": amount}), alice)
    assert len(built) <= 1


# -- reference data -------------------------------------------------------------------------------------------------


def test_queue_define_and_redefine_rules(bus, alice, documents, runner):
    bus.dispatch(m.DefineQueue(key="intake", name=" Intake ", description="new work"), alice)
    with pytest.raises(InvalidStateChange):
        bus.dispatch(m.DefineQueue(key="intake", name="Intake", description="new work"), alice)
    bus.dispatch(m.DefineQueue(key="intake", name="Intake desk"), alice)
    with pytest.raises(ValidationFailed):
        bus.dispatch(m.DefineQueue(key="Bad Key", name="x"), alice)
    runner.catch_up()
    assert [(q["key"], q["name"], q["description"]) for q in list_collection(documents, "queues", TENANT)] == [
        ("intake", "Intake desk", ""),
    ]


def test_record_must_match_its_record_type_schema():
    ctx = make_ctx()
    rtype = RecordType.define(ctx, "country", "Country", {"type": "object", "required": ["iso"]})
    record = Record(uuid4())
    with pytest.raises(ValidationFailed) as err:
        record.save(ctx, rtype, "fr", {"name": "France"})
    assert [e.path for e in err.value.errors] == ["data.iso"]
    record.save(ctx, rtype, "fr", {"iso": "FR"})
    with pytest.raises(InvalidStateChange):
        record.save(ctx, rtype, "fr", {"iso": "FR"})


def test_record_remove_twice_is_refused_and_save_after_remove_restores_it():
    ctx = make_ctx()
    rtype = RecordType.define(ctx, "country", "Country", {"type": "object"})
    record = Record(uuid4())
    with pytest.raises(CaseNotOpen):
        record.remove(ctx, "never existed")
    record.save(ctx, rtype, "fr", {"iso": "FR"})
    record.remove(ctx, "obsolete")
    with pytest.raises(CaseNotOpen):
        record.remove(ctx, "again")
    record.save(ctx, rtype, "fr", {"iso": "FR"})
    assert (record.removed, record.version) == (False, 3)


def test_record_type_with_invalid_schema_is_refused():
    with pytest.raises(ValidationFailed):
        RecordType.define(make_ctx(), "country", "Country", {"type": 12})
    with pytest.raises(ValidationFailed):
        Queue.define(make_ctx(), "intake", "   ")


def test_validation_names_array_items_and_nested_fields_by_path():
    from domain.schema import validate

    schema = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "object", "properties": {"qty": {"type": "integer"}}}},
        },
    }
    with pytest.raises(ValidationFailed) as err:
        validate(schema, {"items": [{"qty": 1}, {"qty": "two"}, {"qty": 3.5}]})
    assert _paths(err) == ["data.items[1].qty", "data.items[2].qty"]
