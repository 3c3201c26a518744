"""The command bus: idempotency by command_id, retries on a lost race, one atomic append per command."""

from __future__ import annotations

import contextlib
import hashlib
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from commands.handlers import Handler, contention_key, handler_for
from commands.messages import Command
from commands.ports import EventStore
from commands.unit_of_work import LoadedAggregates, UnitOfWork
from domain.command_log import CommandEntry, command_entry_id
from domain.errors import CommandIdReused, InvalidStateChange, VersionConflict
from domain.events import Context

MAX_ATTEMPTS = 25


@dataclass(frozen=True)
class Actor:
    """Who sends commands: taken from a verified token, never from a request body."""

    user: str
    tenant: str
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Result:
    """What a handled command returns: the aggregate, its new version, the log position to wait for."""

    id: str
    version: int
    position: int
    extra: dict[str, object]
    repeated: bool = False


def fingerprint(command: Command) -> str:
    """A stable hash of the command's name and payload (without its command_id)."""
    payload = command.model_dump(mode="json", exclude={"command_id"}, by_alias=True)
    raw = orjson.dumps([type(command).__name__, payload], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()


class CommandBus:
    """Dispatches a command to its handler and stores what it recorded, exactly once per command_id."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.loaded = LoadedAggregates()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @contextlib.contextmanager
    def _serialised(self, key: str | None) -> Iterator[None]:
        """Commands racing for one hot aggregate (a case-number sequence) take turns in this process;
        across processes the version check and retry still decide."""
        if key is None:
            yield
            return
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def dispatch(
        self, command: Command, actor: Actor, *, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> Result:
        command_id = command.command_id or str(uuid.uuid4())
        ctx = Context(
            actor=actor.user,
            tenant=actor.tenant,
            command_id=command_id,
            correlation_id=correlation_id or command_id,
            causation_id=causation_id or command_id,
            now=datetime.now(UTC),
            roles=actor.roles,
        )
        print_ = fingerprint(command)
        entry_id = command_entry_id(ctx.tenant, command_id)
        handler = handler_for(command)
        with self._serialised(contention_key(command, ctx.tenant)):
            return self._attempts(command, ctx, handler, entry_id, print_)

    def _attempts(
        self, command: Command, ctx: Context, handler: Handler, entry_id: uuid.UUID, print_: str
    ) -> Result:
        for attempt in range(MAX_ATTEMPTS):
            # a server-made command_id is new by construction; only a client's can be a repeat
            previous = self._previous(entry_id, ctx.tenant) if command.command_id or attempt else None
            if previous is not None:
                return self._repeat(previous, print_, type(command).__name__)
            uow = UnitOfWork(self.store, ctx.tenant, self.loaded, retry=attempt > 0)
            outcome = handler(command, ctx, uow)
            events = uow.collect()
            if not events:
                raise InvalidStateChange("the command changed nothing")
            target = next(e for e in reversed(events) if e.aggregate_id == outcome.aggregate_id)
            result = {"id": str(outcome.aggregate_id), "version": target.version, "extra": outcome.extra or {}}
            entry = CommandEntry.handled(ctx, type(command).__name__, print_, result)
            try:
                positions = self.store.append([*events, *entry.collect()])
            except VersionConflict:
                # A concurrent writer won (or the same command_id raced us): reload and decide again;
                # an expected_version check or the command log then gives the right answer.
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))
                continue
            uow.release()
            return Result(str(outcome.aggregate_id), target.version, positions[-1], dict(outcome.extra or {}))
        raise VersionConflict(f"gave up after {MAX_ATTEMPTS} concurrent conflicts; retry the command")

    def _previous(self, entry_id: uuid.UUID, tenant: str) -> tuple[CommandEntry, int] | None:
        events = self.store.events_of(entry_id)
        if not events:
            return None
        entry = CommandEntry.replay(entry_id, events)
        if entry.tenant != tenant:
            return None
        return entry, self.store.position_of(entry_id, 1) or 0

    @staticmethod
    def _repeat(previous: tuple[CommandEntry, int], print_: str, name: str) -> Result:
        entry, position = previous
        if entry.name != name or entry.fingerprint != print_:
            raise CommandIdReused(
                f"command_id was already used for a different {entry.name} command; use a new command_id"
            )
        result = entry.result
        return Result(result["id"], result["version"], position, dict(result["extra"]), repeated=True)
