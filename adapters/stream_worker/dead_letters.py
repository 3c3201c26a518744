"""The dead-letter topic `<prefix>.dead-letters`: every parked record, with why and where it came from.

Value (JSON)::

    {"reason": "poison" | "waiting", "error": <"Type: message"> | null, "key": <aggregate id>,
     "topic": <original topic>, "partition": <n>, "offset": <n>, "position": <log position> | null,
     "message": <the original record value, text>, "worker": <worker name>, "at": <ISO time>}

Key = the original key, so one case's dead letters stay in order in one partition. "poison" is the record whose
decode or fold raised; "waiting" is a later record of the same case, held back so it does not apply out of order.
The records themselves are kept in MongoDB (adapters/stream_worker/parking.py) for `casestream worker
retry-dead-letters`; the topic is for operators and alerting.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from adapters.contract import topic_config
from adapters.kafka_retry import with_kafka_retries
from adapters.stream_worker.parking import Parked

log = logging.getLogger(__name__)


def dead_letter_topic(prefix: str) -> str:
    return f"{prefix}.dead-letters"


def dead_letter(item: Parked, worker: str) -> dict[str, Any]:
    """The dead-letter value of a parked record."""
    d = item.delivery
    return {
        "reason": "poison" if item.error is not None else "waiting", "error": item.error, "key": d.key_text,
        "topic": d.topic, "partition": d.partition, "offset": d.offset, "position": item.position,
        "message": d.value.decode("utf-8", errors="replace"), "worker": worker,
        "at": datetime.now(UTC).isoformat(),
    }


class KafkaDeadLetters:
    """Publishes dead letters (idempotent producer, acks=all) and waits for the broker's ack."""

    def __init__(self, bootstrap: str, topic: str, worker: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.worker = worker
        self._producer: AIOKafkaProducer | None = None

    async def publish(self, items: Sequence[Parked]) -> None:
        if not items:
            return
        if self._producer is None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all",
                                        client_id=f"casestream-dead-letters-{self.worker}")
            await producer.start()
            self._producer = producer
        futures = [
            await self._producer.send(self.topic, value=orjson.dumps(dead_letter(item, self.worker)),
                                      key=item.delivery.key)
            for item in items
        ]
        for future in futures:
            await future

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()


async def ensure_topics(
    bootstrap: str, names: Sequence[str], partitions: int, replication_factor: int = 0, *, attempts: int = 30,
) -> None:
    """Create the named topics if missing (replication 0: min(3, brokers)); existing ones are kept as they are.

    A broker that is down (the admin client asks a random one) is retried with back-off for about two minutes,
    so a worker starting while one node of the cluster restarts does not die with it."""
    await with_kafka_retries(lambda: _ensure_topics_once(bootstrap, names, partitions, replication_factor),
                             "creating topics", log, attempts)


async def _ensure_topics_once(bootstrap: str, names: Sequence[str], partitions: int, replication_factor: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        replicas = replication_factor or min(3, len((await admin.describe_cluster())["brokers"]))
        wanted = [NewTopic(name, partitions, replicas, topic_configs=topic_config(name))
                  for name in names if name not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker or the relay was first
                await admin.create_topics(wanted)
    finally:
        await admin.close()
