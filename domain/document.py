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

# A version's status: its bytes may be downloaded (available) only once a scanner found them clean; until then
# they are pending (not yet scanned: the scanner was unreachable, or nobody scanned them), or quarantined for good.
AVAILABLE, PENDING, QUARANTINED = "available", "pending", "quarantined"
SCAN_RESULTS = ("clean", "infected", "unscanned")  # what the confirming side's scanner said (Measured.scan)
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


class VersionNotAvailable(DomainError):
    """A version's bytes are not served: waiting for the virus scan, or quarantined."""

    code = "document-not-available"
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


class DocumentVersionScanned(Event):
    """A pending version was scanned clean: its bytes become downloadable."""

    case_id: str
    filename: str
    version_number: int


class DocumentVersionQuarantined(Event):
    """A version's bytes were found infected (or could not be scanned for good): they stay quarantined, never
    downloadable; the reason says what the scanner found."""

    case_id: str
    filename: str
    version_number: int
    reason: str


class DocumentPreviewRecorded(Event):
    """A thumbnail of a version was made (preview_key names it in storage) or could not be (error); not on the
    timeline."""

    case_id: str
    version_number: int
    preview_key: str
    error: str


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
    scan: str = "unscanned"  # clean, infected or unscanned (SCAN_RESULTS): never assumed clean
    scan_reason: str = ""


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
    preview: str = ""  # "", ready or failed


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
        if measured.scan not in SCAN_RESULTS:
            errors.append(FieldError("scan", f"must be one of {', '.join(SCAN_RESULTS)}"))
        if errors:
            raise ValidationFailed("the upload does not match its declaration", errors)
        facts: dict[str, Any] = {
            "case_id": self.case_id, "upload_id": upload_id, "filename": want.filename,
            "content_type": want.content_type, "size": want.size, "sha256": want.sha256,
            "object_key": measured.object_key, "status": AVAILABLE if measured.scan == "clean" else PENDING,
        }
        if not self.versions:
            self.record(ctx, DocumentAttached, **facts)
        else:
            self.record(ctx, DocumentVersionAdded, version_number=len(self.versions) + 1, **facts)
        number = len(self.versions)
        if measured.scan == "infected":
            self.record(ctx, DocumentVersionQuarantined, case_id=self.case_id, filename=want.filename,
                        version_number=number, reason=_scan_reason(measured.scan_reason))
        return number

    def record_scan(self, ctx: Context, version_number: int, clean: bool, reason: str) -> None:
        """Record a later scan of a pending version: clean makes it downloadable, otherwise it is quarantined.

        Allowed on a removed document too: what its bytes were found to be belongs to its history.
        """
        version = self._version(version_number)
        if version.status != PENDING:
            raise InvalidStateChange(f"version {version_number} is {version.status}, not waiting for a scan")
        if clean:
            self.record(ctx, DocumentVersionScanned, case_id=self.case_id, filename=version.filename,
                        version_number=version_number)
        else:
            self.record(ctx, DocumentVersionQuarantined, case_id=self.case_id, filename=version.filename,
                        version_number=version_number, reason=_scan_reason(reason))

    def record_preview(self, ctx: Context, version_number: int, preview_key: str, error: str) -> None:
        """Record the thumbnail of an available version (or why none could be made), once."""
        version = self._version(version_number)
        if version.status != AVAILABLE:
            raise InvalidStateChange(f"version {version_number} is {version.status}: no preview of its bytes")
        if version.preview:
            raise InvalidStateChange(f"version {version_number} has a preview already")
        if bool(preview_key) == bool(error):
            raise ValidationFailed("a preview is a key or an error", [FieldError(
                "preview_key", "give exactly one of preview_key and error")])
        self.record(ctx, DocumentPreviewRecorded, case_id=self.case_id, version_number=version_number,
                    preview_key=preview_key, error=error[:MAX_REASON])

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

    def _version(self, number: int) -> Version:
        if not 1 <= number <= len(self.versions):
            raise NotFound(f"document {self.id} has no version {number}")
        return self.versions[number - 1]

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

    @applies(DocumentVersionScanned)
    def _scanned(self, e: DocumentVersionScanned) -> None:
        self.versions[e.version_number - 1].status = AVAILABLE

    @applies(DocumentVersionQuarantined)
    def _quarantined(self, e: DocumentVersionQuarantined) -> None:
        self.versions[e.version_number - 1].status = QUARANTINED

    @applies(DocumentPreviewRecorded)
    def _preview_recorded(self, e: DocumentPreviewRecorded) -> None:
        self.versions[e.version_number - 1].preview = "ready" if e.preview_key else "failed"

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


def _scan_reason(value: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    return (text or "the scanner refused the file")[:MAX_REASON]
