"""Recording the audit log: refused commands (coalesced, off the command's thread) and membership changes.

Coalescing rule (docs/audit.md): refusals with the same tenant, actor, action and reasons within one fixed window
(`window_seconds`, default 60 s, aligned to the epoch so every process agrees) form one entry. Its first refusal
is written at once (`CommandDenied`); identical ones later in the window only raise a counter in memory, written
as one `CommandDenialsRepeated` when the window ends. So one kind of refusal costs at most two events per window
and process, however often it is repeated; the target ids (which a caller can vary freely) are not part of the
key, only a sample of them is kept. At most `max_pending` kinds are held per window; refusals beyond that are
counted in `dropped` and logged, not stored.

The recorder never raises into the bus and never writes on the command's thread: `on_denied` (the bus's
DenialListener) updates the counters and wakes a writer thread, which appends (batched) and logs its own storage
errors, retrying them later.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from commands.bus import Actor, CommandBus
from commands.messages import Command
from commands.outcomes import Prepared
from commands.ports import EventStore
from domain.audit import MAX_TARGETS, AuditEntry, denial_entry_id
from domain.errors import Forbidden, VersionConflict
from domain.events import Context, Event

log = logging.getLogger(__name__)

DEFAULT_WINDOW_SECONDS = 60.0
DEFAULT_MAX_PENDING = 10_000
RETRY_SECONDS = 1.0
Clock = Callable[[], float]


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")


def command_targets(command: Command) -> list[str]:
    """What a command addresses, as `kind:id` strings (case, task, definition, queue, record type, record)."""
    name = type(command).__name__
    fields = vars(command)
    targets = [f"{kind}:{fields[attr]}" for attr, kind in (("case_id", "case"), ("task_id", "task"))
               if fields.get(attr) is not None]
    if name == "OpenCase":
        targets.append(f"definition:{fields['definition_key']}")
    elif name in ("PublishCaseDefinition", "DefineQueue", "DefineRecordType"):
        kind = {"PublishCaseDefinition": "definition", "DefineQueue": "queue", "DefineRecordType": "record_type"}
        targets.append(f"{kind[name]}:{fields['key']}")
    elif name in ("SaveRecord", "RemoveRecord"):
        targets.append(f"record:{fields['type_key']}/{fields['key']}")
    return targets


@dataclass(frozen=True)
class Denial:
    """One refused command, as the bus saw it."""

    actor: Actor
    action: str
    targets: tuple[str, ...]
    reasons: tuple[str, ...]
    detail: str
    command_id: str
    correlation_id: str


@dataclass
class _Slot:
    """The refusals of one (tenant, actor, action, reasons) in one window, and how many of them are stored."""

    first: Denial
    window_start: float
    first_at: float
    last_at: float
    count: int = 1
    written: int = 0  # how many of `count` this process has stored
    created: bool = False  # the entry's first event exists (written here, or by another process)
    targets: list[str] = field(default_factory=list)


class DenialStore(Protocol):
    """What the recorder needs of the event store."""

    def append(self, events: Sequence[Event]) -> list[int]: ...

    def events_of(self, aggregate_id: uuid.UUID) -> list[Event]: ...


class AuditRecorder:
    """Turns the bus's refusals into audit entries (see the module docstring for the coalescing rule)."""

    def __init__(
        self, store: DenialStore, *, window_seconds: float = DEFAULT_WINDOW_SECONDS,
        max_pending: int = DEFAULT_MAX_PENDING, clock: Clock = time.time, background: bool = True,
    ) -> None:
        self.store = store
        self.window = window_seconds
        self.max_pending = max_pending
        self.clock = clock
        self.dropped = 0
        self.failures = 0
        self._slots: dict[tuple[str, str, str, tuple[str, ...], float], _Slot] = {}
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._background = background
        self._thread: threading.Thread | None = None

    # --- the bus side: cheap, never raises ------------------------------------------------------------------

    def on_denied(self, prepared: Prepared, error: Forbidden) -> None:
        """The bus's DenialListener: note one command the policy refused."""
        try:
            ctx, command = prepared.ctx, prepared.command
            self.denied(Denial(
                actor=Actor(ctx.actor, ctx.tenant, ctx.roles, ctx.groups), action=type(command).__name__,
                targets=tuple(command_targets(command)), reasons=tuple(error.reasons), detail=error.detail,
                command_id=ctx.command_id, correlation_id=ctx.correlation_id,
            ))
        except Exception:  # auditing must never fail the command that was refused
            log.exception("could not note a refused %s", type(prepared.command).__name__)

    def denied(self, denial: Denial) -> None:
        """Count one refusal into its window's entry and wake the writer."""
        now = self.clock()
        window_start = math.floor(now / self.window) * self.window
        actor = denial.actor
        key = (actor.tenant, actor.user, denial.action, denial.reasons, window_start)
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                if len(self._slots) >= self.max_pending:
                    self._forget_settled(now)
                if len(self._slots) >= self.max_pending:
                    self.dropped += 1
                    if self.dropped == 1 or self.dropped % 1000 == 0:
                        log.warning("audit: %d refusals not recorded (more than %d kinds pending)",
                                    self.dropped, self.max_pending)
                    return
                slot = self._slots[key] = _Slot(denial, window_start, now, now, targets=list(denial.targets))
            else:
                slot.count += 1
                slot.last_at = now
                if len(slot.targets) < MAX_TARGETS:
                    slot.targets.extend(t for t in denial.targets if t not in slot.targets)
                    del slot.targets[MAX_TARGETS:]
            self._start_writer()
        self._wake.set()

    def _start_writer(self) -> None:
        if self._background and self._thread is None and not self._stopped:
            self._thread = threading.Thread(target=self._run, name="casestream-audit", daemon=True)
            self._thread.start()

    # --- the writer side ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopped:
            due = self._next_due()
            woken = self._wake.wait(self.window if due is None else due)
            self._wake.clear()
            if self._stopped:
                break
            if not woken and due is None and self._retire():
                return
            if not self.flush():
                time.sleep(RETRY_SECONDS)  # the store failed: do not spin on it

    def _retire(self) -> bool:
        """End an idle writer (a window with nothing to do), so that a platform closed without close() leaves no
        thread behind; the next refusal starts another. Under the lock `denied` adds work with, so none is missed."""
        with self._lock:
            if any(not s.created or s.count > s.written for s in self._slots.values()):
                return False
            self._thread = None
            return True

    def _next_due(self) -> float | None:
        """Seconds until the earliest window with unstored repeats ends (None: nothing to wait for)."""
        with self._lock:
            if any(not s.created for s in self._slots.values()):
                return 0.0
            ends = [s.window_start + self.window for s in self._slots.values() if s.count > s.written]
        return max(0.0, min(ends) - self.clock()) if ends else None

    def flush(self, *, final: bool = False) -> bool:
        """Store what is due: new entries, and the counts of windows that have ended (all counts when final).
        Returns False when the store failed (the work stays pending and is retried)."""
        with self._flushing:
            now = self.clock()
            with self._lock:
                fresh = [s for s in self._slots.values() if not s.created]
                ended = [s for s in self._slots.values()
                         if s.created and s.count > s.written and (final or s.window_start + self.window <= now)]
                plan = [(s, s.count, s.last_at, list(s.targets)) for s in fresh + ended]
            ok = self._create([p for p in plan if not p[0].created]) and self._repeat(
                [p for p in plan if p[0].created])
            with self._lock:
                self._forget_settled(now)
            return ok

    def _forget_settled(self, now: float) -> None:
        """Drop the entries of ended windows that are fully stored (call holding the lock)."""
        for key, slot in list(self._slots.items()):
            if slot.created and slot.count == slot.written and slot.window_start + self.window <= now:
                del self._slots[key]

    def _ctx(self, slot: _Slot, command_id: str, correlation_id: str, at: float) -> Context:
        actor = slot.first.actor
        return Context(actor.user, actor.tenant, command_id, correlation_id, command_id,
                       datetime.fromtimestamp(at, UTC), actor.roles)

    def _create(self, plan: list[tuple[_Slot, int, float, list[str]]]) -> bool:
        """The first event of new entries, in one append (one by one if another process wrote one of them)."""
        if not plan:
            return True
        entries = []
        for slot, count, last_at, targets in plan:
            first = slot.first
            entry = AuditEntry.denied(
                self._ctx(slot, first.command_id, first.correlation_id, slot.first_at),
                entry_id=self._entry_id(slot), roles=first.actor.roles, groups=first.actor.groups,
                action=first.action, targets=targets, reasons=first.reasons, detail=first.detail,
                window_start=_iso(slot.window_start), first_at=_iso(slot.first_at), last_at=_iso(last_at), count=count,
            )
            entries.append((slot, count, entry.collect()))
        try:
            self.store.append([e for _slot, _count, events in entries for e in events])
        except VersionConflict:
            return all(self._create_one(slot, count, events) for slot, count, events in entries)
        except Exception:
            return self._failed(len(entries))
        with self._lock:
            for slot, count, _events in entries:
                slot.created, slot.written = True, count
        return True

    def _create_one(self, slot: _Slot, count: int, events: list[Event]) -> bool:
        try:
            self.store.append(events)
            written = count
        except VersionConflict:
            written = 0  # another process opened this window's entry: our refusals are added to its count
        except Exception:
            return self._failed(1)
        with self._lock:
            slot.created, slot.written = True, written
        return True

    def _repeat(self, plan: list[tuple[_Slot, int, float, list[str]]]) -> bool:
        """Raise the stored counts by what this process counted since (reloading on a concurrent update)."""
        ok = True
        for slot, count, last_at, targets in plan:
            for _attempt in range(5):
                try:
                    entry = AuditEntry.replay(self._entry_id(slot), self.store.events_of(self._entry_id(slot)))
                    command_id = str(uuid.uuid4())
                    entry.repeated(self._ctx(slot, command_id, slot.first.correlation_id, last_at),
                                   count=entry.count + count - slot.written, last_at=_iso(last_at), targets=targets)
                    self.store.append(entry.collect())
                except VersionConflict:
                    continue
                except Exception:
                    ok = self._failed(1)
                    break
                with self._lock:
                    slot.written = count
                break
        return ok

    def _entry_id(self, slot: _Slot) -> uuid.UUID:
        first = slot.first
        return denial_entry_id(first.actor.tenant, first.actor.user, first.action, first.reasons,
                               _iso(slot.window_start))

    def _failed(self, entries: int) -> bool:
        self.failures += 1
        log.exception("audit: could not store %d entries; retrying later", entries)
        return False

    @property
    def writing(self) -> bool:
        """Whether a writer thread runs now."""
        return self._thread is not None

    def pending(self) -> int:
        """Kinds of refusal held in memory (new, or with counts not yet stored)."""
        with self._lock:
            return len(self._slots)

    def close(self, timeout: float = 5.0) -> None:
        """Store everything counted so far and stop the writer."""
        self._stopped = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.flush(final=True)
        except Exception:
            log.exception("audit: final flush failed")


