"""The SSE publisher's source in distributed mode: each API replica reads the event topics itself and feeds its
live sink (the edge's Broadcaster, api/live.py), in log order, each position once.

- Its own consumer with no group (partitions assigned by hand, no offsets committed): every replica sees every
  event. It starts at the end of each partition; clients that need older events resume with Last-Event-ID,
  which replays from the timeline read model.
- Kafka orders events per partition only, so a later position can arrive before an earlier one from another
  partition. The feed holds arrivals back and releases them in position order, asking the event store which
  positions to expect (the notification ids of the subscribed event types between the last released position
  and the newest arrival: one indexed query, no decoding). A position is released only when every expected
  one before it has arrived, so the Broadcaster's "everything up to `released` was published" holds.
- A position that never arrives (say, a relay that does not publish its type) is given up after
  `give_up_seconds`, logged as an error, so one lost event cannot freeze every client's feed.
- Duplicates on the wire (the relay is at-least-once) and anything at or below the last released position
  are dropped: nothing is pushed twice.

Start it from the app's lifespan with `start_kafka_feed(broadcaster, settings, store)` and stop it with
`await feed.stop()` (or use `kafka_feed_lifespan`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from adapters import cloudevents
from adapters.contract import topics
from adapters.event_store import RecorderEventStore
from casestream.settings import Settings
from domain.events import Positioned
from projections.timeline import TIMELINE

log = logging.getLogger(__name__)


class LiveSink(Protocol):
    """Where the feed hands its batches (the edge's Broadcaster, api/live.py): in log order, each position once."""

    released: int  # the highest position handed on so far

    def publish(self, batch: Sequence[Positioned]) -> None: ...


# (after, upto, event type names) -> the positions in (after, upto] holding events of those types, ascending
ExpectedPositions = Callable[[int, int, frozenset[str]], list[int]]


@dataclass(frozen=True)
class KafkaFeedConfig:
    """Where the feed reads from and how patiently."""

    bootstrap: str = "127.0.0.1:29092"
    prefix: str = "casestream"
    poll_ms: int = 200
    give_up_seconds: float = 30.0
    topic_wait_seconds: float = 30.0


def feed_types(prefix: str) -> tuple[frozenset[str], list[str]]:
    """The event types the live feed shows (what the timeline folds) and the topics carrying them.

    The expected-position check counts every type published on those topics, since all of them arrive."""
    topic_of = topics(prefix)
    shown = {t.type_name() for t in TIMELINE.folds}
    wanted = sorted({topic_of[name] for name in shown if name in topic_of})
    carried = frozenset(name for name, topic in topic_of.items() if topic in wanted)
    return carried, wanted


def event_store_positions(store: RecorderEventStore) -> ExpectedPositions:
    """Expected positions from the event store's notification log (ids only, events are not decoded)."""

    def expected(after: int, upto: int, types: frozenset[str]) -> list[int]:
        out: list[int] = []
        start = after
        while start < upto:
            notes = store.recorder.select_notifications(
                start, 1000, stop=upto, topics=sorted(types), inclusive_of_start=False
            )
            out.extend(n.id for n in notes)
            if len(notes) < 1000:
                break
            start = notes[-1].id
        return out

    return expected


class KafkaFeed:
    """Reads the event topics from their end and publishes to a Broadcaster in position order, once each."""

    def __init__(
        self, broadcaster: LiveSink, config: KafkaFeedConfig, expected: ExpectedPositions,
        head: Callable[[], int], *, on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.broadcaster = broadcaster
        self.on_stop = on_stop
        self.config = config
        self.expected = expected
        self.head = head
        self.types, self.topic_names = feed_types(config.prefix)
        self.released = 0
        self.pending: dict[int, Positioned | None] = {}  # None: a record we could not decode (skipped in order)
        self.dropped = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._blocked: tuple[int, float] | None = None  # (missing position waited for, since)
        self.skipped = 0
        # expected positions after `released` up to `_known_upto`, ascending: each range is asked for once
        self._expected: deque[int] = deque()
        self._known_upto = 0

    async def start(self) -> None:
        """Assign every partition of the feed's topics, seek to their ends, then start reading."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.config.bootstrap, group_id=None, enable_auto_commit=False,
            auto_offset_reset="latest", client_id="casestream-live", metadata_max_age_ms=5000,
        )
        await consumer.start()
        try:
            partitions = await self._partitions(consumer)
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            for tp in partitions:  # resolve the end offsets now, before the head position is read
                await consumer.position(tp)
            # Read after the ends are fixed: anything stored later is relayed after them, so it will arrive;
            # anything at or below this position is older than the feed and is dropped.
            self.released = await asyncio.to_thread(self.head)
            self._known_upto = self.released
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self.broadcaster.released = max(self.broadcaster.released, self.released)
        self._task = asyncio.create_task(self._run(), name="casestream-kafka-live")
        log.info("live feed reads %s from their end, after position %d", ", ".join(self.topic_names), self.released)

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        deadline = time.monotonic() + self.config.topic_wait_seconds
        while True:
            await consumer.topics()  # refreshes the cluster metadata
            found = {t: consumer.partitions_for_topic(t) for t in self.topic_names}
            missing = [t for t, parts in found.items() if not parts]
            if not missing:
                return [TopicPartition(t, p) for t, parts in found.items() for p in sorted(parts or ())]
            if time.monotonic() > deadline:
                raise RuntimeError(f"event topics {missing} do not exist (the relay creates them: casestream relay)")
            await asyncio.sleep(0.5)

    async def stop(self) -> None:
        """Stop reading and close the consumer."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
        on_stop, self.on_stop = self.on_stop, None
        if on_stop is not None:
            await asyncio.to_thread(on_stop)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=self.config.poll_ms)
                self.accept(record.value for records in batch.values() for record in records)
                await self.release()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed poll or event-store query is retried; the feed must outlive it
                log.exception("live feed step failed; retrying")
                await asyncio.sleep(1.0)

    def accept(self, values: Iterable[bytes | None]) -> None:
        """Take raw record values into the pending set (duplicates and old positions dropped)."""
        for value in values:
            if value is None:
                continue
            try:
                ce = cloudevents.loads(value)
                position = int(ce["position"])
            except (ValueError, KeyError, TypeError):
                log.error("live feed: a record without a readable position was skipped")
                continue
            if position <= self.released or position in self.pending:
                self.dropped += 1
                continue
            try:
                self.pending[position] = cloudevents.from_cloudevent(ce)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("live feed: event at position %d is unreadable (%s); skipped", position, exc)
                self.pending[position] = None

    async def release(self) -> int:
        """Publish the pending events that have no expected position missing before them; return how many."""
        if not self.pending:
            self._blocked = None
            return 0
        upto = max(self.pending)
        if upto > self._known_upto:
            start = max(self._known_upto, self.released)
            more = await asyncio.to_thread(self.expected, start, upto, self.types)
            self._expected.extend(p for p in more if p > self.released)
            self._known_upto = upto
        ready: list[Positioned] = []
        while True:
            while self._expected and self._expected[0] in self.pending:
                position = self._expected.popleft()
                item = self.pending.pop(position)
                if item is not None:
                    ready.append(item)
                self.released = position
            if not self._expected or not self.pending or not self._give_up_on(self._expected[0]):
                break
            self.released = self._expected.popleft()
        if not self._expected:
            self.released = max(self.released, self._known_upto)  # nothing else is due up to there
        # arrivals the event store does not list at or below what was released (a type outside the feed's)
        for position in [p for p in self.pending if p <= self.released]:
            del self.pending[position]
        if ready:
            self.broadcaster.publish(ready)
        return len(ready)

    def _give_up_on(self, missing: int) -> bool:
        """Whether to stop waiting for a missing position (later ones are held meanwhile).

        Waiting forever would freeze every client's feed if an event never reaches the topics (a relay that does
        not publish that type); after `give_up_seconds` the position is skipped, loudly. The event then misses the
        live stream (it stays in the case's timeline): liveness is chosen over the no-gap guarantee here."""
        now = time.monotonic()
        if self._blocked is None or self._blocked[0] != missing:
            self._blocked = (missing, now)
            return self.config.give_up_seconds <= 0
        if now - self._blocked[1] < self.config.give_up_seconds:
            return False
        log.error("live feed: position %d never arrived from Kafka after %.0fs; skipped (%d later events held)",
                  missing, now - self._blocked[1], len(self.pending))
        self._blocked = None
        self.skipped += 1
        return True


def feed_config(settings: Settings) -> KafkaFeedConfig:
    """The feed's configuration from the one Settings object."""
    return KafkaFeedConfig(bootstrap=settings.kafka_bootstrap, prefix=settings.kafka_topic_prefix)


async def start_kafka_feed(
    broadcaster: LiveSink, settings: Settings, store: RecorderEventStore | None = None,
) -> KafkaFeed:
    """Start feeding `broadcaster` from Kafka; stop with `await feed.stop()`.

    `store` is the event store the API already holds (asked for expected positions); without one, a store is
    built from settings (and closed when the feed stops)."""
    owned = store is None
    if store is None:
        from casestream.bootstrap import build_event_store

        store = await asyncio.to_thread(build_event_store, settings)
    feed = KafkaFeed(broadcaster, feed_config(settings), event_store_positions(store), store.max_position,
                     on_stop=store.close if owned else None)
    try:
        await feed.start()
    except BaseException:
        if owned:
            await asyncio.to_thread(store.close)
        raise
    return feed


@contextlib.asynccontextmanager
async def kafka_feed_lifespan(
    broadcaster: LiveSink, settings: Settings, store: RecorderEventStore | None = None,
) -> AsyncIterator[KafkaFeed]:
    """`async with kafka_feed_lifespan(...)`: the feed runs for the block (for a FastAPI lifespan)."""
    feed = await start_kafka_feed(broadcaster, settings, store)
    try:
        yield feed
    finally:
        await feed.stop()

