"""What the upload confirm does with storage: measure the uploaded bytes, keep them by content, clean up after."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from adapters.object_storage import ObjectStorage
from adapters.scanning import UNSCANNED, Scanner, ScannerUnavailable, Verdict
from adapters.sniff import HEAD_BYTES, sniff


@dataclass(frozen=True)
class Measurement:
    """An upload's bytes as stored: size, sniffed type, SHA-256, and the scanner's verdict (`verdict.status` is what
    ConfirmDocumentUpload.scan takes: clean, infected, or unscanned when no scanner could look)."""

    size: int
    sniffed_type: str
    sha256: str
    verdict: Verdict


def measure(storage: ObjectStorage, key: str, scanner: Scanner) -> Measurement | None:
    """Stream the object once through the hash, the sniffer and the scanner (None when nothing was uploaded)."""
    if storage.stat(key) is None:
        return None
    digest = hashlib.sha256()
    head = bytearray()
    size = 0

    def chunks() -> Iterator[bytes]:
        nonlocal size
        for chunk in storage.get(key):
            digest.update(chunk)
            size += len(chunk)
            if len(head) < HEAD_BYTES:
                head.extend(chunk[:HEAD_BYTES - len(head)])
            yield chunk

    stream = chunks()
    try:
        verdict = scanner.scan(stream)
    except ScannerUnavailable:
        verdict = UNSCANNED  # the version stays pending; the document worker scans it again later
    for _rest in stream:  # a scanner may stop early (or, passing everything, read nothing): hash the rest
        pass
    return Measurement(size, sniff(bytes(head)), digest.hexdigest(), verdict)


def keep_by_content(storage: ObjectStorage, upload: str, content: str) -> bool:
    """Copy the upload to its content key unless the same bytes are there already; True when this call stored it."""
    if storage.stat(content) is not None:
        return False
    storage.copy(upload, content)
    return True
