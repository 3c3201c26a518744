"""Projection lag: how far each read model is behind the event log, in events and in seconds.

Measured in the background every ~1 s (`LagMonitor`), never per request, and read from the cached report
by `/metrics`, `/readyz` and the command backpressure.

- Embedded: the runner's position against the log head; seconds = age of the first unapplied event.
- Distributed, per topic partition: Kafka's end offset minus the next offset the workers will handle (the
  later of the group's committed offset and the offset after the one in the partition's tracking document:
  the worker commits offsets after each batch is written, in the background of the next one), set to 0 when
  the relay heads and tracking positions say the partition holds nothing unapplied. Seconds = age (`time` of
  the CloudEvent) of the record at that next offset, read only for partitions that lag.
  The relay's own lag is the log head minus its stored position, with the age of the first unrelayed event.
Every read model folded from a topic shares that topic's partition lag (one worker write covers them all).
The process manager (embedded, processes on) follows the same log: its lag is the log head minus its stored
position, with the age of the first event it has not handled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from adapters.contract import family_of, topic_name
from commands.ports import EventStore
from projections.base import Projection

if TYPE_CHECKING:  # aiokafka is the distributed extra: imported only by the Kafka measure
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    from adapters.embedded_runner import EmbeddedRunner
    from adapters.read_model_follower import TrackingFollower
    from adapters.read_progress import KafkaReadProgress

log = logging.getLogger(__name__)
EMBEDDED_SOURCE = "log"


@dataclass(frozen=True)
class PartitionLag:
    """Lag of one source partition (embedded: the whole log is partition 0 of `log`)."""

    topic: str
    partition: int
    events: int
    seconds: float


@dataclass(frozen=True)
class ProcessLag:
    """How far the process manager is behind the log: its position, events and seconds behind the head."""

    position: int
    events: int
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {"position": self.position, "events_behind": self.events, "seconds_behind": round(self.seconds, 3)}


def process_lag(store: EventStore, position: int, now: float | None = None) -> ProcessLag:
    """The process manager's lag at `position` against the log head."""
    now = time.time() if now is None else now
    events = max(0, store.max_position() - position)
    return ProcessLag(position, events, event_age(store, position, now) if events else 0.0)


@dataclass(frozen=True)
class LagReport:
    """One measurement of every partition's lag, plus the relay's (distributed mode)."""

    mode: str
    read_models: Mapping[str, tuple[str, ...]]  # read model -> the topics it is folded from
    partitions: tuple[PartitionLag, ...] = ()
    relay_events: int = 0
    relay_seconds: float = 0.0
    measured_at: float = field(default_factory=time.time)
    error: str | None = None
    processes: ProcessLag | None = None  # the process manager's, when it runs in this process

    @property
    def events_behind(self) -> int:
        """Events stored but not yet in the read models (unrelayed plus unapplied)."""
        return self.relay_events + sum(p.events for p in self.partitions)

    @property
    def seconds_behind(self) -> float:
        """Age of the oldest event stored but not yet in the read models."""
        return max([self.relay_seconds, *(p.seconds for p in self.partitions)])

    def by_read_model(self) -> list[tuple[str, PartitionLag]]:
        return [
            (model, p) for model, sources in sorted(self.read_models.items())
            for p in self.partitions if p.topic in sources
        ]

    def as_json(self) -> dict[str, Any]:
        """The report for `/readyz`."""
        per_model: dict[str, list[dict[str, Any]]] = {}
        for model, p in self.by_read_model():
            per_model.setdefault(model, []).append(
                {"topic": p.topic, "partition": p.partition, "events": p.events, "seconds": round(p.seconds, 3)}
            )
        body: dict[str, Any] = {
            "mode": self.mode,
            "events_behind": self.events_behind,
            "seconds_behind": round(self.seconds_behind, 3),
            "measured_at": datetime.fromtimestamp(self.measured_at).astimezone().isoformat(),
            "read_models": per_model,
        }
        if self.mode == "distributed":
            body["relay"] = {"events": self.relay_events, "seconds": round(self.relay_seconds, 3)}
        if self.processes is not None:
            body["process_manager"] = self.processes.as_json()
        if self.error:
            body["error"] = self.error
        return body

    def prometheus(self) -> str:
        """The report in the Prometheus text exposition format (0.0.4)."""
        lines = [
            "# HELP casestream_projection_lag_events Events a read model is behind, per source partition.",
            "# TYPE casestream_projection_lag_events gauge",
        ]
        rows = self.by_read_model()
        for model, p in rows:
            lines.append(f"casestream_projection_lag_events{_labels(model, p)} {p.events}")
        lines += [
            "# HELP casestream_projection_lag_seconds Age of the oldest event a read model has not applied, "
            "per source partition.",
            "# TYPE casestream_projection_lag_seconds gauge",
        ]
        for model, p in rows:
            lines.append(f"casestream_projection_lag_seconds{_labels(model, p)} {p.seconds:.3f}")
        if self.mode == "distributed":
            lines += [
                "# HELP casestream_relay_lag_events Log positions stored but not yet published to Kafka.",
                "# TYPE casestream_relay_lag_events gauge",
                f"casestream_relay_lag_events {self.relay_events}",
                "# HELP casestream_relay_lag_seconds Age of the oldest event not yet published to Kafka.",
                "# TYPE casestream_relay_lag_seconds gauge",
                f"casestream_relay_lag_seconds {self.relay_seconds:.3f}",
            ]
        if self.processes is not None:
            lines += [
                "# HELP casestream_process_manager_position Last log position the process manager handled.",
                "# TYPE casestream_process_manager_position gauge",
                f"casestream_process_manager_position {self.processes.position}",
                "# HELP casestream_process_manager_lag_events Log positions the process manager has not handled.",
                "# TYPE casestream_process_manager_lag_events gauge",
                f"casestream_process_manager_lag_events {self.processes.events}",
                "# HELP casestream_process_manager_lag_seconds Age of the oldest event the process manager has not "
                "handled.",
                "# TYPE casestream_process_manager_lag_seconds gauge",
                f"casestream_process_manager_lag_seconds {self.processes.seconds:.3f}",
            ]
        lines += [
            "# HELP casestream_lag_measured_timestamp_seconds When the lag was last measured (Unix time).",
            "# TYPE casestream_lag_measured_timestamp_seconds gauge",
            f"casestream_lag_measured_timestamp_seconds {self.measured_at:.3f}",
            "# HELP casestream_lag_measure_failing 1 when the last lag measurement failed.",
            "# TYPE casestream_lag_measure_failing gauge",
            f"casestream_lag_measure_failing {1 if self.error else 0}",
        ]
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(model: str, p: PartitionLag) -> str:
    return f'{{read_model="{_escape(model)}",topic="{_escape(p.topic)}",partition="{p.partition}"}}'


