"""A received message's attachments become documents of its case through the document commands.

The same path as a browser upload: RequestDocumentUpload declares the file, the bytes go to the upload key, the
stored bytes are measured (adapters/document_uploads.py) and kept by content, and ConfirmDocumentUpload attaches
them. Command ids derive from the message and the attachment's place in it, so filing a message again (a retry
after a crash, the same message delivered twice) attaches nothing twice.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from uuid import UUID

from adapters.document_uploads import keep_by_content, measure
from adapters.mail_parse import Attachment
from adapters.object_storage import ObjectStorage, content_key, upload_key
from adapters.scanning import Scanner
from adapters.sniff import HEAD_BYTES, sniff
from commands import messages as m
from commands.bus import Actor, CommandBus
from commands.unit_of_work import UnitOfWork
from domain.document import Document, type_agrees
from domain.errors import DomainError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Filed:
    """What became of one attachment: its document, or why it is not one."""

    filename: str
    document_id: str | None
    problem: str = ""


def declared_type(attachment: Attachment) -> str:
    """The type to declare: the sender's, unless the bytes say otherwise (mail clients often send octet-stream)."""
    sniffed = sniff(attachment.data[:HEAD_BYTES])
    if type_agrees(attachment.content_type, sniffed):
        return attachment.content_type
    return sniffed


class AttachmentFiler:
    """Turns attachments into documents of a case (storage and the bus; no HTTP)."""

    def __init__(self, bus: CommandBus, storage: ObjectStorage, scanner: Scanner) -> None:
        self.bus = bus
        self.storage = storage
        self.scanner = scanner

    def file(self, actor: Actor, case_id: str, message: UUID, attachments: list[Attachment]) -> list[Filed]:
        """File each attachment; a refused one is reported (the raw message still holds it), not raised."""
        filed = []
        for index, attachment in enumerate(attachments):
            try:
                filed.append(self._one(actor, case_id, f"email:{message}:{index}", attachment))
            except DomainError as exc:
                log.warning("attachment %r of message %s not filed: %s", attachment.filename, message, exc.detail)
                filed.append(Filed(attachment.filename, None, exc.detail))
        return filed

    def _pending(self, tenant: str, document_id: str, upload_id: str) -> bool:
        document = UnitOfWork(self.bus.store, tenant).find(Document, UUID(document_id))
        return document is not None and upload_id in document.uploads

    def _one(self, actor: Actor, case_id: str, base: str, attachment: Attachment) -> Filed:
        request = m.RequestDocumentUpload(
            command_id=f"{base}:upload", case_id=UUID(case_id), filename=attachment.filename,
            content_type=declared_type(attachment), size=len(attachment.data), sha256=attachment.sha256,
        )
        ticket = self.bus.dispatch(request, actor)
        document_id, upload_id = str(ticket.extra["document_id"]), str(ticket.extra["upload_id"])
        if ticket.repeated and not self._pending(actor.tenant, document_id, upload_id):
            return Filed(attachment.filename, document_id)  # filed by an earlier delivery of this message
        staged = upload_key(actor.tenant, case_id, upload_id)
        self.storage.put(staged, io.BytesIO(attachment.data), len(attachment.data), request.content_type)
        created = False
        try:
            measured = measure(self.storage, staged, self.scanner)
            if measured is None:
                raise RuntimeError(f"the staged attachment {staged} vanished")
            content = content_key(actor.tenant, case_id, measured.sha256)
            created = keep_by_content(self.storage, staged, content)
            self.bus.dispatch(m.ConfirmDocumentUpload(
                command_id=f"{base}:confirm", case_id=UUID(case_id), document_id=UUID(document_id),
                upload_id=upload_id, size=measured.size, sniffed_type=measured.sniffed_type, sha256=measured.sha256,
                object_key=content,
                # infected: attached quarantined with the reason on the timeline; unscanned: pending until scanned
                scan=measured.verdict.status, scan_reason=measured.verdict.reason,
            ), actor)
        except DomainError:
            if created:
                self.storage.delete(content)
            raise
        finally:
            self.storage.delete(staged)
        return Filed(attachment.filename, document_id)
