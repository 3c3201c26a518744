"""Messages published for processes that no subscription waited for yet: kept until one opens or they expire.

The engine asks `offer` each time an instance starts waiting for a (tenant, name, correlation key) it did not wait
for before; the oldest live message buffered for it goes to that instance (a buffered message correlates once, to
one subscription). A message whose time to live has passed by the engine's clock never correlates, and is dropped
the next time the buffer is touched. The buffer is rebuilt from the log at start (`rebuild`): every published
message not correlated and not expired; with a mark store, from the mark of the last start or stop (the messages
alive there) and the log after it. docs/processes.md, "Messages".
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from commands.bus import Actor, CommandBus
from commands.ports import EventStore
from commands.process_messages import CorrelateProcessMessage
from domain.errors import DomainError
from domain.events import Event
from domain.process_message import ProcessMessage, ProcessMessageCorrelated, ProcessMessagePublished
from processes.checkpoint import MarkStore, load_mark, save_mark
from processes.index import Subscription

log = logging.getLogger(__name__)
ACTOR_USER = "process:messages"  # the engine's actor recording correlations
MARK = "message-buffer"  # its LogMark's name (processes/checkpoint.py)
TYPES = frozenset({ProcessMessagePublished.type_name(), ProcessMessageCorrelated.type_name()})


class Correlator(Protocol):
    """What the buffer needs of the engine: deliver to a subscription waiting now, naming the instance."""

    def correlate_message_to(self, tenant: str, name: str, correlation_key: str,
                             variables: Mapping[str, Any] | None = None) -> str | None: ...


@dataclass(frozen=True)
class Delivery:
    """What became of a published message: the instance it went to, or buffered (or neither: expired)."""

    process_instance_key: str | None
    buffered: bool


def deliver_published(store: EventStore, buffer: MessageBuffer, engine: Correlator, message_key: UUID, *,
                      repeated: bool = False) -> Delivery:
    """After `PublishProcessMessage` stored a publication: correlate it now or buffer it. A repeated command (the
    same `command_id`) stored nothing new, so it only reports what became of the first."""
    events = store.events_of(message_key)
    message = ProcessMessage.replay(message_key, events)
    instance = message.correlated_to
    if not repeated:
        published = next(e for e in reversed(events) if isinstance(e, ProcessMessagePublished))
        instance = buffer.publish(engine, BufferedMessage.of(published))
    return Delivery(instance, instance is None and buffer.buffers(message_key))


@dataclass(frozen=True)
class BufferedMessage:
    """A published message as the buffer keeps it."""

    key: UUID
    tenant: str
    name: str
    correlation_key: str
    variables: dict[str, Any] = field(hash=False)
    expires_at: datetime
    time_to_live_ms: int

    @property
    def subscription(self) -> Subscription:
        return (self.tenant, self.name, self.correlation_key)

    @classmethod
    def of(cls, event: ProcessMessagePublished) -> BufferedMessage:
        return cls(event.aggregate_id, event.tenant, event.name, event.correlation_key, dict(event.variables),
                   datetime.fromisoformat(event.expires_at), event.time_to_live_ms)


class LoggedMessages:
    """The messages alive in the log (published, neither correlated nor expired) up to a position: what a start
    buffers, and what a mark names."""

    def __init__(self) -> None:
        self.position = 0
        self.alive: dict[UUID, BufferedMessage] = {}
        self.versions: dict[UUID, int] = {}  # message key -> the version of its event taken last

    def fold(self, event: Event) -> None:
        if isinstance(event, ProcessMessagePublished):
            self.alive[event.aggregate_id] = BufferedMessage.of(event)
            self.versions[event.aggregate_id] = event.version
        elif isinstance(event, ProcessMessageCorrelated):
            self.alive.pop(event.aggregate_id, None)
            self.versions.pop(event.aggregate_id, None)

    def catch_up(self, store: EventStore, batch: int, now: datetime) -> None:
        """Fold the log after the position up to its head; drop the messages expired at `now` (for good: a time to
        live is absolute)."""
        head = store.max_position()
        while self.position < head:
            items, last = store.read_batch(self.position, batch, TYPES)
            for item in items:
                self.fold(item.event)
            if last <= self.position:
                break
            self.position = last
        for key in [key for key, message in self.alive.items() if message.expires_at <= now]:
            del self.alive[key], self.versions[key]

    def save(self, marks: MarkStore, store: EventStore) -> None:
        save_mark(marks, MARK, store, self.position, self.versions)


class MessageBuffer:
    """Live messages by subscription, oldest first, plus a heap by expiry so expired ones leave in O(log n)."""

    def __init__(self, bus: CommandBus, clock: Callable[[], datetime]) -> None:
        self.bus = bus
        self.clock = clock
        self._waiting: dict[Subscription, list[BufferedMessage]] = {}
        self._expiry: list[tuple[datetime, int, BufferedMessage]] = []
        self._counter = 0  # heap tie-breaker (messages do not order among themselves)
        self._keys: dict[UUID, BufferedMessage] = {}
        self._lock = threading.Lock()
        self._log = LoggedMessages()  # the log's view at the last start (or stop), kept for the next mark
        self._marks: MarkStore | None = None
        self._batch = 10_000

    def __len__(self) -> int:
        with self._lock:
            return sum(len(found) for found in self._waiting.values())

    def rebuild(self, store: EventStore, *, batch: int = 10_000, marks: MarkStore | None = None) -> int:
        """Buffer every message of the log that neither correlated nor expired; how many that is. With a mark store,
        start from the stored mark (the messages alive there, read from their own events) and read only the log after
        it, then store a new mark at the log's head."""
        self._marks, self._batch = marks, batch
        mark = load_mark(marks, MARK, store) if marks is not None else None
        if mark is not None:
            found = store.events_of_many(list(mark.versions))
            for key, version in mark.versions.items():
                for event in found.get(key, []):
                    if event.version <= version:
                        self._log.fold(event)
            self._log.position = mark.position
        self._log.catch_up(store, batch, self.clock())
        if marks is not None:
            self._log.save(marks, store)
        now = self.clock()
        with self._lock:
            for message in self._log.alive.values():
                if message.expires_at > now:
                    self._add(message)
        return len(self._log.alive)

    def save(self, store: EventStore) -> None:
        """Store a new mark at the log's head (at a stop): the next start reads only the log after it. Read from the
        log after the last mark, not from what this process holds (another process may have published, a
        correlation may not have been stored)."""
        if self._marks is not None:
            self._log.catch_up(store, self._batch, self.clock())
            self._log.save(self._marks, store)

    def publish(self, engine: Correlator, message: BufferedMessage) -> str | None:
        """A message just stored: the key of the instance it correlated to now, else None (buffered while its
        time to live lasts; with none left it is gone)."""
        instance = engine.correlate_message_to(message.tenant, message.name, message.correlation_key,
                                               message.variables)
        if instance is not None:
            self._record(message, instance)
            return instance
        if message.time_to_live_ms == 0 or message.expires_at <= self.clock():
            return None  # with no time to live it was only for a subscription waiting now
        with self._lock:
            self._add(message)
        # a subscription that opened between the try above and the buffering did not see it: offer it once more
        return self.offer(engine, message.subscription, only=message.key)

    def buffers(self, key: UUID) -> bool:
        """Whether the message with this key waits here (not correlated, not expired)."""
        with self._lock:
            self._prune(self.clock())
            return key in self._keys

    def holds(self, subscription: Subscription) -> bool:
        """Whether a message may be buffered for this subscription (cheap: the engine asks on every new wait)."""
        return subscription in self._waiting

    def opened(self, engine: Correlator, subscription: Subscription) -> None:
        """The engine opened a subscription (run as one of its effects, after its lock): `offer` it."""
        self.offer(engine, subscription)

    def offer(self, engine: Correlator, subscription: Subscription, *, only: UUID | None = None) -> str | None:
        """A subscription opened: the oldest live message buffered for it goes to a waiting instance; its key."""
        with self._lock:
            self._prune(self.clock())
            found = self._waiting.get(subscription, [])
            message = next((m for m in found if only is None or m.key == only), None)
            if message is None:
                return None
            self._remove(message)
        instance = engine.correlate_message_to(message.tenant, message.name, message.correlation_key,
                                               message.variables)
        if instance is None:  # the waiting instance moved on meanwhile: keep the message for the next one
            with self._lock:
                self._waiting.setdefault(subscription, []).insert(0, message)
                self._keys[message.key] = message
            return None
        self._record(message, instance)
        return instance

    def _record(self, message: BufferedMessage, instance: str) -> None:
        """Store the correlation, so a restart does not buffer the message again."""
        actor = Actor(user=ACTOR_USER, tenant=message.tenant, roles=("process",))
        command = CorrelateProcessMessage(message_key=message.key, process_instance_key=instance,
                                          command_id=f"message-correlated:{message.key}:"
                                                     f"{message.expires_at.isoformat()}")
        try:
            self.bus.submit(command, actor)
        except DomainError as exc:
            log.error("message %s correlated to %s, but recording it was refused: %s", message.key, instance,
                      exc.detail)

    def _add(self, message: BufferedMessage) -> None:
        """Lock held."""
        self._waiting.setdefault(message.subscription, []).append(message)
        self._keys[message.key] = message
        self._counter += 1
        heapq.heappush(self._expiry, (message.expires_at, self._counter, message))

    def _remove(self, message: BufferedMessage) -> None:
        """Lock held; the heap entry stays and is skipped when it comes up."""
        if self._keys.get(message.key) is message:
            del self._keys[message.key]
        found = self._waiting.get(message.subscription)
        if found is None:
            return
        rest = [m for m in found if m is not message]
        if rest:
            self._waiting[message.subscription] = rest
        else:
            del self._waiting[message.subscription]

    def _prune(self, now: datetime) -> None:
        """Lock held: drop the messages expired at `now`."""
        while self._expiry and self._expiry[0][0] <= now:
            _due, _n, message = heapq.heappop(self._expiry)
            found = self._waiting.get(message.subscription)
            if found is not None and any(m is message for m in found):
                self._remove(message)
