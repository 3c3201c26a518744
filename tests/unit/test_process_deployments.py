"""Process deployments: versions by content, each file checked alone, and an engine learning them from the log."""

from __future__ import annotations

import time
from pathlib import Path
from uuid import UUID

import pytest

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore
from adapters.sqlite_documents import SqliteDocumentStore
from commands.bus import Actor, CommandBus
from commands.process_deployment import deployed_process_ids
from commands.unit_of_work import UnitOfWork
from domain.errors import ValidationFailed
from domain.process import ProcessCompleted, process_instance_id
from domain.process_deployment import SHIPPED, ProcessDeployments, deployments_id, xml_hash
from processes.deployment_follower import FORMS, DeploymentFollower
from processes.deployments import Resource, deploy_files
from processes.engine import EmbeddedEngine, ProcessNotDeployed
from processes.platform import Processes
from tests.unit.conftest import TENANT, make_ctx
from tests.unit.engine_models import flow, one_task, process

ADMIN = Actor("root", TENANT, ("admin",))
SHIPPER = Actor("casestream", SHIPPED, ("process",))
V1 = one_task("pay", "test.record").decode()
V2 = V1.replace('name="pay"', 'name="pay v2"')
FORM = '{"id": "review", "components": [{"type": "textfield", "key": "note"}]}'


def test_a_new_version_only_when_the_content_changes() -> None:
    deployments = ProcessDeployments(deployments_id(TENANT))
    ctx = make_ctx()
    first, new = deployments.deploy(ctx, process_id="pay", name="Pay", filename="a.bpmn", xml=V1,
                                    content_hash=xml_hash(V1), forms={})
    assert (first.version, new) == (1, True)
    same, new = deployments.deploy(ctx, process_id="pay", name="Pay", filename="b.bpmn", xml=V1,
                                   content_hash=xml_hash(V1), forms={})
    assert (same.version, new, same.filename) == (1, False, "a.bpmn")
    second, new = deployments.deploy(ctx, process_id="pay", name="Pay", filename="a.bpmn", xml=V2,
                                     content_hash=xml_hash(V2), forms={})
    assert (second.version, new) == (2, True)
    back, new = deployments.deploy(ctx, process_id="pay", name="Pay", filename="a.bpmn", xml=V1,
                                   content_hash=xml_hash(V1), forms={})
    assert (back.version, new) == (3, True)  # differs from the newest: a version again, as Zeebe counts
    other, _ = deployments.deploy(ctx, process_id="other", name="", filename="o.bpmn", xml=V1,
                                  content_hash=xml_hash(V1), forms={})
    assert other.version == 1
    assert [e.process_version for e in deployments.collect()] == [1, 2, 3, 1]


def test_new_forms_make_a_version_and_a_deploy_without_forms_keeps_them() -> None:
    deployments = ProcessDeployments(deployments_id(TENANT))
    ctx = make_ctx()
    deployments.deploy(ctx, process_id="pay", name="", filename="a.bpmn", xml=V1, content_hash=xml_hash(V1),
                       forms={"review": {"components": []}})
    same, new = deployments.deploy(ctx, process_id="pay", name="", filename="a.bpmn", xml=V1,
                                   content_hash=xml_hash(V1), forms={})
    assert (same.version, new, same.forms) == (1, False, {"review": {"components": []}})
    changed, new = deployments.deploy(ctx, process_id="pay", name="", filename="a.bpmn", xml=V1,
                                      content_hash=xml_hash(V1), forms={"review": {"components": [{"key": "x"}]}})
    assert (changed.version, new) == (2, True)
    kept, _ = deployments.deploy(ctx, process_id="pay", name="", filename="a.bpmn", xml=V2,
                                 content_hash=xml_hash(V2), forms={})
    assert kept.forms == {"review": {"components": [{"key": "x"}]}}


def test_a_hash_that_is_not_the_xmls_is_refused() -> None:
    with pytest.raises(ValidationFailed) as refused:
        ProcessDeployments(deployments_id(TENANT)).deploy(make_ctx(), process_id="pay", name="", filename="a.bpmn",
                                                          xml=V1, content_hash=xml_hash(V2), forms={})
    assert refused.value.errors[0].path == "content_hash"