def read_model_topics(projections: Iterable[Projection], prefix: str) -> dict[str, tuple[str, ...]]:
    """Which topics each read model is folded from (by the families of the event types it folds)."""
    out: dict[str, tuple[str, ...]] = {}
    for projection in projections:
        families = {family_of(t) for t in projection.folds}
        out[projection.collection] = tuple(sorted(topic_name(f, prefix) for f in families if f is not None))
    return out


def event_age(store: EventStore, after: int, now: float) -> float:
    """Seconds since the event right after position `after` occurred (0 if there is none)."""
    following = store.read(after, 1)
    if not following:
        return 0.0
    return max(0.0, now - following[0].event.occurred_at.timestamp())


class EmbeddedLag:
    """Lag of the in-process runner: its position against the log head."""

    def __init__(self, store: EventStore, runner: EmbeddedRunner | TrackingFollower,
                 projections: Sequence[Projection]) -> None:
        self.store = store
        self.runner = runner
        self.read_models = {p.collection: (EMBEDDED_SOURCE,) for p in projections}
        # the process manager's position (None until it is built); set by the composition root when processes run
        self.process_position: Callable[[], int | None] | None = None

    def measure_now(self) -> LagReport:
        now = time.time()
        head = self.store.max_position()
        position = self.runner.position
        events = max(0, head - position)
        seconds = event_age(self.store, position, now) if events else 0.0
        manager = self.process_position() if self.process_position is not None else None
        processes = process_lag(self.store, manager, now) if manager is not None else None
        return LagReport("embedded", self.read_models, (PartitionLag(EMBEDDED_SOURCE, 0, events, seconds),),
                         measured_at=now, processes=processes)

    async def measure(self) -> LagReport:
        return await asyncio.to_thread(self.measure_now)

    async def close(self) -> None:
        return None


