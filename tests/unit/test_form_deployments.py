"""Forms deployed on their own: versioned per tenant, linked by `zeebe:formDefinition formId` with Camunda 8's
bindings (latest, deployment, versionTag), a link to a form nobody deployed refused at deploy naming the task."""

from __future__ import annotations

import json
from typing import Any

from adapters.event_store import RecorderEventStore
from commands.bus import Actor, CommandBus
from domain.process_deployment import ProcessDeployed, ProcessDeployments, deployments_id, xml_hash
from processes.deployment_follower import DeploymentFollower
from processes.deployments import Resource, deploy_files
from processes.engine import EmbeddedEngine
from processes.form_registry import FORMS
from tests.unit.conftest import TENANT
from tests.unit.engine_models import one_task

ADMIN = Actor("root", TENANT, ("admin",))
OTHER = Actor("root", "globex", ("admin",))
NONE: frozenset[str] = frozenset()


def form(form_id: str, key: str, tag: str | None = None) -> Resource:
    body: dict[str, Any] = {"id": form_id, "components": [{"type": "textfield", "key": key}]}
    if tag is not None:
        body["versionTag"] = tag
    return Resource(f"{form_id}-{key}.form", json.dumps(body).encode())


def linking(process_id: str, form_id: str, attrs: str = "") -> Resource:
    """A process whose one task is a user task linking form_id."""
    xml = one_task(process_id, "test.record").decode().replace(
        '<bpmn:serviceTask id="Job" name="Job"><bpmn:extensionElements><zeebe:taskDefinition type="test.record" '
        'retries="3"/></bpmn:extensionElements>',
        f'<bpmn:userTask id="Job" name="Job"><bpmn:extensionElements><zeebe:formDefinition formId="{form_id}"'
        f'{attrs}/></bpmn:extensionElements>').replace("</bpmn:serviceTask>", "</bpmn:userTask>")
    assert "userTask" in xml
    return Resource(f"{process_id}.bpmn", xml.encode())


def learn(store: RecorderEventStore, bus: CommandBus) -> None:
    DeploymentFollower(store, EmbeddedEngine(bus, store, task_types=NONE)).learn()


def key_of(found: dict[str, Any] | None) -> str | None:
    return None if found is None else str(found["components"][0]["key"])


def test_a_form_deployed_alone_is_versioned_by_content_per_tenant(store: RecorderEventStore,
                                                                  bus: CommandBus) -> None:
    first = deploy_files(bus, ADMIN, [form("alone", "a")], task_types=NONE)
    again = deploy_files(bus, ADMIN, [form("alone", "a")], task_types=NONE)
    second = deploy_files(bus, ADMIN, [form("alone", "b")], task_types=NONE)
    assert [(o.kind, o.status, o.process_id, o.version) for o in (*first, *again, *second)] == [
        ("form", "deployed", "alone", 1), ("form", "unchanged", "alone", 1), ("form", "deployed", "alone", 2)]
    own = ProcessDeployments.replay(deployments_id(TENANT), store.events_of(deployments_id(TENANT)))
    assert [v.version for v in own.form_versions["alone"]] == [1, 2] and "alone" not in own.versions
    events = [e for e in store.events_of(deployments_id(TENANT)) if isinstance(e, ProcessDeployed)]
    assert {e.kind for e in events} == {"form"}
    elsewhere = ProcessDeployments.replay(deployments_id("globex"), store.events_of(deployments_id("globex")))
    assert elsewhere.form_versions == {}


def test_a_link_to_a_form_not_deployed_is_refused_naming_the_task_and_form_id(store: RecorderEventStore,
                                                                               bus: CommandBus) -> None:
    head = store.max_position()
    refused = deploy_files(bus, ADMIN, [linking("needs-form", "nowhere")], task_types=NONE)
    assert refused[0].status == "refused" and refused[0].process_id == "needs-form"
    problem = refused[0].problems[0]
    assert problem.element_id == "Job" and problem.line is not None
    assert "zeebe:formDefinition formId 'nowhere'" in problem.message and "no form with this id" in problem.message
    assert store.max_position() == head  # nothing stored
    deploy_files(bus, OTHER, [form("theirs", "x")], task_types=NONE)  # another tenant's form does not count
    assert deploy_files(bus, ADMIN, [linking("needs-theirs", "theirs")], task_types=NONE)[0].status == "refused"
    deploy_files(bus, ADMIN, [form("later", "x")], task_types=NONE)
    assert deploy_files(bus, ADMIN, [linking("needs-later", "later")], task_types=NONE)[0].status == "deployed"


def test_binding_deployment_needs_the_form_in_the_same_request_and_other_bindings_are_checked(
        bus: CommandBus) -> None:
    deploy_files(bus, ADMIN, [form("bound", "x", tag="v1")], task_types=NONE)
    alone = deploy_files(bus, ADMIN, [linking("by-deploy", "bound", ' bindingType="deployment"')], task_types=NONE)
    assert alone[0].status == "refused" and "same deployment" in alone[0].problems[0].message
    together = deploy_files(bus, ADMIN, [linking("by-deploy", "bound", ' bindingType="deployment"'),
                                         form("bound", "x", tag="v1")], task_types=NONE)
    assert [o.status for o in together] == ["deployed", "unchanged"]
    tagged = deploy_files(bus, ADMIN, [linking("by-tag", "bound", ' bindingType="versionTag" versionTag="v1"'),
                                       linking("by-tag-2", "bound", ' bindingType="versionTag" versionTag="v9"'),
                                       linking("odd", "bound", ' bindingType="sometimes"')], task_types=NONE)
    assert [o.status for o in tagged] == ["deployed", "refused", "refused"]
    assert "versionTag 'v9'" in tagged[1].problems[0].message
    assert "bindingType 'sometimes'" in tagged[2].problems[0].message


def test_each_binding_resolves_its_version_when_the_task_is_created(store: RecorderEventStore,
                                                                    bus: CommandBus) -> None:
    deploy_files(bus, ADMIN, [form("pick", "first", tag="v1")], task_types=NONE)
    process = linking("picker", "pick", ' bindingType="deployment"')
    deploy_files(bus, ADMIN, [process, form("pick", "second", tag="v2")], task_types=NONE)
    deploy_files(bus, ADMIN, [form("pick", "third", tag="v3")], task_types=NONE)
    learn(store, bus)
    content = xml_hash(process.data.decode())
    assert key_of(FORMS.form(TENANT, content, "pick")) == "third"  # latest, Zeebe's default
    assert key_of(FORMS.form(TENANT, content, "pick", {"bindingType": "latest"})) == "third"
    assert key_of(FORMS.form(TENANT, content, "pick", {"bindingType": "deployment"})) == "second"
    assert key_of(FORMS.form(TENANT, content, "pick", {"bindingType": "versionTag", "versionTag": "v1"})) == "first"
    assert FORMS.form(TENANT, content, "pick", {"bindingType": "versionTag", "versionTag": "v7"}) is None
    assert FORMS.form("globex", content, "pick") is None
