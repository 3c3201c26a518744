"""The SMTP sender: a composed message as an RFC 5322 e-mail (its stored Message-ID, In-Reply-To and References, so
replies thread back to the case), handed to an SMTP server with smtplib."""

from __future__ import annotations

import email.utils
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

# RFC 3834: what a machine sends on its own says so, so that other machines do not answer it (no mail loops)
AUTO_SUBMITTED = {"acknowledgement": "auto-replied", "process": "auto-generated"}


class MailTransport(Protocol):
    """Sends one e-mail; raises on a refusal (permanent or not)."""

    def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> None: ...


def build_email(composed: dict[str, Any]) -> EmailMessage:
    """The e-mail of a composed message (a `messages` read-model document or the EmailComposed facts)."""
    message = EmailMessage()
    message["From"] = composed["mailbox"]
    message["To"] = ", ".join(composed["to"])
    if composed.get("cc"):
        message["Cc"] = ", ".join(composed["cc"])
    message["Subject"] = composed["subject"]
    message["Message-ID"] = composed["message_id"]
    message["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    if composed.get("in_reply_to"):
        message["In-Reply-To"] = composed["in_reply_to"]
    if composed.get("references"):
        message["References"] = " ".join(composed["references"])
    auto = AUTO_SUBMITTED.get(composed.get("purpose", ""))
    if auto:
        message["Auto-Submitted"] = auto
    message.set_content(composed["text"])
    return message


@dataclass(frozen=True)
class SmtpTransport:
    """smtplib against one server (STARTTLS and login when configured)."""

    host: str
    port: int
    user: str = ""
    password: str = ""
    starttls: bool = False
    timeout: float = 30.0

    def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password)
            refused = smtp.send_message(message, from_addr=sender, to_addrs=recipients)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)
