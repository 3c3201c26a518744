"""The Novu publisher (`casestream notify`): case events from Kafka -> Novu workflow triggers (novu-py).

- Its own consumer group (`notify_group`); several publishers share the partitions; a case's events stay in
  order because they share a partition and each partition is handled one record at a time.
- Per record: fold the case's audience (adapters/novu_audience.py, idempotent by position), map the event to a
  trigger (adapters/novu_mapping.py), send it with `transactionId` = event id (Novu drops a repeat; its
  "transactionId is not unique" answer counts as delivered).
- 5xx, 408, 429 and network errors are retried with exponential backoff (`novu_backoff_seconds`, doubling, at
  most `novu_backoff_max_seconds`) up to `novu_max_attempts` tries; then, or at once for any other refusal,
  the trigger goes to the dead-letter topic `<prefix>.notify-dead-letter.v1` with the error, the attempts and
  the original event. A record that cannot be read goes there too.
- The consumer offset is committed only after each record's trigger was delivered or dead-lettered (or the
  record needed none), so a crash redelivers, and never loses, a notification. The partitions of a fetch are
  handled side by side, each in order, so a trigger waiting for its retries holds back only its own partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from adapters import cloudevents
from adapters.contract import topics
from adapters.novu_audience import AudienceStore
from adapters.novu_mapping import MAPPERS, Trigger, affects_audience, case_of, is_mapped, trigger_for
from adapters.novu_triggers import TriggerFailed, TriggerSender
from casestream.settings import Settings
from domain import case as c
from domain.events import EVENT_TYPES, Event

log = logging.getLogger(__name__)
DEAD_LETTER_STEM = "notify-dead-letter"
# the audience fold needs these besides the mapped events
AUDIENCE_TYPES: tuple[type[Event], ...] = (c.CaseOpened, c.CaseRetitled, c.CaseAssigned, c.CommentAdded)


def dead_letter_topic(prefix: str) -> str:
    return f"{prefix}.{DEAD_LETTER_STEM}.v1"


@dataclass(frozen=True)
class NotifyConfig:
    """The publisher's Kafka side and retry policy."""

    bootstrap: str = "127.0.0.1:29092"
    prefix: str = "casestream"
    group: str = "casestream-notify"
    partitions: int = 6
    max_attempts: int = 5
    backoff_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    start: Literal["earliest", "latest"] = "latest"
    poll_ms: int = 500
    error_backoff_seconds: float = 1.0


def notify_config(settings: Settings, *, from_beginning: bool = False) -> NotifyConfig:
    """The publisher's configuration from the one Settings object."""
    return NotifyConfig(
        bootstrap=settings.kafka_bootstrap, prefix=settings.kafka_topic_prefix, group=settings.notify_group,
        partitions=settings.kafka_partitions, max_attempts=settings.novu_max_attempts,
        backoff_seconds=settings.novu_backoff_seconds, backoff_max_seconds=settings.novu_backoff_max_seconds,
        start="earliest" if from_beginning else "latest",
    )


def source_topics(prefix: str) -> list[str]:
    """The topics carrying the mapped events and those the audience fold needs."""
    topic_of = topics(prefix)
    names = {t.type_name() for t in (*MAPPERS, *AUDIENCE_TYPES)}
    return sorted({topic_of[n] for n in names if n in topic_of})


@dataclass
class Counters:
    sent: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    retries: int = 0
    # the latest (event id, outcome) pairs, for operators and tests
    outcomes: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=10_000))


