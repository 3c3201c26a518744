"""The ingester both mail entrypoints (IMAP poller, SMTP receiver) hand raw messages to: it keeps the raw bytes,
parses within limits, sets aside what must not become a case, and issues ReceiveEmail and the document commands.

`ingest` answers for every message with what became of it; it raises only when the message could not be kept at
all (storage, event store or policy unavailable), so the caller leaves it where it came from and offers it again.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from adapters.mail_attachments import AttachmentFiler, Filed
from adapters.mail_classify import LoopGuard, Verdict, automatic
from adapters.mail_parse import ParsedMail, Refused, parse, peek, valid_text
from adapters.object_storage import ObjectStorage, content_key
from adapters.scanning import NoScan, Scanner
from commands import mail_messages as mm
from commands.bus import Actor, CommandBus
from commands.unit_of_work import UnitOfWork
from domain.errors import AlreadyExists, DomainError, NotFound, ValidationFailed
from domain.message import Message, message_key
from projections.ports import DocumentStore, Query

log = logging.getLogger(__name__)
RAW_AREA = "mail"  # raw messages are kept under <tenant>/mail/sha256/<sha256>, beside the cases' documents
_TOKEN = re.compile(r"\[([A-Z][A-Z0-9]{0,11}-\d{6,12})\]")


@dataclass(frozen=True)
class Ingested:
    """What became of one message: received (on case `number`), duplicate, quarantined or ignored."""

    status: str
    reason: str = ""
    case_id: str | None = None
    number: str | None = None
    opened: bool = False
    message: str | None = None
    attachments: list[Filed] = field(default_factory=list)


def mail_actor(mailbox: str, tenant: str) -> Actor:
    """The actor of everything a mailbox's ingester records."""
    return Actor(user=f"mail:{mailbox}", tenant=tenant, roles=("mail",))


