"""Document: a file on a case, in versions, kept in object storage; its events tell the case's story.

A document is its own aggregate (docs/documents.md says why): every event names its case (`case_id`) and the file
name, so the case timeline shows it in words. Bytes are never in an event: a version names its SHA-256, size and
type, and the storage key of its content.

An upload is requested first (the declared name, type, size and SHA-256 are recorded while it is pending), then
confirmed with what the stored bytes really are; only a confirm that matches the declaration attaches the version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from domain.aggregate import Aggregate, applies
from domain.errors import DomainError, FieldError, InvalidStateChange, NotFound, ValidationFailed
from domain.events import Context, Event

AVAILABLE = "available"  # a version's bytes may be downloaded (a scanner would add `pending` and `quarantined`)
ACTIVE, REMOVED = "active", "removed"
MAX_FILENAME = 255
MAX_REASON = 2000
MAX_PENDING = 20  # uploads waiting for their confirm, per document
DEFAULT_MAX_SIZE = 100 * 1024 * 1024
ZIP_CONTAINERS = frozenset({
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
    "application/epub+zip",
})
TEXTUAL = frozenset({"application/json", "application/xml", "image/svg+xml"})
_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class DocumentOnHold(DomainError):
    """A document under legal hold may not be removed (its hold must be released first)."""

    code = "document-on-hold"
    status = 409


class DocumentRemoved(Event):
    """The document was removed from the case (logically: its history and bytes are kept)."""

    case_id: str
    filename: str
    reason: str


class DocumentUploadRequested(Event):
    """An upload of a new document or version was requested with the client's declared facts (not on the timeline)."""

    case_id: str
    upload_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    expires_at: str


class DocumentAttached(Event):
    """A confirmed upload became the document's first version."""

    case_id: str
    upload_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    object_key: str
    status: str


class DocumentVersionAdded(Event):
    """A confirmed upload became the document's next version (the name follows the newest version)."""

    case_id: str
    upload_id: str
    version_number: int
    filename: str
    content_type: str
    size: int
    sha256: str
    object_key: str
    status: str


class DocumentRenamed(Event):
    """The document's name changed."""

    case_id: str
    filename: str
    previous: str


class DocumentLegalHoldPlaced(Event):
    """The document was put under legal hold: it cannot be removed until the hold is released."""

    case_id: str
    filename: str
    reason: str


class DocumentLegalHoldReleased(Event):
    """The document's legal hold was released."""

    case_id: str
    filename: str
    reason: str


