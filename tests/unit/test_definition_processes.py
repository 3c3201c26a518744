"""Case definitions name their processes and automation rules; publishing checks them and names bad fields."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import StoredEvent

from adapters.event_store import RecorderEventStore
from commands.bus import Actor, CommandBus
from commands.messages import AutomationRuleIn
from domain.definition import (
    DEPLOYED_PROCESSES,
    AutomationRule,
    CaseDefinition,
    DefinitionPublished,
    DefinitionSpec,
    definition_id,
)
from domain.errors import ValidationFailed
from tests.unit.conftest import TENANT, claim_definition, claim_spec, publish_claim

RULE = {"on": "CommentAdded", "action": "correlate-message", "value": "customer-replied",
        "when": '=actor = "customer"'}


@pytest.fixture(autouse=True)
def no_deployed_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalog is process-wide (engines of other tests fill it); these tests start from an empty one."""
    monkeypatch.setattr(DEPLOYED_PROCESSES, "_ids", set())


def _paths(err: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [e.path for e in err.value.errors]


def test_process_fields_are_stored_and_read_back(bus: CommandBus, alice: Actor, store: RecorderEventStore) -> None:
    publish_claim(bus, alice, lifecycle_process="claim-case", stage_processes={"review": ["claim-review-help"]},
                  automation=[AutomationRuleIn(**RULE)])
    definition = CaseDefinition.replay(definition_id(TENANT, "claim"), store.events_of(definition_id(TENANT, "claim")))
    spec = definition.latest
    assert spec.lifecycle_process == "claim-case"
    assert spec.stage_processes == {"review": ("claim-review-help",)}
    assert spec.automation == (AutomationRule("CommentAdded", "correlate-message", "customer-replied",
                                              '=actor = "customer"'),)


def test_a_definition_without_processes_has_empty_process_fields(
    bus: CommandBus, alice: Actor, store: RecorderEventStore,
) -> None:
    publish_claim(bus, alice)
    spec = CaseDefinition.replay(definition_id(TENANT, "claim"), store.events_of(definition_id(TENANT, "claim"))).latest
    assert (spec.lifecycle_process, spec.stage_processes, spec.automation) == (None, {}, ())


@pytest.mark.parametrize(("fields", "paths"), [
    ({"stage_processes": {"nowhere": ["p1"]}}, ["stage_processes.nowhere"]),
    ({"stage_processes": {"review": ["p 1"]}}, ["stage_processes.review[0]"]),
    ({"lifecycle_process": "1-starts-with-a-digit"}, ["lifecycle_process"]),
    ({"automation": [{**RULE, "when": "=actor = "}]}, ["automation[0].when"]),
    ({"automation": [{**RULE, "when": "actor = 1"}]}, ["automation[0].when"]),
    ({"automation": [{**RULE, "when": "=uuid() = actor"}]}, ["automation[0].when"]),
    ({"automation": [{**RULE, "on": "CaseTeleported"}]}, ["automation[0].on"]),
    ({"automation": [{**RULE, "action": "delete-case"}]}, ["automation[0].action"]),
    ({"automation": [{**RULE, "action": "set-queue", "value": "no-such-queue"}]}, ["automation[0].value"]),
    ({"automation": [{**RULE, "action": "move-stage", "value": "limbo"}]}, ["automation[0].value"]),
    ({"automation": [{**RULE, "value": "has spaces"}]}, ["automation[0].value"]),
    ({"automation": [RULE, {**RULE, "action": "start-process", "value": ""}]}, ["automation[1].value"]),
])
def test_publish_refuses_bad_process_fields_naming_each(
    bus: CommandBus, alice: Actor, store: RecorderEventStore, fields: dict[str, Any], paths: list[str],
) -> None:
    if "automation" in fields:
        fields = {**fields, "automation": [AutomationRuleIn(**r) for r in fields["automation"]]}
    with pytest.raises(ValidationFailed) as err:
        bus.dispatch(claim_definition(**fields), alice)
    assert _paths(err) == paths
    assert store.max_position() == 0


def test_unknown_process_id_is_refused_once_processes_are_deployed() -> None:
    spec = DefinitionSpec(**{**claim_spec().__dict__, "lifecycle_process": "claim-case",
                             "stage_processes": {"review": ("extra",)}})
    spec.check()  # nothing deployed: shape only
    with pytest.raises(ValidationFailed) as err:
        spec.check(frozenset({"claim-case"}))
    assert [(e.path, e.message) for e in err.value.errors] == [
        ("stage_processes.review[0]", "no deployed process 'extra'"),
    ]
    spec.check(frozenset({"claim-case", "extra"}))


def test_bus_checks_process_ids_against_the_deployed_catalog(bus: CommandBus, alice: Actor) -> None:
    DEPLOYED_PROCESSES.add("claim-case")
    with pytest.raises(ValidationFailed) as err:
        bus.dispatch(claim_definition(lifecycle_process="never-deployed-xyz"), alice)
    assert _paths(err) == ["lifecycle_process"]
    bus.dispatch(claim_definition(lifecycle_process="claim-case"), alice)


def test_version_one_definition_event_is_upcast_with_empty_process_fields(store: RecorderEventStore) -> None:
    did = definition_id(TENANT, "legacy")
    spec = {**claim_spec(key="legacy").to_dict()}
    for name in ("lifecycle_process", "stage_processes", "automation"):
        spec.pop(name)
    state = {"_v": 1, "definition_version": 1, "spec": spec, "event_id": str(uuid.uuid4()),
             "occurred_at": datetime(2024, 1, 1, tzinfo=UTC).isoformat(),
             "meta": {"actor": "dora", "tenant": TENANT, "command_id": "c", "correlation_id": "c",
                      "causation_id": "c"}}
    store.recorder.insert_events([StoredEvent(originator_id=did, originator_version=1, topic="DefinitionPublished",
                                              state=orjson.dumps(state))])
    (event,) = store.events_of(did)
    assert isinstance(event, DefinitionPublished)
    assert (event.spec["lifecycle_process"], event.spec["stage_processes"], event.spec["automation"]) == (None, {}, [])
    assert CaseDefinition.replay(did, [event]).latest == claim_spec(key="legacy")
