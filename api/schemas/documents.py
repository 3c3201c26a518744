"""Replies of the document routes."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DocumentVersion(BaseModel):
    """One version of a document."""

    number: int
    filename: str
    content_type: str
    size: int
    sha256: str
    status: str = Field(description="available (scanned clean: downloadable), pending (not yet scanned) or "
                        "quarantined (the scanner refused it; never downloadable).")
    scan_reason: str | None = Field(default=None, description="What the scanner found (quarantined versions).")
    preview: str | None = Field(default=None, description="ready (GET …/preview serves a PNG thumbnail), failed, "
                                "or null (none yet, or none for this type).")
    added_at: str
    added_by: str


class Document(BaseModel):
    """A document of a case with its versions, oldest first."""

    id: str
    case_id: str
    filename: str
    content_type: str
    size: int
    status: str = Field(description="active or removed (removed documents keep their history).")
    legal_hold: bool
    available: bool = Field(default=True, description="Some version's bytes may be downloaded (scanned clean).")
    version: int = Field(description="The document aggregate's version (for expected_version).")
    versions: list[DocumentVersion]
    created_at: str
    created_by: str
    updated_at: str
    updated_by: str


class UploadTicket(BaseModel):
    """Where to PUT the bytes of a requested upload, until when, and the ids its confirm names."""

    document_id: str
    upload_id: str
    method: str = "PUT"
    url: str = Field(description="Presigned: PUT the exact bytes declared, no other header needed.")
    expires_in: int = Field(description="Seconds the URL stays valid.")
    position: int = Field(description="The log position of the recorded request (wait_for).")


class DownloadLink(BaseModel):
    """A presigned URL serving one version of a document as a download."""

    url: str
    expires_in: int
    filename: str
    version: int


class StoredObject(BaseModel):
    """What the local storage's upload route stored."""

    size: int = Field(description="Bytes received.")
