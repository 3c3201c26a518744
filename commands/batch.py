"""Many commands at once: their reads shared in a few queries, their events stored in one transaction.

The commands are decided in their given order, each seeing what the earlier ones recorded, exactly as if they had
been sent one after the other. Reads go in rounds: every command runs until it asks for an aggregate that nobody
has read yet (`ReadNeeded`); the ids asked for are then read in one query and those commands run again (a case
command typically takes three rounds: its case, then its definition). A command waiting for a read holds back the
later commands that need what it needs or changed, or would change what it read; reading what it only read (the
shared definition) holds nobody back, so commands on different cases of one definition take their rounds together.
A command refused by the domain is refused alone. The events of every accepted command, each command with its
command-log entry, are appended at once; if that append loses a race with another writer, nothing of it is stored
and the accepted commands go through the bus one by one (fresh reads, retries). A command_id repeated within the
batch gets the first one's result, as it would from the command log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from uuid import UUID

from commands.outcomes import Prepared, Result, check_same_command, entry_events, repeat_of, stored_entry
from commands.ports import EventStore
from commands.read_ahead import reads_of
from commands.unit_of_work import LoadedAggregates, UnitOfWork
from domain.errors import CommandFailed, DomainError, InvalidStateChange, VersionConflict
from domain.events import Event

log = logging.getLogger(__name__)
FAILED = "the command failed unexpectedly; nothing of it was stored and the error has been logged"
MAX_ROUNDS = 10  # rounds of reads; the deepest handler reads three levels (case, definition, sequence)


class ReadNeeded(Exception):
    """A handler asked for an aggregate the batch has not read yet, or one an earlier waiting command uses."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)  # raised and caught a few times per command: no message text made
        self.aggregate_id = aggregate_id


