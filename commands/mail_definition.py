"""A definition's mailbox settings as submitted with PublishCaseDefinition (domain/mail_config.py checks them)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EmailTemplateIn(BaseModel):
    """An e-mail template: subject and plain-text body with `{{ case.number }}`-style placeholders."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    subject: str = Field(min_length=1, max_length=500)
    body: str = Field(default="", max_length=20_000)


class MailSettingsIn(BaseModel):
    """A definition's mailbox: mail to `address` opens its cases (docs/email.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    address: str = Field(default="", max_length=254, description="The mailbox address ('' : none, templates only).")
    title: str = Field(default="{{ message.subject }}", max_length=200,
                       description="The title of a case a message opens (placeholders: message.*).")
    mapping: dict[str, str] = Field(
        default_factory=dict, max_length=50,
        description="Case data field -> message fact (sender, sender_name, subject, text, to, received_at, "
                    "message_id, mailbox).")
    templates: dict[str, EmailTemplateIn] = Field(default_factory=dict, max_length=20,
                                                  description="Named templates of the e-mails its cases send.")
    acknowledgement: str = Field(default="", max_length=40,
                                 description="A template sent to whoever opened a case by e-mail ('': none).")
