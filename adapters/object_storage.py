"""The object storage port: where document bytes live (S3 in distributed mode, a local folder embedded).

Keys are per tenant and case (`keys.py`-style helpers below); stored content is addressed by its SHA-256 so the same
bytes uploaded twice to one case are stored once. Presigned URLs let a browser move the bytes without passing them
through the API (S3), or through the API's own signed route (the local folder).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol
from urllib.parse import quote

MAX_URL_LIFETIME = timedelta(days=7)  # S3's own ceiling for SigV4 presigned URLs
CHUNK = 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ObjectInfo:
    """What the store knows of one object."""

    key: str
    size: int
    content_type: str


class Readable(Protocol):
    """A stream of bytes (a file, a request body)."""

    def read(self, size: int = -1, /) -> bytes: ...


class ObjectStorage(Protocol):
    """Streams bytes in and out by key; never holds a whole object in memory."""

    @property
    def browser_origin(self) -> str:
        """The origin (scheme://host:port) a browser sends bytes to through the presigned URLs."""
        ...

    def put(self, key: str, stream: Readable, size: int, content_type: str) -> ObjectInfo:
        """Store size bytes read from stream under key (size -1: unknown, read to the end)."""
        ...

    def get(self, key: str) -> Iterator[bytes]:
        """The object's bytes in chunks (KeyError when there is none)."""
        ...

    def stat(self, key: str) -> ObjectInfo | None:
        """The object's size and type, or None when there is none."""
        ...

    def copy(self, source: str, dest: str) -> None:
        """Copy one object to another key inside the store."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object (nothing when there is none)."""
        ...

    def presign_put(self, key: str, expires: timedelta) -> str:
        """A URL that accepts one HTTP PUT of the object's bytes until it expires."""
        ...

    def presign_get(self, key: str, expires: timedelta, filename: str, content_type: str) -> str:
        """A URL that serves the object as a download named filename until it expires."""
        ...


def _segment(value: str, what: str) -> str:
    if not value or "/" in value or value in {".", ".."} or len(value) > 100:
        raise ValueError(f"{what} {value!r} cannot be part of a storage key")
    return value


def content_key(tenant: str, case_id: str, sha256: str) -> str:
    """Where a case's bytes with this SHA-256 are kept: the same bytes are stored once per case."""
    if not _SHA256.match(sha256):
        raise ValueError("sha256 must be 64 lower-case hex digits")
    return f"{_segment(tenant, 'tenant')}/{_segment(case_id, 'case id')}/sha256/{sha256}"


def preview_key(tenant: str, case_id: str, sha256: str) -> str:
    """Where the thumbnail of a case's bytes with this SHA-256 is kept (the same bytes are drawn once per case)."""
    if not _SHA256.match(sha256):
        raise ValueError("sha256 must be 64 lower-case hex digits")
    return f"{_segment(tenant, 'tenant')}/{_segment(case_id, 'case id')}/previews/{sha256}.png"


def upload_key(tenant: str, case_id: str, upload_id: str) -> str:
    """Where an upload waits to be confirmed (then it moves to its content key, or is removed)."""
    return f"{_segment(tenant, 'tenant')}/{_segment(case_id, 'case id')}/uploads/{_segment(upload_id, 'upload id')}"


def content_disposition(filename: str) -> str:
    """An attachment header naming filename (an ASCII fallback plus the UTF-8 name, RFC 6266)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "download"
    return f'attachment; filename="{fallback}"; filename*=UTF-8\'\'{quote(filename, safe="")}'


def lifetime(seconds: int) -> timedelta:
    """A presigned URL's lifetime, at least a second and at most S3's seven days."""
    return min(max(timedelta(seconds=seconds), timedelta(seconds=1)), MAX_URL_LIFETIME)
