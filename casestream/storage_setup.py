"""Builds the object storage, the scanner and the document worker the settings ask for (the composition root calls
these)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from adapters.clamav_scanner import ClamdScanner
from adapters.document_worker import DocumentWorker
from adapters.local_storage import LocalFolderStorage
from adapters.object_storage import ObjectStorage
from adapters.s3_storage import S3Storage
from adapters.scanning import NoScan, Scanner
from casestream.settings import Settings
from commands.bus import CommandBus
from commands.ports import EventStore
from projections.ports import DocumentStore


def _secret(path: Path) -> bytes:
    """The local URL-signing key, made once (mode 0600) beside the other keys in the data dir."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def build_storage(settings: Settings, *, distributed: bool) -> ObjectStorage:
    """S3 in distributed mode, a folder under the data dir embedded (unless `document_storage` says otherwise)."""
    kind = settings.document_storage
    if kind == "s3" or (kind == "auto" and distributed):
        return S3Storage(settings.s3_url, settings.s3_access_key, settings.s3_secret_key, settings.s3_bucket,
                         region=settings.s3_region, public_url=settings.s3_public_url)
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    return LocalFolderStorage(settings.data_dir / "documents", _secret(settings.data_dir / "storage-key"), base)


def build_scanner(settings: Settings) -> Scanner:
    """ClamAV's clamd when `clamav_url` names one, else the no-op scanner (every upload clean)."""
    if settings.clamav_url:
        return ClamdScanner(settings.clamav_url, timeout=settings.clamav_timeout)
    return NoScan()


def build_document_worker(
    settings: Settings, bus: CommandBus, store: EventStore, documents: DocumentStore, storage: ObjectStorage,
    scanner: Scanner, read_limit: Callable[[], int],
) -> DocumentWorker | None:
    """The background scanner and preview maker (None when `document_worker` is off); not started yet."""
    if settings.document_worker != "on":
        return None
    return DocumentWorker(bus, store, documents, storage, scanner, read_limit,
                          retry_seconds=settings.document_scan_retry_seconds)
