"""Broadcasting signals for processes, and recording where one went (docs/processes.md, "Signals").

`BroadcastSignal` stores the signal as an event (admins and worker service accounts, as Zeebe's broadcast-signal
command); the engine's request follower (processes/request_follower.py) delivers it and records the outcome with
`RecordSignalDelivered` (sent by the engine's own actor only).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from uuid import UUID

from pydantic import Field, StringConstraints

from commands.handlers import Outcome, handles
from commands.messages import Command
from commands.unit_of_work import UnitOfWork
from domain.errors import NotFound
from domain.events import Context
from domain.process_signal import ProcessSignal

MAX_STARTED = 10_000  # instances one delivery record names (a broadcast reaching more is recorded cut)


class BroadcastSignal(Command):
    """Broadcast a signal: every waiting signal catch of this name in the tenant gets it, and every process whose
    start event is this signal starts."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)] = Field(
        description="The signal name (the bpmn:signal's name in the model).")
    variables: dict[str, Any] = Field(default_factory=dict, max_length=200,
                                      description="Set in each instance the signal starts or reaches.")


class RecordSignalDelivered(Command):
    """Record what a broadcast did (sent by the engine only)."""

    signal_key: UUID
    started: list[Annotated[str, StringConstraints(max_length=200)]] = Field(max_length=MAX_STARTED)
    delivered: list[Annotated[str, StringConstraints(max_length=200)]] = Field(max_length=MAX_STARTED)


@handles(BroadcastSignal)
def broadcast_signal(cmd: BroadcastSignal, ctx: Context, uow: UnitOfWork) -> Outcome:
    signal = uow.add(ProcessSignal(uuid.uuid4()))
    signal.broadcast(ctx, name=cmd.name, variables=dict(cmd.variables))
    return Outcome(signal.id, {"signal_key": str(signal.id)})


@handles(RecordSignalDelivered)
def record_signal_delivered(cmd: RecordSignalDelivered, ctx: Context, uow: UnitOfWork) -> Outcome:
    signal = uow.find(ProcessSignal, cmd.signal_key)
    if signal is None:
        raise NotFound(f"signal {cmd.signal_key} not found")
    signal.record_delivery(ctx, started=list(cmd.started), delivered=list(cmd.delivered))
    return Outcome(signal.id)