class NovuPublisher:
    """Consumes the event topics in its group and turns case events into Novu triggers."""

    def __init__(
        self, config: NotifyConfig, sender: TriggerSender, audiences: AudienceStore,
        *, sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.sender = sender
        self.audiences = audiences
        self.sleep = sleep
        self.dead_letters = dead_letter_topic(config.prefix)
        self.counters = Counters()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        await self._ensure_dead_letter_topic()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.config.bootstrap, enable_idempotence=True, acks="all",
            client_id="casestream-notify",
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            *source_topics(self.config.prefix), bootstrap_servers=self.config.bootstrap,
            group_id=self.config.group, enable_auto_commit=False, auto_offset_reset=self.config.start,
            client_id="casestream-notify", metadata_max_age_ms=5000,
        )
        await self._consumer.start()
        log.info("notify: group %s reads %s; dead letters to %s", self.config.group,
                 ", ".join(source_topics(self.config.prefix)), self.dead_letters)

    async def _ensure_dead_letter_topic(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.config.bootstrap)
        await admin.start()
        try:
            if self.dead_letters not in set(await admin.list_topics()):
                replicas = min(3, len((await admin.describe_cluster())["brokers"]))
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics([NewTopic(self.dead_letters, self.config.partitions, replicas)])
        finally:
            await admin.close()

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        producer, self._producer = self._producer, None
        if consumer is not None:
            await consumer.stop()
        if producer is not None:
            await producer.stop()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Publish until stop is set; a failed batch is retried from its first record not committed."""
        stop = stop or asyncio.Event()
        await self.start()
        try:
            while not stop.is_set():
                try:
                    await self.step()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("notify batch failed; retrying from the first record not committed")
                    await asyncio.sleep(self.config.error_backoff_seconds)
        finally:
            await self.stop()

    async def step(self) -> int:
        """Handle one fetched batch, partitions side by side (each in order), then commit the finished ones."""
        assert self._consumer is not None
        consumer = self._consumer
        batch = [(tp, records) for tp, records in (await consumer.getmany(timeout_ms=self.config.poll_ms)).items()
                 if records]
        # a record waiting for its retries holds back only its own partition (its case's later events)
        results = await asyncio.gather(*(self._partition(records) for _tp, records in batch), return_exceptions=True)
        done = {tp: records[-1].offset + 1 for (tp, records), result in zip(batch, results, strict=True)
                if not isinstance(result, BaseException)}
        failed = [(tp, records[0].offset) for (tp, records), result in zip(batch, results, strict=True)
                  if isinstance(result, BaseException)]
        try:
            if done:
                await consumer.commit(done)
        except BaseException:
            failed += [(tp, records[0].offset) for tp, records in batch if tp in done]
            raise
        finally:
            # the fetch moved past these records: go back to the first one not committed, so they come again
            for tp, offset in failed:
                with contextlib.suppress(Exception):  # a partition revoked meanwhile is re-read by its new owner
                    consumer.seek(tp, offset)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return sum(len(records) for _tp, records in batch)

    async def _partition(self, records: list[ConsumerRecord[Any, Any]]) -> None:
        for record in records:
            await self.handle(record)

    async def handle(self, record: ConsumerRecord[Any, Any]) -> str:
        """One record -> its outcome: sent, duplicate, dead-lettered or skipped."""
        try:
            ce = cloudevents.loads(record.value)
            type_name = str(ce.get("type", "")).removeprefix(cloudevents.TYPE_PREFIX).rpartition(".v")[0]
            if type_name not in EVENT_TYPES:
                return self._note(ce, "skipped")  # an event this code does not know cannot be one it maps
            item = cloudevents.from_cloudevent(ce)
        except (ValueError, KeyError, TypeError) as exc:
            await self._dead_letter(record, None, f"unreadable event: {exc!r}", attempts=0, status=None)
            return "dead-lettered"
        event = item.event
        if not (is_mapped(event) or affects_audience(event)):
            return self._note(ce, "skipped")
        case_id = case_of(event)  # a document event's audience is its case's
        if affects_audience(event):
            audience = await asyncio.to_thread(self.audiences.apply, case_id, item)
        else:
            audience = await asyncio.to_thread(self.audiences.get, case_id)
        trigger = trigger_for(item, audience)
        if trigger is None:
            return self._note(ce, "skipped")
        return await self._deliver(record, ce, trigger)

    async def _deliver(self, record: ConsumerRecord[Any, Any], ce: dict[str, Any], trigger: Trigger) -> str:
        delay = self.config.backoff_seconds
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = await self.sender.send(trigger)
            except TriggerFailed as exc:
                if exc.retriable and attempt < self.config.max_attempts:
                    self.counters.retries += 1
                    log.warning("notify: trigger %s failed (%s); try %d of %d in %.1fs", trigger.transaction_id,
                                exc, attempt + 1, self.config.max_attempts, delay)
                    await self.sleep(delay)
                    delay = min(delay * 2, self.config.backoff_max_seconds)
                    continue
                await self._dead_letter(record, trigger, str(exc), attempts=attempt, status=exc.status)
                return "dead-lettered"
            if outcome == "sent":
                self.counters.sent += 1
            else:
                self.counters.duplicates += 1
            return self._note(ce, outcome)

    async def _dead_letter(
        self, record: ConsumerRecord[Any, Any], trigger: Trigger | None, error: str, *, attempts: int,
        status: int | None,
    ) -> None:
        assert self._producer is not None
        try:
            event: Any = orjson.loads(record.value)
        except (orjson.JSONDecodeError, TypeError):
            event = record.value.decode(errors="replace") if isinstance(record.value, bytes) else None
        value = {
            "error": error,
            "status": status,
            "attempts": attempts,
            "failed_at": datetime.now(UTC).isoformat(),
            "source": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
            "trigger": trigger.body() if trigger else None,
            "event": event,
        }
        # awaited until the broker acknowledged it: only then may the source offset be committed
        await self._producer.send_and_wait(self.dead_letters, orjson.dumps(value), key=record.key)
        self.counters.dead_lettered += 1
        self.counters.outcomes.append((str(event.get("id") if isinstance(event, dict) else None), "dead-lettered"))
        log.error("notify: dead-lettered %s from %s[%d]@%d: %s", trigger.transaction_id if trigger else "record",
                  record.topic, record.partition, record.offset, error)

    def _note(self, ce: dict[str, Any], outcome: str) -> str:
        if outcome == "skipped":
            self.counters.skipped += 1
        self.counters.outcomes.append((str(ce.get("id")), outcome))
        return outcome
