"""The SMTP receiver (aiosmtpd) for direct delivery: accepts mail for the configured mailboxes only and answers
250 once the ingester has kept the message, 451 (try again later) when it could not: the sending server keeps
and retries it, so nothing is lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from adapters.mail_imap import Ingest
from adapters.mail_parse import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)
# larger messages than the ingester takes are still received, so that they are quarantined (kept, with the
# reason) rather than bounced; only beyond this the sender's server is told 552
DATA_SIZE_LIMIT = 2 * MAX_MESSAGE_BYTES


class MailboxHandler:
    """aiosmtpd handler: recipients are mailbox addresses mapped to their tenant."""

    def __init__(self, mailboxes: Mapping[str, str], ingest: Ingest) -> None:
        self.mailboxes = {address.lower(): tenant for address, tenant in mailboxes.items()}
        self.ingest = ingest

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address.lower() not in self.mailboxes:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address.lower())
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        try:
            for mailbox in dict.fromkeys(envelope.rcpt_tos):
                await asyncio.to_thread(self.ingest, data, mailbox, self.mailboxes[mailbox])
        except Exception:  # could not keep it: the sending server retries
            log.exception("SMTP delivery to %s not kept", envelope.rcpt_tos)
            return "451 4.3.0 not kept; try again later"
        return "250 2.0.0 Message accepted"


class SmtpReceiver:
    """Runs the handler on host:port in its own thread (aiosmtpd's Controller)."""

    def __init__(self, host: str, port: int, mailboxes: Mapping[str, str], ingest: Ingest) -> None:
        self.handler = MailboxHandler(mailboxes, ingest)
        self.controller = Controller(self.handler, hostname=host, port=port, data_size_limit=DATA_SIZE_LIMIT)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