class BatchReads:
    """The histories the batch's handlers load: read from the store in rounds, then extended by the events the
    batch's accepted commands record (not yet stored), so each command sees the ones before it."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._histories: dict[UUID, list[Event]] = {}
        self._latest: dict[UUID, Event | None] = {}  # aggregates loaded from their newest event alone
        self._wanted: set[UUID] = set()
        self._wanted_latest: set[UUID] = set()
        # what the commands waiting in this round use: a later command loading one of these waits too (at once,
        # before doing any work), so that it cannot overtake the earlier one
        self.blocked: set[UUID] = set()

    def events_of(self, aggregate_id: UUID) -> list[Event]:
        if aggregate_id in self.blocked:
            raise ReadNeeded(aggregate_id)
        history = self._histories.get(aggregate_id)
        if history is None:
            self._wanted.add(aggregate_id)
            raise ReadNeeded(aggregate_id)
        return history

    def last_event_of(self, aggregate_id: UUID) -> Event | None:
        if aggregate_id in self.blocked:
            raise ReadNeeded(aggregate_id)
        history = self._histories.get(aggregate_id)
        if history is not None:
            return history[-1] if history else None
        if aggregate_id in self._latest:
            return self._latest[aggregate_id]
        self._wanted_latest.add(aggregate_id)
        raise ReadNeeded(aggregate_id)

    def known(self, histories: dict[UUID, Sequence[Event]]) -> None:
        """Histories read ahead of the handlers asking for them."""
        for aggregate_id, events in histories.items():
            self._histories.setdefault(aggregate_id, list(events))

    def known_latest(self, aggregate_ids: set[UUID]) -> None:
        """Newest events read ahead of the handlers asking for them (one query each: few, a definition's
        number sequence)."""
        for aggregate_id in aggregate_ids - self._histories.keys() - self._latest.keys():
            self._latest[aggregate_id] = self.store.last_event_of(aggregate_id)

    def read_wanted(self) -> None:
        """Read what the last round asked for: the histories in one query, newest events one by one (few)."""
        if self._wanted:
            for aggregate_id, events in self.store.events_of_many(sorted(self._wanted)).items():
                self._histories[aggregate_id] = list(events)
        for aggregate_id in self._wanted_latest - self._histories.keys():
            self._latest[aggregate_id] = self.store.last_event_of(aggregate_id)
        self._wanted.clear()
        self._wanted_latest.clear()

    def record(self, events: Sequence[Event]) -> None:
        """Events an accepted command of the batch recorded: later commands load aggregates with them."""
        for event in events:
            aggregate_id = event.aggregate_id
            history = self._histories.get(aggregate_id)
            if history is not None:
                history.append(event)
            elif event.version == 1:
                self._histories[aggregate_id] = [event]
            else:
                self._latest[aggregate_id] = event


@dataclass
class _Accepted:
    index: int
    events: list[Event]  # the aggregates' events, then the command-log entry's (for a client's command_id)
    aggregate_id: str
    version: int
    extra: dict[str, object]


class Batch:
    """One batch of prepared commands of one actor: `decide`, then `store_accepted`, then `results`."""

    def __init__(self, store: EventStore, loaded: LoadedAggregates, prepared: Sequence[Prepared]) -> None:
        self.store = store
        self.loaded = loaded
        self.prepared = list(prepared)
        self.reads = BatchReads(store)
        self.outcomes: list[Result | DomainError | None] = [None] * len(self.prepared)
        self.accepted: list[_Accepted] = []
        self.one_by_one: list[int] = []  # left to the bus's one-command path, in order
        self.decided: list[int] = []  # the commands decided here (not answered from the command log)
        self._accepted_entries: dict[UUID, int] = {}  # command-log entry id -> the accepted command's index
        self.repeats: dict[int, int] = {}  # a command's index -> the earlier accepted one with its command_id
        # aggregate -> the highest index of a decided command that read it, and of one that changed it
        self._access: dict[UUID, tuple[int, int]] = {}
        self.out_of_order = False  # a command was decided on what a later one changed: see _check_order

    def decide(self) -> None:
        """Run every command's handler against the batch's reads; keep what each recorded, or its refusal."""
        pending = self._new_commands()
        for _ in range(MAX_ROUNDS):
            pending = self._round(pending)
            if self.out_of_order:
                self._abandon()
                return
            if not pending:
                return
            self.reads.read_wanted()
        self.one_by_one.extend(pending)

    def _abandon(self) -> None:
        """Store nothing of the batch: every command decided here goes to the bus one by one."""
        for index in self.decided:
            self.outcomes[index] = None
        self.accepted.clear()
        self.repeats.clear()
        self.one_by_one = list(self.decided)

    def _new_commands(self) -> list[int]:
        """The indexes to decide, less the repeats of command_ids already stored (answered from the log). The
        commands' targets (a case command's case) and what commands/read_ahead.py knows they load are read in the
        same query: the first things their handlers load, so those read rounds are saved."""
        client_ids = [p.entry_id for p in self.prepared if p.command.command_id]
        targets = {value for p in self.prepared for name in p.command.target_fields
                   if isinstance(value := getattr(p.command, name, None), UUID)}
        latest: set[UUID] = set()
        for prepared in self.prepared:
            histories, newest = reads_of(prepared.command, prepared.ctx.tenant)
            targets.update(histories)
            latest.update(newest)
        stored = self.store.events_of_many([*client_ids, *targets]) if client_ids or targets else {}
        self.reads.known({target: stored.get(target, []) for target in targets})
        self.reads.known_latest(latest)
        pending: list[int] = []
        for index, prepared in enumerate(self.prepared):
            entry = stored_entry(prepared.entry_id, stored.get(prepared.entry_id, []), prepared.ctx.tenant)
            if entry is None:
                pending.append(index)
                continue
            try:
                self.outcomes[index] = repeat_of(entry, self.store.position_of(prepared.entry_id, 1) or 0, prepared)
            except DomainError as exc:
                self.outcomes[index] = exc
        self.decided = list(pending)
        return pending

    def _round(self, pending: list[int]) -> list[int]:
        """Run the pending commands in order; return those that wait for a read. A later command may read what an
        earlier waiting command read (a shared definition: only writes conflict), but not what it needs, changed
        or added, and it changes nothing the waiting one touched: it waits too, so it cannot overtake it there.
        What each decided command read and changed is noted (`_check_order`): should an earlier command, resumed,
        change what a later one already decided on, the batch is abandoned (every command one by one)."""
        waiting: list[int] = []
        blocked = self.reads.blocked  # needed, changed or added by the waiting commands, and their log entries
        blocked.clear()
        shared: set[UUID] = set()  # only read by the waiting commands: readable by later ones, not changeable
        for index in pending:
            prepared = self.prepared[index]
            if prepared.entry_id in blocked:
                waiting.append(index)
                continue
            first = self._accepted_entries.get(prepared.entry_id)
            if first is not None:  # the command_id of an earlier command of this batch: its repeat
                self.repeats[index] = first
                continue
            uow = UnitOfWork(self.reads, prepared.ctx.tenant, self.loaded)
            try:
                outcome = prepared.handler(prepared.command, prepared.ctx, uow)
                events = uow.collect()
            except ReadNeeded as needed:
                uow.release()  # aggregates it loaded and did not change stay available
                self._wait(uow, {needed.aggregate_id, prepared.entry_id}, shared)
                waiting.append(index)
                continue
            except DomainError as exc:
                uow.release()
                if uow.touched() & blocked:
                    self._wait(uow, {prepared.entry_id}, shared)
                    waiting.append(index)
                else:
                    self.outcomes[index] = exc
                    self._check_order(index, uow.touched(), set())
                continue
            except Exception:  # a defect in one command fails that command alone (its aggregates are not kept)
                log.exception("%s failed in a batch", type(prepared.command).__name__)
                self.outcomes[index] = CommandFailed(FAILED)
                continue
            touched, changed = uow.touched(), uow.changed()
            if touched & blocked or changed & shared:  # (an aggregate it added, not loaded, that a waiting one needs)
                uow.release(unchanged_only=True)
                self._wait(uow, {prepared.entry_id}, shared)
                waiting.append(index)
                continue
            if not events:
                self.outcomes[index] = InvalidStateChange("the command changed nothing")
                self._check_order(index, touched, set())
                continue
            self._accept(index, prepared, outcome.aggregate_id, outcome.extra or {}, events)
            self._check_order(index, touched - changed, changed)
            # the changed aggregates are kept for the next command on them, here or later (if this batch is not
            # stored after all, their last event is not in the store and the next load replays from the store)
            uow.release()
        return waiting

    def _wait(self, uow: UnitOfWork, needs: set[UUID], shared: set[UUID]) -> None:
        """A command waits: later ones may not read what it needs or changed, nor change what it read."""
        changed = uow.changed()
        self.reads.blocked |= needs | changed
        shared |= uow.touched() - changed

    def _check_order(self, index: int, reads: set[UUID], writes: set[UUID]) -> None:
        """Note what the command at index decided on and changed; flag `out_of_order` when a command decided
        after a later one (it had waited) reads what that one changed, or changes what it read or changed."""
        for aggregate_id in reads:
            reader, writer = self._access.get(aggregate_id, (-1, -1))
            if writer > index:
                self.out_of_order = True
            self._access[aggregate_id] = (max(reader, index), writer)
        for aggregate_id in writes:
            reader, writer = self._access.get(aggregate_id, (-1, -1))
            if reader > index or writer > index:
                self.out_of_order = True
            self._access[aggregate_id] = (reader, max(writer, index))

    def _accept(
        self, index: int, prepared: Prepared, aggregate_id: UUID, extra: dict[str, object], events: list[Event]
    ) -> None:
        self.reads.record(events)
        self._accepted_entries[prepared.entry_id] = index
        target = next(e for e in reversed(events) if e.aggregate_id == aggregate_id)
        result = {"id": str(aggregate_id), "version": target.version, "extra": extra}
        stored = [*events, *entry_events(prepared, result)]
        self.accepted.append(_Accepted(index, stored, str(aggregate_id), target.version, extra))

    def store_accepted(self) -> None:
        """Append the accepted commands' events in one transaction. On a lost race none is stored, and every
        command decided here goes to the bus one by one (a refusal may have rested on an earlier command's
        effect that now does not happen)."""
        if not self.accepted:
            return
        try:
            positions = self.store.append([e for accepted in self.accepted for e in accepted.events])
        except VersionConflict:
            for index in self.decided:
                self.outcomes[index] = None
            self.one_by_one = sorted({*self.one_by_one, *self.decided})
            return
        offset = 0
        for accepted in self.accepted:
            offset += len(accepted.events)
            self.outcomes[accepted.index] = Result(
                accepted.aggregate_id, accepted.version, positions[offset - 1], dict(accepted.extra)
            )
        for index, first in self.repeats.items():
            self.outcomes[index] = self._repeat(index, first)

    def _repeat(self, index: int, first: int) -> Result | DomainError:
        prepared, earlier, result = self.prepared[index], self.prepared[first], self.outcomes[first]
        if not isinstance(result, Result):
            raise RuntimeError(f"command {first} of the batch was accepted but has no result")
        try:
            check_same_command(type(earlier.command).__name__, earlier.print_, prepared)
        except DomainError as exc:
            return exc
        return replace(result, repeated=True)

    def results(self) -> list[Result | DomainError]:
        missing = [i for i, outcome in enumerate(self.outcomes) if outcome is None]
        if missing:
            raise RuntimeError(f"batch left commands {missing} undecided")
        return [outcome for outcome in self.outcomes if outcome is not None]