class MailIngester:
    """Turns raw messages of a tenant's mailbox into commands."""

    def __init__(
        self, bus: CommandBus, read_models: DocumentStore, storage: ObjectStorage | None,
        scanner: Scanner | None = None, guard: LoopGuard | None = None,
    ) -> None:
        self.bus = bus
        self.read_models = read_models
        self.storage = storage
        self.guard = guard or LoopGuard()
        self.filer = AttachmentFiler(bus, storage, scanner or NoScan()) if storage is not None else None

    # -- lookups in the read models ---------------------------------------------------------------------

    def definition_for(self, tenant: str, mailbox: str) -> str | None:
        """The key of the tenant's definition whose mailbox is this address."""
        found = self.read_models.find(Query("definitions", tenant, {}, sort="key", descending=False, limit=1000))
        for doc in found:
            if ((doc.get("latest") or {}).get("mail") or {}).get("address") == mailbox:
                return str(doc["key"])
        return None

    def token_case(self, tenant: str, definition_key: str, subject: str) -> UUID | None:
        """The case a `[CLM-000042]` token in the subject names, if it is one of this definition's."""
        for number in _TOKEN.findall(subject):
            cases = self.read_models.find(Query("cases", tenant, {"number": number, "definition_key": definition_key},
                                                limit=1))
            if cases:
                return UUID(str(cases[0]["id"]))
        return None

    # -- the pipeline -------------------------------------------------------------------------------------

    def _keep_raw(self, tenant: str, raw: bytes, sha256: str) -> str:
        if self.storage is None:
            return ""
        key = content_key(tenant, RAW_AREA, sha256)
        if self.storage.stat(key) is None:
            self.storage.put(key, io.BytesIO(raw), len(raw), "message/rfc822")
        return key

    def ingest(self, raw: bytes, mailbox: str, tenant: str) -> Ingested:
        """Take one raw message delivered to mailbox (see the module docstring for what it raises)."""
        mailbox = mailbox.lower()
        actor = mail_actor(mailbox, tenant)
        sha256 = hashlib.sha256(raw).hexdigest()
        raw_key = self._keep_raw(tenant, raw, sha256)

        def aside(status: str, kind: str, reason: str, mail: ParsedMail | None = None) -> Ingested:
            message_id, sender, subject = (mail.message_id, mail.sender, mail.subject) if mail else peek(raw)
            facts: dict[str, Any] = {"mailbox": mailbox, "status": status, "kind": kind, "raw_key": raw_key,
                                     "size": len(raw), "sha256": sha256}
            try:
                command = mm.SetEmailAside.model_validate({
                    **facts, "reason": reason[:2000], "message_id": message_id[:998], "sender": sender[:998],
                    "subject": subject[:2000]})
            except ValidationError:  # facts it cannot hold: kept without them (the raw bytes have them)
                command = mm.SetEmailAside.model_validate({**facts, "reason": valid_text(reason)[:2000]})
            try:
                result = self.bus.dispatch(command, actor)
            except AlreadyExists:
                return Ingested("duplicate", reason)
            return Ingested(status, reason, message=result.id)

        try:
            mail = parse(raw)
        except Refused as refused:
            return aside("quarantined", refused.kind, refused.reason)
        definition_key = self.definition_for(tenant, mailbox)
        if definition_key is None:
            return aside("quarantined", "no-mailbox", f"no case definition reads {mailbox}", mail)
        verdict: Verdict | None = automatic(mail) or self.guard.check(mailbox, mail)
        if verdict is not None:
            return aside("ignored", verdict.kind, verdict.reason, mail)
        try:
            command = self._receive_command(definition_key, mailbox, tenant, mail, raw_key, len(raw))
        except ValidationError as exc:  # a fact longer or stranger than a command takes
            return aside("quarantined", "malformed", f"not recordable: {exc.errors()[0]['loc']}: "
                                                     f"{exc.errors()[0]['msg']}", mail)
        try:
            result = self.bus.dispatch(command, actor)
        except AlreadyExists:
            return self._again(actor, mail)
        except ValidationFailed as exc:  # the mapping gave data the definition's schema refuses, or the like
            problems = "; ".join(f"{e.path}: {e.message}" for e in exc.errors) or exc.detail
            return aside("quarantined", "unmappable", f"{exc.detail}: {problems}", mail)
        except NotFound as exc:
            return aside("quarantined", "no-mailbox", exc.detail, mail)
        case_id = str(result.extra["case_id"])
        filed = self._file(actor, case_id, UUID(result.id), mail)
        return Ingested("received", case_id=case_id, number=str(result.extra["number"]),
                        opened=bool(result.extra["opened"]), message=result.id, attachments=filed)

    def _receive_command(self, definition_key: str, mailbox: str, tenant: str, mail: ParsedMail, raw_key: str,
                         size: int) -> mm.ReceiveEmail:
        return mm.ReceiveEmail(
            definition_key=definition_key, mailbox=mailbox, message_id=mail.message_id, sender=mail.sender,
            sender_name=mail.sender_name, to=mail.to, cc=mail.cc, subject=mail.subject, text=mail.text,
            html=mail.html, truncated=mail.truncated, in_reply_to=mail.in_reply_to, references=mail.references,
            token_case_id=self.token_case(tenant, definition_key, mail.subject),
            attachments=[{"filename": a.filename, "content_type": a.content_type, "size": len(a.data),
                          "sha256": a.sha256} for a in mail.attachments],
            raw_key=raw_key, size=size,
        )

    def _file(self, actor: Actor, case_id: str, message: UUID, mail: ParsedMail) -> list[Filed]:
        if not mail.attachments:
            return []
        if self.filer is None:
            return [Filed(a.filename, None, "no document storage is configured") for a in mail.attachments]
        return self.filer.file(actor, case_id, message, mail.attachments)

    def _again(self, actor: Actor, mail: ParsedMail) -> Ingested:
        """A message recorded before: ignored, but its attachments are filed should a crash have cut that short."""
        key = message_key(actor.tenant, mail.message_id)
        earlier = UnitOfWork(self.bus.store, actor.tenant).find(Message, key)
        if earlier is None or not earlier.case_id:
            return Ingested("duplicate", "the same Message-ID was set aside before")
        try:
            filed = self._file(actor, earlier.case_id, key, mail)
        except DomainError as exc:
            log.warning("refiling attachments of %s: %s", mail.message_id, exc.detail)
            filed = []
        return Ingested("duplicate", "the same Message-ID was received before", case_id=earlier.case_id,
                        message=str(key), attachments=filed)

