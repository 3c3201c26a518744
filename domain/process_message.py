"""Process messages: what an integration publishes for BPMN processes to catch (docs/processes.md, "Messages").

One aggregate per published message. A message published with a `message_id` lives at an id derived from the
tenant, its name, correlation key and message id, so publishing it again while the first is alive finds the first
and is refused (Zeebe's rule for message ids); once that one has expired (or correlated) the same id may be
published again, as a new publication of the same aggregate. A message without an id gets a fresh aggregate.
`ProcessMessageCorrelated` records the one subscription a message went to: a message correlates once.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from domain.aggregate import Aggregate, applies
from domain.definition import NAMESPACE
from domain.errors import AlreadyExists, InvalidStateChange
from domain.events import Context, Event


def message_key(tenant: str, name: str, correlation_key: str, message_id: str) -> UUID:
    """The aggregate id of the message with this id (Zeebe dedupes on name, correlation key and message id)."""
    return uuid.uuid5(NAMESPACE, f"process-message:{tenant}:{name}:{correlation_key}:{message_id}")


class ProcessMessagePublished(Event):
    """A message for processes: correlated to a waiting subscription or buffered until `expires_at`."""

    name: str
    correlation_key: str
    variables: dict[str, Any]
    time_to_live_ms: int
    expires_at: str  # ISO-8601, as the codec keeps times
    message_id: str  # "" when the publisher gave none


class ProcessMessageCorrelated(Event):
    """The message went to one subscription of one process instance."""

    name: str
    correlation_key: str
    process_instance_key: str


class ProcessMessageUnmatched(Event):
    """No subscription waited for the message when the engine took it: kept (`buffered`) while its time to live
    lasts, or dropped (no time to live left)."""

    buffered: bool


class ProcessMessage(Aggregate):
    """One published message: alive (buffered) until it correlates or its time to live passes."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.name = ""
        self.correlation_key = ""
        self.variables: dict[str, Any] = {}
        self.expires_at: datetime | None = None
        self.correlated_to: str | None = None
        self.publications = 0
        self.delivered = False  # the engine took the latest publication (correlated it, or recorded it unmatched)

    def alive(self, now: datetime) -> bool:
        """Published, not correlated yet and not expired at `now`."""
        return self.expires_at is not None and self.correlated_to is None and now < self.expires_at

    def publish(self, ctx: Context, *, name: str, correlation_key: str, variables: dict[str, Any],
                time_to_live: timedelta, message_id: str) -> ProcessMessagePublished:
        """Publish (again, when the id's earlier message expired or correlated); refused while it is alive."""
        if message_id and self.alive(ctx.now):
            raise AlreadyExists(f"a message {name!r} with correlation key {correlation_key!r} and message id "
                                f"{message_id!r} was already published and is alive until "
                                f"{self.expires_at.isoformat() if self.expires_at else ''}")
        return self.record(ctx, ProcessMessagePublished, name=name, correlation_key=correlation_key,
                           variables=variables, time_to_live_ms=int(time_to_live.total_seconds() * 1000),
                           expires_at=(ctx.now + time_to_live).isoformat(), message_id=message_id)

    def correlate(self, ctx: Context, process_instance_key: str) -> None:
        """Record the subscription the message went to (once per publication)."""
        if self.expires_at is None:
            raise InvalidStateChange("the message was never published")
        if self.correlated_to is not None:
            raise InvalidStateChange(f"the message already correlated to process instance {self.correlated_to}")
        self.record(ctx, ProcessMessageCorrelated, name=self.name, correlation_key=self.correlation_key,
                    process_instance_key=process_instance_key)

    def unmatched(self, ctx: Context, *, buffered: bool) -> None:
        """Record that nothing waited for the latest publication when the engine took it."""
        if self.expires_at is None:
            raise InvalidStateChange("the message was never published")
        self.record(ctx, ProcessMessageUnmatched, buffered=buffered)

    @applies(ProcessMessagePublished)
    def _published(self, e: ProcessMessagePublished) -> None:
        self.name, self.correlation_key, self.variables = e.name, e.correlation_key, dict(e.variables)
        self.expires_at, self.correlated_to = datetime.fromisoformat(e.expires_at), None
        self.publications += 1
        self.delivered = False

    @applies(ProcessMessageCorrelated)
    def _correlated(self, e: ProcessMessageCorrelated) -> None:
        self.correlated_to = e.process_instance_key
        self.delivered = True

    @applies(ProcessMessageUnmatched)
    def _unmatched(self, _e: ProcessMessageUnmatched) -> None:
        self.delivered = True


def fate_of(events: list[Event], publication: int) -> tuple[str | None, bool] | None:
    """What became of the message's `publication`-th publication when the engine took it: (the instance it
    correlated to, None; buffered); None while the engine has not taken it yet."""
    seen = 0
    for event in events:
        if isinstance(event, ProcessMessagePublished):
            seen += 1
        elif seen == publication and isinstance(event, ProcessMessageCorrelated):
            return event.process_instance_key, False
        elif seen == publication and isinstance(event, ProcessMessageUnmatched):
            return None, event.buffered
    return None
