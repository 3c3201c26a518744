"""The outbox: sends what cases composed and records the outcome through commands.

It tails the event log for EmailComposed (woken by every append), sends each message whose aggregate still waits,
and issues RecordEmailSent, or RecordEmailFailed with a back-off before the next try (the Message aggregate makes
the fifth failure final). Its position is kept in the read-model store's tracking table, never past a message
still waiting, so a restart resumes every unsent message; the aggregate's state keeps a resumed one from being
sent twice once its RecordEmailSent was stored. A crash between the SMTP hand-off and that record sends it again,
with the same Message-ID (receivers drop the duplicate).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from adapters.mail_ingest import mail_actor
from adapters.mail_sender import MailTransport, build_email
from commands import mail_messages as mm
from commands.bus import CommandBus
from commands.ports import EventStore
from commands.unit_of_work import UnitOfWork
from domain.errors import DomainError
from domain.message import QUEUED, EmailComposed, Message
from projections.ports import DocumentStore

log = logging.getLogger(__name__)
TRACKING = "mail-outbox"
TYPES = frozenset({EmailComposed.type_name()})


@dataclass
class _Waiting:
    position: int
    tenant: str
    facts: dict[str, Any]
    due: float


class Outbox:
    """Sends composed messages through a transport (one thread; `run_once` for tools and tests)."""

    def __init__(self, store: EventStore, bus: CommandBus, tracking: DocumentStore, transport: MailTransport, *,
                 retry_seconds: float = 30.0, batch: int = 500, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.bus = bus
        self.tracking = tracking
        self.transport = transport
        self.retry_seconds = retry_seconds
        self.batch = batch
        self.clock = clock
        self.position = tracking.tracking(TRACKING)
        self.waiting: dict[UUID, _Waiting] = {}
        self.sent = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read(self) -> None:
        while True:
            events, last = self.store.read_batch(self.position, self.batch, TYPES)
            for positioned in events:
                e = positioned.event
                if isinstance(e, EmailComposed):
                    facts = {"mailbox": e.mailbox, "to": e.to, "cc": e.cc, "subject": e.subject, "text": e.text,
                             "message_id": e.message_id, "in_reply_to": e.in_reply_to, "references": e.references,
                             "purpose": e.purpose}
                    self.waiting[e.aggregate_id] = _Waiting(positioned.position, e.tenant, facts, 0.0)
            if last <= self.position:
                return
            self.position = last

    def run_once(self) -> int:
        """Send every message that is due; return how many were sent."""
        self._read()
        sent = 0
        now = self.clock()
        for key, waiting in sorted(self.waiting.items(), key=lambda item: item[1].position):
            if waiting.due <= now and self._send(key, waiting):
                sent += 1
        safe = min((w.position for w in self.waiting.values()), default=self.position + 1) - 1
        if safe > self.tracking.tracking(TRACKING):
            self.tracking.write([], tracking=(TRACKING, safe))
        self.sent += sent
        return sent

    def _send(self, key: UUID, waiting: _Waiting) -> bool:
        message = UnitOfWork(self.store, waiting.tenant).find(Message, key)
        if message is None or message.status != QUEUED:
            del self.waiting[key]
            return False
        actor = mail_actor(waiting.facts["mailbox"], waiting.tenant)
        try:
            self.transport.send(build_email(waiting.facts), waiting.facts["mailbox"],
                                [*waiting.facts["to"], *waiting.facts["cc"]])
        except Exception as exc:  # the server refused or is away: recorded, tried again later
            reason = f"{type(exc).__name__}: {exc}"
            try:
                result = self.bus.dispatch(mm.RecordEmailFailed(message=key, reason=reason[:2000]), actor)
            except DomainError as refused:
                log.warning("recording the failed send of %s: %s", key, refused.detail)
                return False
            if result.extra.get("final"):
                del self.waiting[key]
            else:
                waiting.due = self.clock() + self.retry_seconds * 2 ** (message.attempts)
            return False
        try:
            self.bus.dispatch(mm.RecordEmailSent(command_id=f"outbox:{key}:sent", message=key), actor)
        except DomainError as refused:
            log.warning("recording the send of %s: %s", key, refused.detail)
        del self.waiting[key]
        return True

    # -- the thread ---------------------------------------------------------------------------------------

    def start(self) -> None:
        self.store.on_append(lambda _position: self._wake.set())
        self._thread = threading.Thread(target=self._run, name="mail-outbox", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the store away: tried again on the next wake-up
                log.exception("mail outbox round failed")
            self._stop.wait(0.2)  # at most five rounds a second, however busy the log is
            self._wake.wait(1.0)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