@dataclass(frozen=True)
class DocumentLimits:
    """A definition's limits on its cases' documents: the largest size and the allowed types (empty: any)."""

    max_size: int = DEFAULT_MAX_SIZE
    allowed_types: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Only what differs from the defaults ({} when nothing does)."""
        limits: dict[str, Any] = {}
        if self.max_size != DEFAULT_MAX_SIZE:
            limits["max_size"] = self.max_size
        if self.allowed_types:
            limits["allowed_types"] = list(self.allowed_types)
        return limits

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> DocumentLimits:
        raw = raw or {}
        return cls(max_size=int(raw.get("max_size") or DEFAULT_MAX_SIZE),
                   allowed_types=tuple(raw.get("allowed_types") or ()))

    def problems(self) -> list[FieldError]:
        """What is wrong with the limits, each naming its field."""
        errors = []
        if not 1 <= self.max_size <= 5 * 1024**4:
            errors.append(FieldError("documents.max_size", "must be between 1 byte and 5 TiB"))
        for i, kind in enumerate(self.allowed_types):
            if not isinstance(kind, str) or not _TYPE.match(kind):
                errors.append(FieldError(f"documents.allowed_types[{i}]", "must be a media type (type/subtype)"))
        return errors


@dataclass(frozen=True)
class Declared:
    """What a client says it will upload."""

    filename: str
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Measured:
    """What the stored bytes of an upload really are (measured by the confirming side, never told by a client)."""

    size: int
    sniffed_type: str
    sha256: str
    object_key: str


@dataclass
class Version:
    """One version of a document."""

    number: int
    filename: str
    content_type: str
    size: int
    sha256: str
    object_key: str
    status: str
    added_at: datetime
    added_by: str


@dataclass
class Pending:
    """An upload waiting for its confirm."""

    declared: Declared
    expires_at: datetime


def type_agrees(declared: str, sniffed: str) -> bool:
    """Whether bytes sniffed as `sniffed` may be what a client declared as `declared`.

    The sniffer (adapters/sniff.py) names a type from magic numbers, `text/plain` for text it cannot tell apart,
    `application/zip` for every zip container, or `application/octet-stream` for bytes it does not know.
    """
    if sniffed == declared:
        return True
    if sniffed == "application/zip":
        return declared in ZIP_CONTAINERS
    if sniffed == "text/plain":
        return declared.startswith("text/") or declared in TEXTUAL
    return False


def _filename(value: str) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not name or len(name) > MAX_FILENAME or "/" in name or "\\" in name or any(ord(c) < 32 for c in name):
        raise ValidationFailed("filename is not valid", [FieldError(
            "filename", f"1-{MAX_FILENAME} characters, no path separators or control characters")])
    return name


def check_declared(declared: Declared, limits: DocumentLimits) -> Declared:
    """The declaration, refused (naming the field) when it breaks the definition's limits or is malformed."""
    name = _filename(declared.filename)
    errors = []
    kind = declared.content_type.strip().lower()
    if not _TYPE.match(kind):
        errors.append(FieldError("content_type", "must be a media type (type/subtype)"))
    elif limits.allowed_types and kind not in limits.allowed_types:
        errors.append(FieldError("content_type", f"{kind} is not allowed here (allowed: "
                                                 f"{', '.join(limits.allowed_types)})"))
    if not 0 < declared.size <= limits.max_size:
        errors.append(FieldError("size", f"must be between 1 and {limits.max_size} bytes"))
    if not _SHA256.match(declared.sha256):
        errors.append(FieldError("sha256", "must be the SHA-256 as 64 lower-case hex digits"))
    if errors:
        raise ValidationFailed("the upload is refused", errors)
    return Declared(name, kind, declared.size, declared.sha256)


