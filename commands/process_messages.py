"""Publishing messages for processes, and recording which subscription one went to (docs/processes.md, "Messages").

`PublishProcessMessage` stores the message as an event; the engine's message buffer (processes/message_buffer.py)
then correlates it to a waiting subscription or keeps it until one opens or its time to live passes, and records
the correlation with `CorrelateProcessMessage` (sent by the engine's own actor only).
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from pydantic import Field, StrictInt, StringConstraints, field_validator

from commands.handlers import Outcome, handles
from commands.messages import Command
from commands.unit_of_work import UnitOfWork
from domain.errors import NotFound
from domain.events import Context
from domain.process_message import ProcessMessage, message_key

MAX_TTL = timedelta(days=365)  # a message buffered longer than a year is a mistake, not a plan
DEFAULT_TTL = timedelta(hours=1)  # when the publisher names none (Zeebe's default is the same)
# ISO-8601 days-time durations only: a month or a year has no fixed length, a time to live must
_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")
MessageName = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


def parse_time_to_live(value: int | str) -> timedelta:
    """A time to live in milliseconds (an integer) or an ISO-8601 duration like `PT10M` or `P2DT3H`."""
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        ttl = timedelta(milliseconds=value)
    else:
        found = _DURATION.fullmatch(value.strip())
        if found is None or value.strip() in ("P", "PT") or value.strip().endswith("T"):
            raise ValueError("must be milliseconds or an ISO-8601 duration such as PT10M or P1DT12H "
                             "(days, hours, minutes, seconds)")
        days, hours, minutes, seconds = (float(part or 0) for part in found.groups())
        ttl = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if ttl > MAX_TTL:
        raise ValueError("must be at most 365 days")
    return ttl


class PublishProcessMessage(Command):
    """Publish a message for BPMN processes: correlated to a waiting subscription or buffered until its TTL."""

    name: MessageName = Field(description="The message name a catch event, receive task or boundary waits for.")
    correlation_key: Annotated[str, StringConstraints(max_length=500)] | StrictInt = Field(
        description="Matched against the subscription's evaluated correlation key (compared as text).")
    variables: dict[str, Any] = Field(default_factory=dict, max_length=200,
                                      description="Set in the process instance the message correlates to.")
    time_to_live: StrictInt | Annotated[str, StringConstraints(max_length=50)] = Field(
        default=int(DEFAULT_TTL.total_seconds() * 1000),
        description="How long the message waits for a subscription: milliseconds or an ISO-8601 duration "
                    "(PT10M). 0: only a subscription waiting now gets it.")
    message_id: Annotated[str, StringConstraints(max_length=200)] = Field(
        default="", description="Deduplication: a second publish with the same name, correlation key and id "
                                "while the first is alive is refused with 409.")

    @field_validator("time_to_live")
    @classmethod
    def _ttl(cls, value: int | str) -> int | str:
        parse_time_to_live(value)
        return value

    def ttl(self) -> timedelta:
        return parse_time_to_live(self.time_to_live)

    def key_text(self) -> str:
        return str(self.correlation_key)


class CorrelateProcessMessage(Command):
    """Record that a published message went to a process instance (sent by the engine only)."""

    message_key: UUID
    process_instance_key: str = Field(min_length=1, max_length=200)


@handles(PublishProcessMessage)
def publish_process_message(cmd: PublishProcessMessage, ctx: Context, uow: UnitOfWork) -> Outcome:
    key_text = cmd.key_text()
    key = message_key(ctx.tenant, cmd.name, key_text, cmd.message_id) if cmd.message_id else uuid.uuid4()
    message = uow.find(ProcessMessage, key) or uow.add(ProcessMessage(key))
    event = message.publish(ctx, name=cmd.name, correlation_key=key_text, variables=dict(cmd.variables),
                            time_to_live=cmd.ttl(), message_id=cmd.message_id)
    return Outcome(message.id, {"message_key": str(message.id), "expires_at": event.expires_at,
                                "publication": message.publications})


@handles(CorrelateProcessMessage)
def correlate_process_message(cmd: CorrelateProcessMessage, ctx: Context, uow: UnitOfWork) -> Outcome:
    message = uow.find(ProcessMessage, cmd.message_key)
    if message is None:
        raise NotFound(f"process message {cmd.message_key} not found")
    message.correlate(ctx, cmd.process_instance_key)
    return Outcome(message.id, {"process_instance_key": cmd.process_instance_key})