class KafkaLag:
    """Lag of the Kafka workers (one consumer group) and of the relay, measured against the broker."""

    def __init__(
        self, *, bootstrap: str, group: str, topics: Sequence[str], read_models: Mapping[str, tuple[str, ...]],
        store: EventStore, progress: KafkaReadProgress,
        handled_offsets: Callable[[], Mapping[tuple[str, int], int]] | None = None, fetch_timeout: float = 1.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self.topics = list(topics)
        self.read_models = read_models
        self.store = store
        self.progress = progress
        self.handled_offsets = handled_offsets
        self.fetch_timeout = fetch_timeout
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        if self._admin is None or self._consumer is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="casestream-lag")
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                client_id="casestream-lag", max_partition_fetch_bytes=64 * 1024, metadata_max_age_ms=5000,
            )
            try:
                await admin.start()
                await consumer.start()
            except Exception:
                with contextlib.suppress(Exception):
                    await admin.close()
                with contextlib.suppress(Exception):
                    await consumer.stop()
                raise
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def close(self) -> None:
        admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        if consumer is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):  # aiokafka's stop may raise CancelledError
                await consumer.stop()
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()

    async def measure(self) -> LagReport:
        try:
            return await self._measure()
        except Exception:
            await self.close()  # reconnect next time (a broker may have gone away)
            raise

    async def _measure(self) -> LagReport:
        from aiokafka import TopicPartition

        admin, consumer = await self._clients()
        now = time.time()
        partitions = [
            TopicPartition(t["topic"], p["partition"])
            for t in await admin.describe_topics(self.topics) if not t.get("error_code")
            for p in t.get("partitions", ())
        ]
        end = await consumer.end_offsets(partitions) if partitions else {}
        committed = {tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(self.group)).items()}
        unstarted = [tp for tp in partitions if committed.get(tp, -1) < 0]
        if unstarted:
            committed.update(await consumer.beginning_offsets(unstarted))
        snapshot = await asyncio.to_thread(self.progress.snapshot, 0.5)
        if self.handled_offsets is not None:
            for (topic, partition), offset in (await asyncio.to_thread(self.handled_offsets)).items():
                tp = TopicPartition(topic, partition)
                if tp in committed:
                    committed[tp] = max(committed[tp], offset + 1)
        behind = snapshot.behind()
        lagging: dict[TopicPartition, int] = {}
        for tp in partitions:
            slot = (tp.topic, tp.partition)
            waiting = max(0, end[tp] - committed[tp])
            if slot in snapshot.heads and slot not in behind:
                waiting = 0  # every event sent there is applied; the committed offset just has not caught up
            elif slot in behind:
                waiting = max(waiting, 1)
            if waiting:
                lagging[tp] = waiting
        ages = await self._ages({tp: committed[tp] for tp in lagging}, now)
        rows = tuple(
            PartitionLag(tp.topic, tp.partition, lagging.get(tp, 0), ages.get(tp, 0.0))
            for tp in sorted(partitions, key=lambda tp: (tp.topic, tp.partition))
        )
        head = await asyncio.to_thread(self.store.max_position)
        relay_events = max(0, head - snapshot.relay_position)
        relay_seconds = (
            await asyncio.to_thread(event_age, self.store, snapshot.relay_position, now) if relay_events else 0.0
        )
        return LagReport("distributed", self.read_models, rows, relay_events, relay_seconds, measured_at=now)

    async def _ages(self, offsets: Mapping[TopicPartition, int], now: float) -> dict[TopicPartition, float]:
        """Age of the record at each offset, from its CloudEvent `time` (read with a group-less consumer)."""
        from adapters.cloudevents import loads

        if not offsets:
            return {}
        _admin, consumer = await self._clients()
        consumer.assign(list(offsets))
        for tp, offset in offsets.items():
            consumer.seek(tp, offset)
        ages: dict[TopicPartition, float] = {}
        deadline = time.monotonic() + self.fetch_timeout
        while len(ages) < len(offsets) and time.monotonic() < deadline:
            fetched = await consumer.getmany(timeout_ms=200, max_records=len(offsets) * 4)
            for tp, records in fetched.items():
                if tp in ages or not records:
                    continue
                occurred = datetime.fromisoformat(str(loads(records[0].value)["time"]))
                ages[tp] = max(0.0, now - occurred.timestamp())
                consumer.pause(tp)
        consumer.pause(*offsets)  # no background fetching until the next measurement assigns afresh
        return ages


Measure = Callable[[], Awaitable[LagReport]]


class LagMonitor:
    """Measures lag every `interval` seconds in the background; `report` is the latest measurement."""

    def __init__(self, measure: Measure, read_models: Mapping[str, tuple[str, ...]], mode: str,
                 interval: float = 1.0, close: Callable[[], Awaitable[None]] | None = None) -> None:
        self.measure = measure
        self.interval = interval
        self._close = close
        self.report = LagReport(mode, read_models, error="not measured yet")
        self.measured = False  # True once a measurement succeeded (the report holds real figures)
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> LagReport:
        """Measure now; on failure keep the last figures and record the error."""
        try:
            self.report = await self.measure()
            self.measured = True
        except Exception as exc:
            log.warning("measuring projection lag failed: %r", exc)
            self.report = replace(self.report, error=repr(exc))
        return self.report

    async def _loop(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        """Start measuring on the running event loop (the app's lifespan)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="casestream-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._close is not None:
            await self._close()