class Document(Aggregate):
    """The document aggregate: every public method checks its rule, then records one event."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.case_id = ""
        self.filename = ""
        self.status = ""  # "" until the first version is attached
        self.versions: list[Version] = []
        self.uploads: dict[str, Pending] = {}
        self.legal_hold = False

    # -- commands -------------------------------------------------------------------------------

    def request_upload(
        self, ctx: Context, case_id: str, upload_id: str, declared: Declared, limits: DocumentLimits,
        ttl: timedelta,
    ) -> None:
        """Record a pending upload (a new document, or a new version of this one)."""
        if self.case_id and self.case_id != case_id:
            raise NotFound(f"document {self.id} not found")
        self._require_not_removed()
        if len(self.uploads) >= MAX_PENDING:
            raise InvalidStateChange(f"the document has {MAX_PENDING} uploads waiting for their confirm")
        declared = check_declared(declared, limits)
        self.record(
            ctx, DocumentUploadRequested, case_id=case_id, upload_id=upload_id, filename=declared.filename,
            content_type=declared.content_type, size=declared.size, sha256=declared.sha256,
            expires_at=(ctx.now + ttl).isoformat(),
        )

    def confirm_upload(self, ctx: Context, upload_id: str, measured: Measured) -> int:
        """Attach the upload as the next version if its bytes are what was declared; return the version number."""
        self._require_not_removed()
        pending = self.uploads.get(upload_id)
        if pending is None:
            raise NotFound(f"no pending upload {upload_id!r} on document {self.id}")
        if ctx.now > pending.expires_at:
            raise ValidationFailed("the upload has expired", [FieldError("upload_id", "expired: request a new one")])
        want = pending.declared
        errors = []
        if measured.size != want.size:
            errors.append(FieldError("size", f"declared {want.size} bytes, received {measured.size}"))
        if not type_agrees(want.content_type, measured.sniffed_type):
            errors.append(FieldError("content_type", f"declared {want.content_type}, the bytes are "
                                                     f"{measured.sniffed_type}"))
        if measured.sha256 != want.sha256:
            errors.append(FieldError("sha256", "the received bytes have another SHA-256"))
        if errors:
            raise ValidationFailed("the upload does not match its declaration", errors)
        facts: dict[str, Any] = {
            "case_id": self.case_id, "upload_id": upload_id, "filename": want.filename,
            "content_type": want.content_type, "size": want.size, "sha256": want.sha256,
            "object_key": measured.object_key, "status": AVAILABLE,
        }
        if not self.versions:
            self.record(ctx, DocumentAttached, **facts)
        else:
            self.record(ctx, DocumentVersionAdded, version_number=len(self.versions) + 1, **facts)
        return len(self.versions)

    def rename(self, ctx: Context, filename: str) -> None:
        self._require_active()
        name = _filename(filename)
        if name == self.filename:
            raise InvalidStateChange("the name is unchanged")
        self.record(ctx, DocumentRenamed, case_id=self.case_id, filename=name, previous=self.filename)

    def remove(self, ctx: Context, reason: str) -> None:
        self._require_active()
        if self.legal_hold:
            raise DocumentOnHold(f"document {self.filename!r} is under legal hold")
        self.record(ctx, DocumentRemoved, case_id=self.case_id, filename=self.filename, reason=_reason(reason))

    def place_legal_hold(self, ctx: Context, reason: str) -> None:
        self._require_active()
        if self.legal_hold:
            raise InvalidStateChange("the document is already under legal hold")
        self.record(ctx, DocumentLegalHoldPlaced, case_id=self.case_id, filename=self.filename, reason=_reason(reason))

    def release_legal_hold(self, ctx: Context, reason: str) -> None:
        if not self.legal_hold:
            raise InvalidStateChange("the document is not under legal hold")
        self.record(ctx, DocumentLegalHoldReleased, case_id=self.case_id, filename=self.filename,
                    reason=_reason(reason))

    # -- rules ----------------------------------------------------------------------------------

    def _require_not_removed(self) -> None:
        if self.status == REMOVED:
            raise InvalidStateChange(f"document {self.filename!r} was removed")

    def _require_active(self) -> None:
        if not self.status:
            raise NotFound(f"document {self.id} not found")
        self._require_not_removed()

    # -- appliers -------------------------------------------------------------------------------

    @applies(DocumentUploadRequested)
    def _upload_requested(self, e: DocumentUploadRequested) -> None:
        self.case_id = e.case_id
        declared = Declared(e.filename, e.content_type, e.size, e.sha256)
        self.uploads[e.upload_id] = Pending(declared, datetime.fromisoformat(e.expires_at))

    def _add_version(self, e: DocumentAttached | DocumentVersionAdded) -> None:
        self.uploads.pop(e.upload_id, None)
        self.versions.append(Version(len(self.versions) + 1, e.filename, e.content_type, e.size, e.sha256,
                                     e.object_key, e.status, e.occurred_at, e.actor))
        self.filename = e.filename
        self.status = ACTIVE

    @applies(DocumentAttached)
    def _attached(self, e: DocumentAttached) -> None:
        self._add_version(e)

    @applies(DocumentVersionAdded)
    def _version_added(self, e: DocumentVersionAdded) -> None:
        self._add_version(e)

    @applies(DocumentRenamed)
    def _renamed(self, e: DocumentRenamed) -> None:
        self.filename = e.filename

    @applies(DocumentRemoved)
    def _removed(self, e: DocumentRemoved) -> None:
        self.status = REMOVED
        self.uploads.clear()

    @applies(DocumentLegalHoldPlaced)
    def _hold_placed(self, e: DocumentLegalHoldPlaced) -> None:
        self.legal_hold = True

    @applies(DocumentLegalHoldReleased)
    def _hold_released(self, e: DocumentLegalHoldReleased) -> None:
        self.legal_hold = False


def _reason(value: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > MAX_REASON:
        raise ValidationFailed("reason is too long", [FieldError("reason", f"at most {MAX_REASON} characters")])
    return text
