"""Message: one e-mail of a case, in or out, as its own aggregate (docs/email.md says why not case events).

Its id derives from the tenant and the e-mail's `Message-ID`, so the same message arriving twice finds itself
(and is ignored), and a reply's `In-Reply-To` / `References` find the case of the message they answer on the write
side, without a read model. Every event names its case, so the case timeline shows it. A message that is set aside
(quarantined: malformed or over a limit; ignored: an auto-reply, a bounce, a mail loop) is kept with its reason
and the storage key of its raw bytes, never lost, and belongs to no case.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from domain.aggregate import Aggregate, applies
from domain.definition import NAMESPACE
from domain.errors import AlreadyExists, InvalidStateChange, NotFound
from domain.events import Context, Event

RECEIVED, QUEUED, SENT, FAILED, QUARANTINED, IGNORED = "received", "queued", "sent", "failed", "quarantined", "ignored"
INBOUND, OUTBOUND = "in", "out"
MAX_SEND_ATTEMPTS = 5


def normalise_message_id(value: str) -> str:
    """A Message-ID as compared: surrounding whitespace and angle brackets removed."""
    return value.strip().strip("<>").strip()


def message_key(tenant: str, message_id: str) -> UUID:
    """The aggregate id of the e-mail with this Message-ID in this tenant."""
    return uuid.uuid5(NAMESPACE, f"email:{tenant}:{normalise_message_id(message_id)}")


def set_aside_key(tenant: str, mailbox: str, sha256: str) -> UUID:
    """The aggregate id of a message set aside (quarantined or ignored): by its raw bytes, per mailbox."""
    return uuid.uuid5(NAMESPACE, f"email-aside:{tenant}:{mailbox}:{sha256}")


class EmailReceived(Event):
    """An e-mail arrived in a definition's mailbox and joined a case (`threaded_by` says how it found it)."""

    case_id: str
    mailbox: str
    message_id: str
    sender: str
    sender_name: str
    to: list[str]
    cc: list[str]
    subject: str
    text: str
    html: str  # sanitised (nh3); "" when the message had no HTML part
    truncated: bool
    in_reply_to: str
    references: list[str]
    threaded_by: str  # new | in-reply-to | references | subject
    attachments: list[dict[str, Any]]  # filename, content_type, size, sha256
    raw_key: str  # where the raw message is kept in object storage
    size: int


class EmailComposed(Event):
    """A case composed an e-mail; it waits in the outbox until it is sent."""

    case_id: str
    mailbox: str
    message_id: str
    to: list[str]
    cc: list[str]
    subject: str
    text: str
    in_reply_to: str
    references: list[str]
    template: str
    purpose: str  # reply | acknowledgement | process


class EmailSent(Event):
    """The SMTP server accepted the composed e-mail."""

    case_id: str
    message_id: str
    subject: str
    to: list[str]


class EmailSendFailed(Event):
    """Sending the composed e-mail failed; `final` when it will not be tried again."""

    case_id: str
    message_id: str
    reason: str
    attempt: int
    final: bool


class EmailSetAside(Event):
    """A message was not taken into a case: quarantined (malformed, over a limit) or ignored (auto-reply, bounce,
    loop), with the reason and its raw bytes kept."""

    mailbox: str
    status: str  # quarantined | ignored
    kind: str  # malformed | over-limit | unmappable | auto-reply | bounce | loop | no-mailbox
    reason: str
    raw_key: str
    size: int
    sha256: str
    message_id: str
    sender: str
    subject: str


class Message(Aggregate):
    """The message aggregate: every public method checks its rule, then records one event."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.case_id = ""
        self.status = ""
        self.direction = ""
        self.message_id = ""
        self.subject = ""
        self.sender = ""
        self.to: list[str] = []
        self.references: list[str] = []
        self.attempts = 0

    def require_new(self) -> None:
        if self.status:
            raise AlreadyExists(f"message {self.message_id or self.id} is already recorded ({self.status})")

    def receive(self, ctx: Context, **facts: Any) -> None:
        """Record an arrived e-mail on its case."""
        self.require_new()
        self.record(ctx, EmailReceived, **facts)

    def compose(self, ctx: Context, **facts: Any) -> None:
        """Record an e-mail the case sends (it goes to the outbox)."""
        self.require_new()
        self.record(ctx, EmailComposed, **facts)

    def mark_sent(self, ctx: Context) -> None:
        """The SMTP server took the e-mail."""
        self._require_outbox()
        self.record(ctx, EmailSent, case_id=self.case_id, message_id=self.message_id, subject=self.subject,
                    to=list(self.to))

    def mark_failed(self, ctx: Context, reason: str) -> None:
        """A send failed; after MAX_SEND_ATTEMPTS it is final."""
        self._require_outbox()
        attempt = self.attempts + 1
        self.record(ctx, EmailSendFailed, case_id=self.case_id, message_id=self.message_id, reason=reason[:2000],
                    attempt=attempt, final=attempt >= MAX_SEND_ATTEMPTS)

    def set_aside(self, ctx: Context, **facts: Any) -> None:
        """Keep a message that becomes no case, with its reason."""
        self.require_new()
        self.record(ctx, EmailSetAside, **facts)

    def _require_outbox(self) -> None:
        if not self.status:
            raise NotFound(f"message {self.id} not found")
        if self.direction != OUTBOUND or self.status not in (QUEUED,):
            raise InvalidStateChange(f"message {self.message_id} is {self.status}, not waiting to be sent")

    # -- appliers -------------------------------------------------------------------------------

    @applies(EmailReceived)
    def _received(self, e: EmailReceived) -> None:
        self.case_id, self.status, self.direction = e.case_id, RECEIVED, INBOUND
        self.message_id, self.subject, self.sender = e.message_id, e.subject, e.sender
        self.to, self.references = list(e.to), list(e.references)

    @applies(EmailComposed)
    def _composed(self, e: EmailComposed) -> None:
        self.case_id, self.status, self.direction = e.case_id, QUEUED, OUTBOUND
        self.message_id, self.subject, self.sender = e.message_id, e.subject, e.mailbox
        self.to, self.references = list(e.to), list(e.references)

    @applies(EmailSent)
    def _sent(self, e: EmailSent) -> None:
        self.status = SENT

    @applies(EmailSendFailed)
    def _failed(self, e: EmailSendFailed) -> None:
        self.attempts = e.attempt
        if e.final:
            self.status = FAILED

    @applies(EmailSetAside)
    def _set_aside(self, e: EmailSetAside) -> None:
        self.status, self.direction = e.status, INBOUND
        self.message_id, self.subject, self.sender = e.message_id, e.subject, e.sender