def test_each_file_is_checked_alone_and_forms_go_with_the_process_naming_them(bus: CommandBus) -> None:
    refused = deploy_files(bus, ADMIN, [
        Resource("broken.bpmn", b"<bpmn:definitions"),
        Resource("latin1.bpmn", V1.replace("pay", "p\xe4y").encode("latin-1")),
        Resource("review.form", FORM.encode()),
        Resource("notjson.json", b"{"),
    ], task_types=frozenset({"test.record"}))
    assert [o.status for o in refused] == ["refused", "refused", "deployed", "refused"]
    assert "invalid XML" in refused[0].problems[0].message and refused[0].problems[0].line == 1
    assert "not UTF-8" in refused[1].problems[0].message
    assert (refused[2].process_id, refused[2].version, refused[2].forms) == ("review", 1, ["review"])  # on its own
    assert "not JSON" in refused[3].problems[0].message

    user_task = V1.replace(
        '<bpmn:serviceTask id="Job" name="Job"><bpmn:extensionElements><zeebe:taskDefinition type="test.record" '
        'retries="3"/></bpmn:extensionElements>',
        '<bpmn:userTask id="Job" name="Job"><bpmn:extensionElements><zeebe:formDefinition formId="review"/>'
        '</bpmn:extensionElements>').replace("</bpmn:serviceTask>", "</bpmn:userTask>")
    assert user_task != V1
    good = deploy_files(bus, ADMIN, [Resource("pay.bpmn", user_task.encode()), Resource("review.form", FORM.encode()),
                                     Resource("broken.bpmn", b"<x/>")], task_types=frozenset({"test.record"}))
    assert [(o.status, o.version, o.forms) for o in good[:2]] == [("deployed", 1, ["review"]),
                                                                  ("unchanged", 1, ["review"])]
    assert good[2].status == "refused"
    again = deploy_files(bus, ADMIN, [Resource("pay.bpmn", user_task.encode())], task_types=frozenset())
    assert [(o.status, o.version, o.forms) for o in again] == [("unchanged", 1, ["review"])]


def test_the_engine_learns_deployments_up_to_a_position_each_tenant_its_own(
        store: RecorderEventStore, bus: CommandBus) -> None:
    engine = EmbeddedEngine(bus, store, task_types=frozenset({"test.record"}))
    follower = DeploymentFollower(store, engine)
    types = frozenset({"test.record"})
    assert deploy_files(bus, SHIPPER, [Resource("pay.bpmn", V1.encode())], task_types=types)[0].version == 1
    at_shipped = store.max_position()
    assert deploy_files(bus, ADMIN, [Resource("pay.bpmn", V2.encode())], task_types=types)[0].version == 1
    assert follower.learn(at_shipped) == at_shipped
    shipped = engine.deployed("pay", TENANT)
    assert shipped is not None and shipped.content_hash == xml_hash(V1)
    follower.learn()
    own, other = engine.deployed("pay", TENANT), engine.deployed("pay", "globex")
    assert own is not None and own.content_hash == xml_hash(V2)
    assert other is not None and other.content_hash == xml_hash(V1)  # the shipped one: globex has none of its own
    with pytest.raises(ProcessNotDeployed):
        engine.start("nothing-here", tenant=TENANT)
    uow = UnitOfWork(store, "globex")
    assert deployed_process_ids(uow) == frozenset({"pay"})


def test_a_stored_deployment_the_engine_cannot_run_does_not_stop_the_others(
        store: RecorderEventStore, bus: CommandBus) -> None:
    deploy_files(bus, ADMIN, [Resource("odd.bpmn", one_task("odd", "test.record"))],
                 task_types=frozenset({"test.record"}))
    deploy_files(bus, ADMIN, [Resource("fine.bpmn", one_task("fine", "test.fail"))],
                 task_types=frozenset({"test.fail"}))
    engine = EmbeddedEngine(bus, store, task_types=frozenset({"test.fail"}))  # test.record is unknown here
    follower = DeploymentFollower(store, engine)
    follower.learn()
    assert [(d.process_id, d.error is not None) for d in follower.learned] == [("odd", True), ("fine", False)]
    assert engine.deployed("odd", TENANT) is None and engine.deployed("fine", TENANT) is not None