def record_membership_change(
    store_or_bus: EventStore | CommandBus, tenant: str, user: str, before: Mapping[str, Sequence[str]],
    after: Mapping[str, Sequence[str]], by: str, source: str,
) -> int | None:
    """Store that `user`'s roles/groups in `tenant` went from `before` to `after` ({"roles": [...], "groups":
    [...]}), changed by `by` through `source` ("users-file", "cli"). Returns the event's log position, or None when
    nothing changed. Storage errors propagate: the caller changed the memberships and must know."""
    store = store_or_bus.store if isinstance(store_or_bus, CommandBus) else store_or_bus
    old = {k: list(v) for k, v in before.items()}
    new = {k: list(v) for k, v in after.items()}
    if all(set(old.get(k, ())) == set(new.get(k, ())) for k in ("roles", "groups")):
        return None
    command_id = str(uuid.uuid4())
    ctx = Context(by, tenant, command_id, command_id, command_id, datetime.now(UTC))
    entry = AuditEntry.membership_changed(ctx, user=user, before=old, after=new, by=by, source=source)
    return store.append(entry.collect())[-1]



def audit_denials(bus: CommandBus, window_seconds: float = DEFAULT_WINDOW_SECONDS) -> AuditRecorder:
    """Record the commands `bus` refuses (the composition root calls this once per bus)."""
    recorder = AuditRecorder(bus.store, window_seconds=window_seconds)
    bus.denial_listeners.append(recorder.on_denied)
    return recorder
