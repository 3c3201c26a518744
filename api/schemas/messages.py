"""Replies of the e-mail routes."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MessageAttachment(BaseModel):
    """An attachment of a received message and the document it became (null: not filed, see the timeline)."""

    filename: str
    content_type: str
    size: int
    sha256: str
    document_id: str | None = Field(description="The case document with these bytes, if filed.")


class MessageSummary(BaseModel):
    """An e-mail of a case, in or out, without its texts."""

    id: str
    case_id: str
    direction: str = Field(description="in (received) or out (composed by the case).")
    status: str = Field(description="received; queued, sent or failed (outgoing).")
    mailbox: str
    message_id: str = Field(description="The RFC 5322 Message-ID.")
    sender: str
    sender_name: str
    to: list[str]
    cc: list[str]
    subject: str
    in_reply_to: str
    references: list[str]
    threaded_by: str = Field(description="How a received message found its case: new, in-reply-to, references or "
                                         "subject ('' for outgoing).")
    truncated: bool = Field(description="Its text was cut at the limit (the raw message is kept whole).")
    at: str
    updated_at: str
    actor: str
    version: int


class Message(MessageSummary):
    """An e-mail of a case with its plain text, its sanitised HTML and its attachments."""

    text: str
    html: str = Field(description="Sanitised (nh3): no scripts, styles, images or event handlers; '' when none.")
    attachments: list[MessageAttachment]
    attempts: int = Field(default=0, description="Failed sends so far (outgoing).")
    error: str | None = Field(default=None, description="The last send failure (outgoing).")


class SetAsideMessage(BaseModel):
    """A message that became no case: quarantined or ignored, with the reason and where its raw bytes are kept."""

    id: str
    mailbox: str
    status: str = Field(description="quarantined (malformed, over a limit, unmappable, no mailbox) or ignored "
                                    "(auto-reply, bounce, loop).")
    kind: str
    reason: str
    raw_key: str = Field(description="The raw message's key in object storage.")
    size: int
    sha256: str
    message_id: str
    sender: str
    subject: str
    at: str


class SetAsidePage(BaseModel):
    """A page of set-aside messages, newest first, and the cursor of the next page (null on the last)."""

    items: list[SetAsideMessage]
    next_cursor: str | None
