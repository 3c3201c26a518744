"""Builds the e-mail runtime the settings ask for (the composition root calls it): the ingester, the outbox, the
IMAP pollers and the SMTP receiver, each started only when configured."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field

from adapters.mail_classify import LoopGuard
from adapters.mail_imap import ImapMailbox, ImapPoller
from adapters.mail_ingest import MailIngester
from adapters.mail_outbox import Outbox
from adapters.mail_sender import SmtpTransport
from adapters.mail_smtp_receiver import SmtpReceiver
from adapters.object_storage import ObjectStorage
from adapters.scanning import Scanner
from casestream.settings import Settings
from commands.bus import CommandBus
from commands.ports import EventStore
from projections.ports import DocumentStore

log = logging.getLogger(__name__)


def mailboxes(settings: Settings) -> list[ImapMailbox]:
    """The configured mailboxes; a missing tenant or password is named (ValueError)."""
    found = []
    for address, config in settings.mail_mailboxes.items():
        for required in ("tenant", "password"):
            if not config.get(required):
                raise ValueError(f"mail_mailboxes[{address!r}].{required} is required")
        found.append(ImapMailbox(address.lower(), config["tenant"], config["password"], config.get("user", ""),
                                 config.get("folder", "INBOX")))
    return found


@dataclass
class MailRuntime:
    """What runs e-mail to case in a process."""

    settings: Settings
    ingester: MailIngester
    outbox: Outbox
    pollers: list[ImapPoller] = field(default_factory=list)
    receiver: SmtpReceiver | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start what the settings switch on: the outbox, the IMAP pollers, the SMTP receiver."""
        if self.settings.mail_outbox:
            self.outbox.start()
        if self.settings.mail_imap and self.pollers:
            ready = threading.Event()
            self._thread = threading.Thread(target=self._serve_pollers, args=(ready,), name="mail-imap", daemon=True)
            self._thread.start()
            ready.wait(10)
        if self.settings.mail_smtp_receiver_port:
            self.receiver = SmtpReceiver(
                self.settings.mail_smtp_receiver_host, self.settings.mail_smtp_receiver_port,
                {p.mailbox.address: p.mailbox.tenant for p in self.pollers}, self.ingester.ingest)
            self.receiver.start()

    def _serve_pollers(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        stop = asyncio.Event()
        self._stop = stop
        ready.set()

        async def all_pollers() -> None:
            await asyncio.gather(*(poller.run(stop) for poller in self.pollers))

        try:
            loop.run_until_complete(all_pollers())
        finally:
            loop.close()

    def stop(self) -> None:
        if self.receiver is not None:
            self.receiver.stop()
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=15)
        self.outbox.stop()


def build_mail(settings: Settings, bus: CommandBus, store: EventStore, read_models: DocumentStore,
               storage: ObjectStorage | None, scanner: Scanner) -> MailRuntime:
    """The e-mail runtime of a platform (nothing runs until start())."""
    guard = LoopGuard(settings.mail_loop_limit, settings.mail_loop_window_seconds)
    ingester = MailIngester(bus, read_models, storage, scanner, guard)
    transport = SmtpTransport(settings.mail_smtp_host, settings.mail_smtp_port, settings.mail_smtp_user,
                              settings.mail_smtp_password, settings.mail_smtp_starttls)
    outbox = Outbox(store, bus, read_models, transport, retry_seconds=settings.mail_send_retry_seconds)
    pollers = [ImapPoller(settings.mail_imap_host, settings.mail_imap_port, mailbox, ingester.ingest,
                          idle_seconds=settings.mail_imap_idle_seconds, poll_seconds=settings.mail_imap_poll_seconds)
               for mailbox in mailboxes(settings)]
    return MailRuntime(settings, ingester, outbox, pollers)
