"""The e-mail commands: a message received, set aside, composed by a case, and the outbox's report of a send.

ReceiveEmail, SetEmailAside, RecordEmailSent and RecordEmailFailed are issued by the mail adapters (the `mail`
actor, never a person: the role is stripped from tokens); ComposeEmail by people and processes.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, StrictInt, StringConstraints

from commands.messages import CaseCommand, Command

Address = Annotated[str, StringConstraints(min_length=3, max_length=254, pattern=r"^[^\s@<>,;]+@[^\s@<>,;]+$")]
MessageIdText = Annotated[str, StringConstraints(min_length=1, max_length=998)]


class ReceiveEmail(Command):
    """Record an e-mail that arrived in a definition's mailbox: on the case it answers, or on a new case."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=2_000_000)
    definition_key: str = Field(max_length=40)
    mailbox: Address
    message_id: MessageIdText
    sender: str = Field(max_length=254)
    sender_name: str = Field(default="", max_length=500)
    to: list[str] = Field(default_factory=list, max_length=500)
    cc: list[str] = Field(default_factory=list, max_length=500)
    subject: str = Field(default="", max_length=2000)
    text: str = Field(default="", max_length=1_000_000)
    html: str = Field(default="", max_length=1_000_000)
    truncated: bool = False
    in_reply_to: str = Field(default="", max_length=998)
    references: list[MessageIdText] = Field(default_factory=list, max_length=100)
    token_case_id: UUID | None = Field(default=None, description="The case the subject's case token names, if any.")
    attachments: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    raw_key: str = Field(max_length=1000)
    size: StrictInt = Field(ge=0)


class SetEmailAside(Command):
    """Keep a message that becomes no case (quarantined or ignored) with its reason and raw bytes' key."""

    mailbox: str = Field(max_length=254)
    status: Literal["quarantined", "ignored"]
    kind: Literal["malformed", "over-limit", "unmappable", "auto-reply", "bounce", "loop", "no-mailbox"]
    reason: str = Field(max_length=2000)
    raw_key: str = Field(max_length=1000)
    size: StrictInt = Field(ge=0)
    sha256: str = Field(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")
    message_id: str = Field(default="", max_length=998)
    sender: str = Field(default="", max_length=998)
    subject: str = Field(default="", max_length=2000)


class ComposeEmail(CaseCommand):
    """Send an e-mail from the case's mailbox: a template filled from the case, or a subject and body; by default
    a reply to the case's newest received message, to its sender."""

    template: str | None = Field(default=None, max_length=40, description="A template of the definition.")
    subject: str | None = Field(default=None, max_length=500, description="Overrides the template's subject.")
    body: str | None = Field(default=None, max_length=20_000, description="Overrides the template's body.")
    to: list[Address] = Field(default_factory=list, max_length=50,
                              description="Recipients (default: the sender of the message replied to).")
    cc: list[Address] = Field(default_factory=list, max_length=50)
    reply_to: UUID | None = Field(default=None, description="The message of this case answered (default: the "
                                                            "newest received one; none at all starts a new thread).")
    purpose: Literal["reply", "process"] = "reply"


class RecordEmailSent(Command):
    """The SMTP server accepted a composed message (the outbox's report)."""

    target_fields: ClassVar[tuple[str, ...]] = ("message",)
    message: UUID


class RecordEmailFailed(Command):
    """Sending a composed message failed (the outbox's report; the message counts its attempts)."""

    target_fields: ClassVar[tuple[str, ...]] = ("message",)
    message: UUID
    reason: str = Field(max_length=2000)
