"""Every shipped BPMN file deploys on the embedded engine and fits the demo definitions it drives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from casestream import demo_data as d
from domain.schema import check_schema
from processes.bpmn import NSMAP, DeployedProcess
from processes.jobs import known_task_types
from processes.model import prepare_model
from processes.platform import DEFINITIONS, shipped_files

FILES = shipped_files()
FORMS = DEFINITIONS / "forms"
# which demo definition each lifecycle drives
DRIVES = {"claim-case": d.CLAIM_LIVE, "complaint-case": d.COMPLAINT_LIVE, "onboarding-case": d.ONBOARDING_LIVE,
          "onboarding-saga": d.ONBOARDING_LIVE}


def deploy_check(xml: bytes, types: frozenset[str], filename: str = "shipped.bpmn") -> DeployedProcess:
    """What the embedded engine deploys: the zeebe checks, compensation taken apart, then Spiff's parse."""
    return prepare_model(xml, types, filename).deployed


def _headers(root: etree._Element, task_type: str, key: str) -> list[tuple[str, str]]:
    """(element id, header value) of every service task of task_type that sets header key."""
    found = []
    for task in root.xpath("//bpmn:serviceTask", namespaces=NSMAP):
        definition = task.xpath("./bpmn:extensionElements/zeebe:taskDefinition", namespaces=NSMAP)
        if definition and definition[0].get("type") == task_type:
            for header in task.xpath(f"./bpmn:extensionElements/zeebe:taskHeaders/zeebe:header[@key='{key}']",
                                     namespaces=NSMAP):
                found.append((task.get("id"), header.get("value")))
    return found


def test_the_shipped_processes_are_there() -> None:
    ids = {deploy_check(f.read_bytes(), known_task_types(), filename=f.name).process_id for f in FILES}
    assert set(DRIVES) <= ids


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_shipped_file_passes_the_deploy_check(path: Path) -> None:
    deployed = deploy_check(path.read_bytes(), known_task_types(), filename=path.name)
    assert deployed.task_types <= known_task_types()


@pytest.mark.parametrize("process_id", sorted(DRIVES))
def test_lifecycle_uses_only_stages_queues_and_resolutions_of_its_definition(process_id: str) -> None:
    path = next(f for f in FILES if deploy_check(f.read_bytes(), known_task_types()).process_id == process_id)
    root = etree.fromstring(path.read_bytes())
    spec = DRIVES[process_id]
    stages = {s["key"] for s in spec["stages"]}
    for element, stage in _headers(root, "case.move-stage", "stage"):
        assert stage in stages, f"{path.name} {element}: no stage {stage!r} in {spec['key']}"
    for element, queue in _headers(root, "case.set-queue", "queue"):
        assert queue in spec["queues"], f"{path.name} {element}: no queue {queue!r} in {spec['key']}"
    for element, resolution in _headers(root, "case.close", "resolution"):
        assert resolution in spec["statuses"], f"{path.name} {element}: no resolution {resolution!r}"


def test_every_form_key_has_a_valid_json_schema_form() -> None:
    keys = set()
    for path in FILES:
        root = etree.fromstring(path.read_bytes())
        keys |= {el.get("formKey") for el in root.xpath("//zeebe:formDefinition", namespaces=NSMAP)}
    assert keys
    for key in sorted(keys):
        form = FORMS / f"{key}.json"
        assert form.is_file(), f"form {key!r} has no file {form}"
        schema = json.loads(form.read_text(encoding="utf-8"))
        check_schema(schema, f"forms/{key}.json")
        assert schema["type"] == "object" and schema["required"]


def test_live_demo_definitions_name_only_shipped_processes() -> None:
    shipped = {deploy_check(f.read_bytes(), known_task_types()).process_id for f in FILES}
    named = {spec["lifecycle_process"] for spec in d.LIVE_DEFINITIONS}
    named |= {p for spec in d.LIVE_DEFINITIONS for ids in spec.get("stage_processes", {}).values() for p in ids}
    assert named <= shipped
    assert {spec["key"] for spec in d.LIVE_DEFINITIONS} == {spec["key"] for spec in d.DEFINITIONS}
