"""A relay whose PostgreSQL drops out for a while (every connection cut, nothing listening) keeps retrying instead
of exiting, and publishes the whole log once the server is back: a server that is slow or briefly away is no crash."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from adapters import cloudevents
from adapters.contract import topics
from adapters.event_store import postgres_event_store
from adapters.kafka_relay import KafkaRelay, RelayConfig
from commands.bus import CommandBus
from infra.server import Server
from tests.integration.kafka.support import consume, fill, published
from tests.postgres_store import postgres_store, scratch_database
from tests.tcp_forwarder import Forwarder
from tests.waiting import until

pytestmark = pytest.mark.integration
OUTAGE = 7.0  # longer than the pool's 5 s wait for a connection: the relay's reload fails too


@pytest.fixture
async def prefix(kafka_server: Server) -> AsyncIterator[str]:
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_server.info()["bootstrap"])
    await admin.start()
    try:
        present = set(await admin.list_topics()) & set(topics(name).values())
        if present:
            await admin.delete_topics(sorted(present))
    finally:
        await admin.close()


async def test_a_relay_outlives_a_postgres_outage_and_publishes_everything(
        postgres_server: Server, kafka_server: Server, prefix: str) -> None:
    bootstrap = kafka_server.info()["bootstrap"]
    info = postgres_server.info()
    with scratch_database(postgres_server, "outage") as dbname:
        store = postgres_store(postgres_server, dbname)  # the writers' path to the server: never cut
        forwarder = Forwarder((info["host"], int(info["port"])))
        forwarder.open()
        relayed = postgres_event_store(host="127.0.0.1", port=forwarder.port, dbname=dbname, user=info["user"],
                                       password=info["password"], pool_size=2)
        try:
            bus = CommandBus(store)
            fill(bus, cases=10, rounds=1)
            relay = KafkaRelay(relayed, RelayConfig(bootstrap=bootstrap, prefix=prefix, batch_size=5,
                                                    poll_interval=0.05, retry_backoff=0.2))
            stop = asyncio.Event()
            task = asyncio.create_task(relay.run(stop))
            await until(lambda: relay.position > 0, "the first batch", timeout=60)

            forwarder.cut()  # the server goes away for the relay: its connections die, new ones are refused
            await asyncio.to_thread(fill, bus, 10, 1, with_reference=False, tag="during")
            await asyncio.sleep(OUTAGE)
            assert not task.done(), task.exception() if task.done() else None
            forwarder.open()

            await until(lambda: relay.position == store.max_position(), "the whole log after the outage",
                        timeout=120)
            stop.set()
            await asyncio.wait_for(task, 30)
            expected = published(store)
            records = await consume(bootstrap, sorted(set(topics(prefix).values())), until=len(expected))
            assert {cloudevents.loads(r.value)["position"] for r in records} == {p.position for p in expected}
        finally:
            forwarder.cut()
            relayed.close()
            store.close()
