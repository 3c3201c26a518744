"""What the bus hands back: a handled command's Result, and the Result of a repeated command_id."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from commands.handlers import Handler
from commands.messages import Command
from domain.command_log import CommandEntry
from domain.errors import CommandIdReused
from domain.events import Context, Event


@dataclass(frozen=True)
class Result:
    """What a handled command returns: the aggregate, its new version, the log position to wait for."""

    id: str
    version: int
    position: int
    extra: dict[str, object]
    repeated: bool = False


@dataclass(frozen=True)
class Prepared:
    """A command ready for its handler: its context, handler, command-log entry id and payload fingerprint."""

    command: Command
    ctx: Context
    handler: Handler
    entry_id: uuid.UUID
    print_: str  # the payload's fingerprint; "" without a client command_id (nothing ever compares it then)


def fingerprint(command: Command) -> str:
    """A stable hash of the command's name and payload (without its command_id)."""
    payload = command.model_dump(mode="json", exclude={"command_id"}, by_alias=True)
    raw = orjson.dumps([type(command).__name__, payload], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()


def entry_events(prepared: Prepared, result: dict[str, Any]) -> list[Event]:
    """The command-log entry to store with a command's events: only for a client's command_id (a server-made one
    is never sent again, so its entry would never be read)."""
    if not prepared.command.command_id:
        return []
    return CommandEntry.handled(prepared.ctx, type(prepared.command).__name__, prepared.print_, result).collect()


def stored_entry(entry_id: uuid.UUID, events: Sequence[Event], tenant: str) -> CommandEntry | None:
    """The command-log entry in events, if there is one of this tenant."""
    if not events:
        return None
    entry = CommandEntry.replay(entry_id, events)
    return entry if entry.tenant == tenant else None


def check_same_command(first_name: str, first_print: str, prepared: Prepared) -> None:
    """Raise CommandIdReused unless prepared is the command (name and payload) first sent with its command_id."""
    if first_name != type(prepared.command).__name__ or first_print != prepared.print_:
        raise CommandIdReused(
            f"command_id was already used for a different {first_name} command; use a new command_id"
        )


def repeat_of(entry: CommandEntry, position: int, prepared: Prepared) -> Result:
    """The first result of a command_id sent again, or CommandIdReused when its payload differs."""
    check_same_command(entry.name, entry.fingerprint, prepared)
    result = entry.result
    return Result(result["id"], result["version"], position, dict(result["extra"]), repeated=True)
