"""Process deployments in the distributed mode: relay -> Kafka (the deployment topic, records past Kafka's default
1 MiB) -> `casestream worker` -> MongoDB gives the `processes` and `process_versions` read models a fresh fold
gives, and the queries behind GET /api/processes answer from them what replaying the deployments answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from adapters.contract import topic_name
from adapters.event_store import RecorderEventStore
from adapters.mongo_documents import MongoDocumentStore
from commands.bus import Actor, CommandBus
from commands.process_deployment import DeployProcess
from domain.process_deployment import SHIPPED, xml_hash
from projections.process_version_queries import list_processes, process_version
from projections.process_versions import PROCESS_VERSIONS, PROCESSES
from tests.integration.kafka.support import published
from tests.integration.kafka.support_worker import (
    differences,
    fresh_fold,
    relay_all,
    snapshot,
    start_worker,
    wait_until,
)

pytestmark = pytest.mark.integration
READ_MODELS = (PROCESSES, PROCESS_VERSIONS)


def bpmn(process_id: str, filler: str = "") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions id="d"><bpmn:process id="{process_id}"/>'
            f"<!--{filler}--></bpmn:definitions>\n")


def deploy(bus: CommandBus, actor: Actor, process_id: str, xml: str) -> None:
    bus.dispatch(DeployProcess(process_id=process_id, filename=f"{process_id}.bpmn", xml=xml,
                               content_hash=xml_hash(xml)), actor)


async def max_message_bytes(bootstrap: str, topic: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                                  {"max.message.bytes": None})])
        entries = {entry[0]: entry[1] for resource in response.resources for entry in resource[4]}
        return str(entries["max.message.bytes"])
    finally:
        await admin.close()


async def test_deployments_reach_the_read_models_through_kafka_even_past_one_mebibyte(
    tmp_path: Path, event_store: RecorderEventStore, documents: MongoDocumentStore, bootstrap: str, prefix: str,
    mongo_url: str, database: str,
) -> None:
    bus = CommandBus(event_store)
    shipper, admin = Actor("casestream", SHIPPED, ("process",)), Actor("ada", "acme", ("admin",))
    big = bpmn("big-one", "ü" * 600_000)  # 1.2 MB of UTF-8, more as a CloudEvent: past Kafka's default 1 MiB
    assert len(big.encode("utf-8")) > 1024 * 1024
    deploy(bus, shipper, "claim-case", bpmn("claim-case", "shipped"))
    deploy(bus, admin, "claim-case", bpmn("claim-case", "own"))
    deploy(bus, admin, "big-one", big)
    deploy(bus, admin, "claim-case", bpmn("claim-case", "own v2"))
    await relay_all(event_store, bootstrap, prefix)
    assert await max_message_bytes(bootstrap, topic_name("deployment", prefix)) == str(16 * 1024 * 1024)
    expected = fresh_fold(published(event_store), READ_MODELS)
    assert len(expected["process_versions"]) == 4

    worker = start_worker(tmp_path, bootstrap=bootstrap, prefix=prefix, mongo_url=mongo_url, database=database,
                          group=f"{prefix}-g")
    try:
        await wait_until(lambda: snapshot(documents, READ_MODELS) == expected, 120, "the deployment read models",
                         [worker])
    finally:
        output = worker.stop()
    assert snapshot(documents, READ_MODELS) == expected, differences(snapshot(documents, READ_MODELS), expected)
    assert worker.process.returncode == 0, output[-3000:]

    listed = {item["id"]: item for item in list_processes(documents, "acme")}
    assert set(listed) == {"claim-case", "big-one"}
    assert (listed["claim-case"]["latest_version"], listed["claim-case"]["shipped"]) == (2, False)
    found = process_version(documents, "acme", "big-one", 1)
    assert found is not None and found.xml.encode("utf-8") == big.encode("utf-8")
    other = list_processes(documents, "globex")
    assert [(item["id"], item["shipped"]) for item in other] == [("claim-case", True)]
