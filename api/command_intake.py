"""Commands of concurrent requests handed to the bus together: one thread hop per group, not one per request.

Each command endpoint used to run `bus.submit` on a pool thread of its own; under load 32 threads then woke and
waited on the bus's coalescer in turn, each hop costing a future, a thread switch and GIL hand-offs. Here the
event loop gathers the commands that arrive while a group is being handled and sends them as the next group
(`CommandBus.submit_envelopes`, which still merges them with what the process manager submits meanwhile); a
lone command is sent at once. Every command keeps its own actor, correlation and outcome.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

from commands.bus import CommandBus, Envelope
from commands.outcomes import Result
from domain.errors import DomainError

MAX_GROUP = 256


def intake_of(state: Any, bus: CommandBus, executor: Executor) -> CommandIntake:
    """The app's intake (app.state.command_intake), made on first use."""
    intake: CommandIntake | None = getattr(state, "command_intake", None)
    if intake is None:
        intake = state.command_intake = CommandIntake(bus, executor)
    return intake


class CommandIntake:
    """The API's way into the bus from the event loop (one per app and loop)."""

    def __init__(self, bus: CommandBus, executor: Executor) -> None:
        self.bus = bus
        self.executor = executor
        self._pending: list[tuple[Envelope, asyncio.Future[Result]]] = []
        self._draining = False
        self._drainer: asyncio.Task[None] | None = None  # held: the loop keeps only a weak reference to tasks

    async def submit(self, envelope: Envelope) -> Result:
        """The command's Result; raises the DomainError that refused it."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((envelope, future))
        if not self._draining:
            self._draining = True
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
                envelopes = [envelope for envelope, _future in group]
                try:
                    outcomes: list[Result | DomainError] | list[Exception] = await loop.run_in_executor(
                        self.executor, self.bus.submit_envelopes, envelopes)
                except Exception as exc:  # a defect fails its group, as the bus's own coalescing does
                    outcomes = [exc] * len(group)
                for (_envelope, future), outcome in zip(group, outcomes, strict=True):
                    if future.done():  # the request went away (client disconnected)
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._draining = False
