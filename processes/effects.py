"""What a saved step makes happen after the engine's lock is released: commands to other aggregates (a user task
created or withdrawn) and other work, run in their order; consecutive commands are decided as one batch of the bus
(merged with what other threads submit meanwhile).

A batch decides its commands exactly as one by one (commands/batch.py), so sending a step's task commands together
changes only the cost: one read query per round and one append, instead of both per command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from commands.bus import Actor, CommandBus, Envelope
from commands.messages import Command
from domain.errors import DomainError

log = logging.getLogger("casestream.engine")
Effect = Callable[[], None]


@dataclass(frozen=True)
class SendCommand:
    """An effect that sends one command on a process instance's behalf (a refusal is logged, not raised)."""

    bus: CommandBus
    command: Command
    actor: Actor
    instance_key: str

    def envelope(self) -> Envelope:
        return Envelope(self.command, self.actor, self.instance_key, f"process:{self.instance_key}")

    def __call__(self) -> None:
        run_effects([self])


def run_effects(effects: Sequence[Effect]) -> None:
    """Run effects in order; each run of consecutive SendCommands is one batch of the bus."""
    sends: list[SendCommand] = []
    for effect in effects:
        if isinstance(effect, SendCommand):
            sends.append(effect)
            continue
        _send_all(sends)
        sends = []
        effect()
    _send_all(sends)


def _send_all(sends: Sequence[SendCommand]) -> None:
    if not sends:
        return
    # merged with what other threads submit meanwhile (the API's requests, the workers' job commands)
    outcomes = sends[0].bus.submit_envelopes([send.envelope() for send in sends])
    for send, outcome in zip(sends, outcomes, strict=True):
        if isinstance(outcome, DomainError):
            log.warning("process %s: %s refused: %s", send.instance_key, type(send.command).__name__, outcome.detail)
