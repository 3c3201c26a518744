"""The reply of POST /api/messages: the stored message and where it went."""

from __future__ import annotations

from pydantic import Field

from api.schemas.commands import CommandReply


class PublishMessageReply(CommandReply):
    """A published message: correlated to a waiting process instance now, or buffered until its TTL passes."""

    message_key: str = Field(description="The message's key (a UUID; the same for a message id's publications).")
    expires_at: str = Field(description="When the message stops waiting for a subscription (ISO-8601).")
    correlated: bool = Field(description="True when a waiting subscription got the message now.")
    process_instance_key: str | None = Field(description="The instance it correlated to (null when buffered).")
    buffered: bool = Field(description="True when it waits for a subscription to open (TTL left, none waited).")
