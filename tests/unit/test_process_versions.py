"""The `processes` and `process_versions` read models: what GET /api/processes answers, without the event store."""

from __future__ import annotations

from typing import Any

from adapters.embedded_runner import EmbeddedRunner
from adapters.sqlite_documents import SqliteDocumentStore
from commands.bus import Actor, CommandBus
from commands.process_deployment import DeployProcess
from domain.process_deployment import SHIPPED, ProcessDeployments, deployments_id, xml_hash
from projections.catalog import ALL
from projections.process_version_queries import list_processes, process_version
from tests.unit.conftest import OTHER_TENANT, TENANT, snapshot

SHIPPER = Actor("casestream", SHIPPED, ("process",))
ADMIN = Actor("ada", TENANT, ("admin",))
OTHER_ADMIN = Actor("otto", OTHER_TENANT, ("admin",))
COLLECTIONS = ("processes", "process_versions")


def bpmn(process_id: str, label: str) -> str:
    """A small BPMN text (never parsed here: the read models keep it as deployed, bytes included)."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions id="d-{label}">'
            f'<bpmn:process id="{process_id}" name="{label} ü ✓"/></bpmn:definitions>\n')


def deploy(bus: CommandBus, actor: Actor, process_id: str, label: str, kind: str = "bpmn") -> None:
    xml = bpmn(process_id, label)
    bus.dispatch(DeployProcess(process_id=process_id, name=label, filename=f"{process_id}.{kind}", xml=xml,
                               content_hash=xml_hash(xml), kind=kind), actor)


def deploy_history(bus: CommandBus) -> None:
    deploy(bus, SHIPPER, "claim-case", "shipped v1")
    deploy(bus, SHIPPER, "close-case", "shipped close")
    deploy(bus, ADMIN, "claim-case", "own v1")
    deploy(bus, SHIPPER, "claim-case", "shipped v2")
    deploy(bus, ADMIN, "claim-case", "own v2")
    deploy(bus, ADMIN, "intake", "own intake")
    deploy(bus, ADMIN, "pricing", "decisions", kind="dmn")  # decisions are not processes
    deploy(bus, OTHER_ADMIN, "intake", "other intake")


def replayed(store: Any, tenant: str) -> tuple[list[dict[str, Any]], dict[tuple[str, int], str]]:
    """What the routes answered before the read models: the tenant's and the shipped aggregate replayed from the
    log (the list, and each version's XML by process id and number)."""
    own = ProcessDeployments.replay(deployments_id(tenant), store.events_of(deployments_id(tenant)))
    shipped = ProcessDeployments.replay(deployments_id(SHIPPED), store.events_of(deployments_id(SHIPPED)))
    items: dict[str, dict[str, Any]] = {}
    xml: dict[tuple[str, int], str] = {}
    for scope, is_shipped in ((shipped, True), (own, False)):
        for pid, versions in scope.versions.items():
            latest = versions[-1]
            items[pid] = {"id": pid, "name": latest.name, "latest_version": latest.version, "versions": len(versions),
                          "content_hash": latest.content_hash, "deployed_at": latest.deployed_at,
                          "deployer": latest.deployer, "shipped": is_shipped}
            for v in versions:
                xml[(pid, v.version)] = v.xml
    return [items[pid] for pid in sorted(items)], xml


def test_the_read_models_answer_what_replaying_the_deployments_answered(bus, store, documents, runner):
    deploy_history(bus)
    runner.catch_up()
    for tenant in (TENANT, OTHER_TENANT, "nobody-yet"):
        expected, versions = replayed(store, tenant)
        assert list_processes(documents, tenant) == expected
        for (pid, number), xml in versions.items():
            found = process_version(documents, tenant, pid, number)
            assert found is not None and (found.xml, found.content_hash) == (xml, xml_hash(xml))
    # a tenant's own deployment of an id hides the shipped versions of it, even a number only the shipped one has
    deploy(bus, SHIPPER, "claim-case", "shipped v3")
    runner.catch_up()
    assert process_version(documents, TENANT, "claim-case", 3) is None
    assert process_version(documents, OTHER_TENANT, "claim-case", 3) is not None
    assert process_version(documents, TENANT, "pricing", 1) is None  # a DMN file is no process


def test_the_read_models_equal_a_fold_from_scratch_and_a_rebuild(bus, store, documents, runner, tmp_path):
    deploy_history(bus)
    runner.catch_up()  # one batch
    deploy(bus, ADMIN, "intake", "own intake v2")
    runner.catch_up()
    live = {name: rows for name, rows in snapshot(documents).items() if name in COLLECTIONS}
    assert all(live.values())
    scratch = SqliteDocumentStore(tmp_path / "scratch.db", ALL)
    try:
        EmbeddedRunner(store, scratch, ALL, batch_size=1).catch_up()  # every event folded on its own, from nothing
        assert {name: rows for name, rows in snapshot(scratch).items() if name in COLLECTIONS} == live
    finally:
        scratch.close()
    runner.rebuild()
    assert {name: rows for name, rows in snapshot(documents).items() if name in COLLECTIONS} == live
