"""The command bus: idempotency by command_id, retries on a lost race, one atomic append per command."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime

from commands.authorization import Authorized, Concealed
from commands.batch import FAILED, Batch
from commands.coalesce import Coalescer
from commands.handlers import contention_key, handler_for
from commands.messages import Command
from commands.outcomes import Prepared, Result, entry_events, fingerprint, repeat_of, stored_entry
from commands.policy import Policy
from commands.ports import EventStore
from commands.unit_of_work import LoadedAggregates, UnitOfWork
from domain.command_log import command_entry_id
from domain.errors import CommandFailed, DomainError, Forbidden, InvalidStateChange, VersionConflict
from domain.events import Context

MAX_ATTEMPTS = 25
__all__ = ["MAX_ATTEMPTS", "Actor", "CommandBus", "DenialListener", "Result", "fingerprint"]
log = logging.getLogger(__name__)

# Told of every command the policy refused: the prepared command (its command, and in its ctx the actor, tenant,
# roles, groups, command id and correlation id) and the Forbidden naming the reasons. A refusal answered as not found
# (a definition the actor may not read) is told too, with the Forbidden behind it.
DenialListener = Callable[[Prepared, Forbidden], None]
# A lock per contention key held across processes (adapters/file_locks.py), when several share the event store.
KeyLock = Callable[[str], AbstractContextManager[None]]


@dataclass(frozen=True)
class Actor:
    """Who sends commands: taken from a verified token, never from a request body."""

    user: str
    tenant: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()  # the identity provider's groups (Keycloak group paths without the leading /)


@dataclass(frozen=True)
class Envelope:
    """A command with who sends it and why."""

    command: Command
    actor: Actor
    correlation_id: str | None = None
    causation_id: str | None = None


class CommandBus:
    """Dispatches a command to its handler and stores what it recorded, exactly once per command_id.

    With a policy, every command is decided before its handler runs (commands/authorization.py), on both the
    one-by-one and the batch path; without one (policy_engine=none, tests of the domain) every command is allowed.
    `denial_listeners` (DenialListener: `(prepared, forbidden) -> None`) are called once per refused command, after
    its batch was stored and outside every lock of the bus; an exception in one is logged, never the command's answer.
    """

    def __init__(self, store: EventStore, policy: Policy | None = None, key_lock: KeyLock | None = None) -> None:
        self.store = store
        self.policy = policy
        self.key_lock = key_lock
        self.denial_listeners: list[DenialListener] = []
        self.loaded = LoadedAggregates()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._coalescer: Coalescer[list[Envelope], list[Result | DomainError]] = Coalescer(self._run_merged, 64)

    @contextlib.contextmanager
    def _serialised(self, key: str | None) -> Iterator[None]:
        """Commands racing for one hot aggregate (a case-number sequence) take turns in this process;
        across processes (with a key_lock) too; otherwise the version check and retry decide."""
        if key is None:
            yield
            return
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if self.key_lock is None:
                yield
                return
            with self.key_lock(key):  # other processes on the same store take their turn too
                yield

    def dispatch(
        self, command: Command, actor: Actor, *, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> Result:
        prepared = self.prepare(command, actor, correlation_id, causation_id)
        try:
            return self._serialised_attempts(prepared)
        except DomainError as exc:
            self._tell_denials([(prepared, exc)])
            raise

    def _serialised_attempts(self, prepared: Prepared) -> Result:
        with self._serialised(contention_key(prepared.command, prepared.ctx.tenant)):
            return self._attempts(prepared)

    def dispatch_many(
        self, commands: Sequence[Command], actor: Actor, *, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> list[Result | DomainError]:
        """Handle commands in order as if sent one by one, reading and storing them together (commands/batch.py):
        each gets its Result, or the DomainError that refused it (the others are not affected)."""
        return self.dispatch_envelopes([Envelope(c, actor, correlation_id, causation_id) for c in commands])

    def dispatch_envelopes(self, envelopes: Sequence[Envelope]) -> list[Result | DomainError]:
        """dispatch_many for commands of possibly different actors and correlations."""
        prepared = [self.prepare(e.command, e.actor, e.correlation_id, e.causation_id) for e in envelopes]
        keys = sorted({k for p in prepared if (k := contention_key(p.command, p.ctx.tenant)) is not None})
        with contextlib.ExitStack() as held:
            for key in keys:
                held.enter_context(self._serialised(key))
            batch = Batch(self.store, self.loaded, prepared)
            batch.decide()
            batch.store_accepted()
        # what the batch could not settle (a lost race, rounds exhausted) goes the one-by-one way
        for index in batch.one_by_one:
            envelope = envelopes[index]
            prepared[index] = self.prepare(envelope.command, envelope.actor, envelope.correlation_id,
                                           envelope.causation_id)
            try:
                batch.outcomes[index] = self._serialised_attempts(prepared[index])
            except DomainError as exc:
                batch.outcomes[index] = exc
            except Exception:  # a defect fails this command alone: the others of the batch may be stored already
                log.exception("%s failed", type(envelope.command).__name__)
                batch.outcomes[index] = CommandFailed(FAILED)
        results = batch.results()
        self._tell_denials(list(zip(prepared, results, strict=True)))
        return results

    def _tell_denials(self, outcomes: Sequence[tuple[Prepared, Result | DomainError]]) -> None:
        """Hand each policy refusal among outcomes to the denial listeners."""
        if not self.denial_listeners:
            return
        for prepared, outcome in outcomes:
            denial = outcome.denial if isinstance(outcome, Concealed) else outcome
            if not isinstance(denial, Forbidden):
                continue
            for listener in self.denial_listeners:
                try:
                    listener(prepared, denial)
                except Exception:
                    log.exception("a denial listener failed for %s", type(prepared.command).__name__)

    def submit(
        self, command: Command, actor: Actor, *, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> Result:
        """`dispatch`, handled in one batch with what other threads submit meanwhile (shared reads, one
        transaction; commands/batch.py). The API's path: 32 concurrent requests cost a few queries, not ~100."""
        outcome = self.submit_many([command], actor, correlation_id=correlation_id, causation_id=causation_id)[0]
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    def submit_many(
        self, commands: Sequence[Command], actor: Actor, *, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> list[Result | DomainError]:
        """`dispatch_many`, merged with the commands other threads submit meanwhile into one batch (in the order
        they arrive; each caller's commands stay together and in order). Concurrent batches in this process so
        never lose races to each other."""
        return self._coalescer.submit([Envelope(c, actor, correlation_id, causation_id) for c in commands])

    def submit_envelopes(self, envelopes: Sequence[Envelope]) -> list[Result | DomainError]:
        """`submit_many` for commands of possibly different actors and correlations (the API's gathered requests):
        merged with what other threads submit meanwhile, each envelope's outcome in order."""
        return self._coalescer.submit(list(envelopes))

    def _run_merged(self, groups: list[list[Envelope]]) -> list[list[Result | DomainError]]:
        outcomes = self.dispatch_envelopes([envelope for group in groups for envelope in group])
        split: list[list[Result | DomainError]] = []
        offset = 0
        for group in groups:
            split.append(outcomes[offset : offset + len(group)])
            offset += len(group)
        return split

    def prepare(
        self, command: Command, actor: Actor, correlation_id: str | None, causation_id: str | None
    ) -> Prepared:
        """The command with its context (actor, tenant, ids, time), handler, command-log entry id and fingerprint."""
        made = None if command.command_id else uuid.uuid4()
        command_id = command.command_id or str(made)
        ctx = Context(
            actor=actor.user,
            tenant=actor.tenant,
            command_id=command_id,
            correlation_id=correlation_id or command_id,
            causation_id=causation_id or command_id,
            now=datetime.now(UTC),
            roles=actor.roles,
            groups=actor.groups,
        )
        handler = handler_for(command)
        if self.policy is not None:
            handler = Authorized(self.policy, handler)
        # a server-made command_id is never sent again, so its log entry is never stored or looked up: its own
        # random UUID names it (no uuid5 hash per command)
        return Prepared(command, ctx, handler, made or command_entry_id(ctx.tenant, command_id),
                        fingerprint(command) if command.command_id else "")

    def _attempts(self, prepared: Prepared) -> Result:
        command, ctx = prepared.command, prepared.ctx
        for attempt in range(MAX_ATTEMPTS):
            # a server-made command_id is new by construction; only a client's can be a repeat
            if command.command_id or attempt:
                entry = stored_entry(prepared.entry_id, self.store.events_of(prepared.entry_id), ctx.tenant)
                if entry is not None:
                    return repeat_of(entry, self.store.position_of(prepared.entry_id, 1) or 0, prepared)
            uow = UnitOfWork(self.store, ctx.tenant, self.loaded, retry=attempt > 0)
            outcome = prepared.handler(command, ctx, uow)
            events = uow.collect()
            if not events:
                raise InvalidStateChange("the command changed nothing")
            target = next(e for e in reversed(events) if e.aggregate_id == outcome.aggregate_id)
            result = {"id": str(outcome.aggregate_id), "version": target.version, "extra": outcome.extra or {}}
            try:
                positions = self.store.append([*events, *entry_events(prepared, result)])
            except VersionConflict:
                # A concurrent writer won (or the same command_id raced us): reload and decide again;
                # an expected_version check or the command log then gives the right answer.
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))
                continue
            uow.release()
            return Result(str(outcome.aggregate_id), target.version, positions[-1], dict(outcome.extra or {}))
        raise VersionConflict(f"gave up after {MAX_ATTEMPTS} concurrent conflicts; retry the command")