def test_deployments_are_kept_per_tenant(store: RecorderEventStore, bus: CommandBus) -> None:
    deploy_files(bus, ADMIN, [Resource("pay.bpmn", V1.encode())], task_types=frozenset({"test.record"}))
    assert deployed_process_ids(UnitOfWork(store, TENANT)) == frozenset({"pay"})
    assert deployed_process_ids(UnitOfWork(store, "globex")) == frozenset()
    assert UUID(str(deployments_id(TENANT))) != deployments_id("globex")


def test_the_forms_of_a_version_are_found_by_its_tenant_hash_and_form_id(
        store: RecorderEventStore, bus: CommandBus) -> None:
    user_task = V1.replace(
        '<bpmn:serviceTask id="Job" name="Job"><bpmn:extensionElements><zeebe:taskDefinition type="test.record" '
        'retries="3"/></bpmn:extensionElements>',
        '<bpmn:userTask id="Job" name="Job"><bpmn:extensionElements><zeebe:formDefinition formId="review"/>'
        '</bpmn:extensionElements>').replace("</bpmn:serviceTask>", "</bpmn:userTask>")
    deploy_files(bus, ADMIN, [Resource("pay.bpmn", user_task.encode()), Resource("review.form", FORM.encode())],
                 task_types=frozenset())
    follower = DeploymentFollower(store, EmbeddedEngine(bus, store, task_types=frozenset()))
    follower.learn()
    found = FORMS.form(TENANT, xml_hash(user_task), "camunda-forms:bpmn:review")
    assert found is not None and found["components"][0]["key"] == "note"
    assert FORMS.form("globex", xml_hash(user_task), "review") is None
    assert FORMS.form(TENANT, xml_hash(user_task), "other") is None


def test_a_bad_shipped_file_is_reported_and_the_others_run(
        tmp_path: Path, store: RecorderEventStore, bus: CommandBus, documents: SqliteDocumentStore,
        runner: EmbeddedRunner) -> None:
    folder = tmp_path / "definitions"
    folder.mkdir()
    (folder / "good.bpmn").write_bytes(one_task("good", "case.set-queue"))
    (folder / "bad.bpmn").write_bytes(one_task("bad", "no.such-worker"))
    processes = Processes(bus, store, documents, runner, definitions=folder)
    try:
        processes.start()
        assert processes.state == "running"
        assert processes.engine.deployed("good", TENANT) is not None
        assert processes.engine.deployed("bad", TENANT) is None
        error = processes.status()["error"]
        assert error is not None and "bad.bpmn" in error and "no.such-worker" in error
        stored = store.max_position()
        processes.stop()
        again = Processes(bus, store, documents, runner, definitions=folder)
        again.build()  # a restart deploys the shipped files again: the same content stores nothing
        assert store.max_position() == stored
        assert [o.status for o in again.shipped] == ["refused", "unchanged"]
    finally:
        processes.stop()


def test_a_tenant_s_call_activity_calls_the_tenant_s_own_process(store: RecorderEventStore, bus: CommandBus) -> None:
    parent = process("parent", (
        '<bpmn:startEvent id="Begin"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>' + flow("f1", "Begin", "Call")
        + '<bpmn:callActivity id="Call"><bpmn:extensionElements><zeebe:calledElement processId="child"/>'
        '</bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
        '</bpmn:callActivity>' + flow("f2", "Call", "Finish")
        + '<bpmn:endEvent id="Finish"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'))
    types = frozenset({"test.record"})
    outcomes = deploy_files(bus, ADMIN, [Resource("child.bpmn", one_task("child", "test.record")),
                                         Resource("parent.bpmn", parent)], task_types=types)
    assert [o.status for o in outcomes] == ["deployed", "deployed"]
    engine = EmbeddedEngine(bus, store, task_types=types)
    DeploymentFollower(store, engine).learn()
    engine.start_background()
    try:
        key = engine.start("parent", tenant=TENANT)
        iid = process_instance_id(TENANT, key)
        deadline = time.monotonic() + 20
        while not any(isinstance(e, ProcessCompleted) for e in store.events_of(iid)):
            assert time.monotonic() < deadline, [type(e).__name__ for e in store.events_of(iid)]
            time.sleep(0.02)
    finally:
        engine.stop()
    assert engine.deployed("child", "globex") is None  # the child is acme's alone
