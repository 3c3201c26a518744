"""Handlers of the document commands: the same shape as the others (load, one domain call; the bus saves)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from uuid import UUID

from commands import messages as m
from commands.handlers import Outcome, handles
from commands.unit_of_work import UnitOfWork
from domain.case import Case
from domain.definition import CaseDefinition, definition_id
from domain.document import Declared, Document, Measured
from domain.errors import CaseNotOpen, NotFound, VersionConflict
from domain.events import Context

# how long a requested upload may wait for its confirm; the presigned URL itself lives shorter (settings)
UPLOAD_TTL = timedelta(days=7)


def _open_case(cmd: m.CaseCommand, uow: UnitOfWork) -> Case:
    case = uow.get(Case, cmd.case_id, f"case {cmd.case_id}")
    if case.status != "open":
        raise CaseNotOpen(f"case {case.number} is {case.status}")
    return case


def _document(cmd: m.CaseCommand, document_id: UUID, uow: UnitOfWork, *, new: bool = False) -> Document:
    """The case's document (NotFound when it is missing, of another case, or the id names something else)."""
    try:
        document = uow.find(Document, document_id)
    except TypeError:
        document = None
    if document is None and new:
        return uow.add(Document(document_id))
    if document is None or document.case_id != str(cmd.case_id):
        raise NotFound(f"document {document_id} not found")
    if cmd.expected_version is not None and document.version != cmd.expected_version:
        raise VersionConflict(
            f"document {document_id} is at version {document.version}, not the expected {cmd.expected_version}")
    return document


@handles(m.RequestDocumentUpload)
def request_document_upload(cmd: m.RequestDocumentUpload, ctx: Context, uow: UnitOfWork) -> Outcome:
    case = _open_case(cmd, uow)
    definition = uow.get(
        CaseDefinition, definition_id(uow.tenant, case.definition_key), f"definition {case.definition_key!r}"
    )
    limits = definition.spec(case.definition_version).documents
    document = _document(cmd, cmd.document_id or uuid.uuid4(), uow, new=cmd.document_id is None)
    upload_id = str(uuid.uuid5(document.id, f"upload:{document.version + 1}"))
    document.request_upload(
        ctx, str(case.id), upload_id, Declared(cmd.filename, cmd.content_type, cmd.size, cmd.sha256), limits,
        UPLOAD_TTL,
    )
    return Outcome(document.id, {"document_id": str(document.id), "upload_id": upload_id})


@handles(m.ConfirmDocumentUpload)
def confirm_document_upload(cmd: m.ConfirmDocumentUpload, ctx: Context, uow: UnitOfWork) -> Outcome:
    _open_case(cmd, uow)
    document = _document(cmd, cmd.document_id, uow)
    number = document.confirm_upload(
        ctx, cmd.upload_id, Measured(cmd.size, cmd.sniffed_type, cmd.sha256, cmd.object_key, cmd.scan,
                                     cmd.scan_reason)
    )
    return Outcome(document.id, {"document_id": str(document.id), "version_number": number})


@handles(m.RenameDocument)
def rename_document(cmd: m.RenameDocument, ctx: Context, uow: UnitOfWork) -> Outcome:
    _open_case(cmd, uow)
    document = _document(cmd, cmd.document_id, uow)
    document.rename(ctx, cmd.filename)
    return Outcome(document.id)


@handles(m.RemoveDocument)
def remove_document(cmd: m.RemoveDocument, ctx: Context, uow: UnitOfWork) -> Outcome:
    _open_case(cmd, uow)
    document = _document(cmd, cmd.document_id, uow)
    document.remove(ctx, cmd.reason)
    return Outcome(document.id)


@handles(m.PlaceLegalHold)
def place_legal_hold(cmd: m.PlaceLegalHold, ctx: Context, uow: UnitOfWork) -> Outcome:
    document = _document(cmd, cmd.document_id, uow)
    document.place_legal_hold(ctx, cmd.reason)
    return Outcome(document.id)


@handles(m.ReleaseLegalHold)
def release_legal_hold(cmd: m.ReleaseLegalHold, ctx: Context, uow: UnitOfWork) -> Outcome:
    document = _document(cmd, cmd.document_id, uow)
    document.release_legal_hold(ctx, cmd.reason)
    return Outcome(document.id)


@handles(m.RecordDocumentScan)
def record_document_scan(cmd: m.RecordDocumentScan, ctx: Context, uow: UnitOfWork) -> Outcome:
    # in every case state: a verdict on bytes already stored is a fact, whatever happened to the case since
    document = _document(cmd, cmd.document_id, uow)
    document.record_scan(ctx, cmd.version_number, cmd.clean, cmd.reason)
    return Outcome(document.id)


@handles(m.RecordDocumentPreview)
def record_document_preview(cmd: m.RecordDocumentPreview, ctx: Context, uow: UnitOfWork) -> Outcome:
    document = _document(cmd, cmd.document_id, uow)
    document.record_preview(ctx, cmd.version_number, cmd.preview_key, cmd.error)
    return Outcome(document.id)
