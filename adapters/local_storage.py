"""Object storage in a local folder (the embedded default), with HMAC-signed URLs served by the API itself."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode, urlsplit

from adapters.object_storage import CHUNK, ObjectInfo, Readable, lifetime

TYPE_SUFFIX = ".type"  # the content type sits beside the object: a folder has no metadata of its own


class UrlRefused(Exception):
    """A signed URL that is expired, tampered with or made for another method or key (answered 403)."""


class LocalFolderStorage:
    """Objects as files under root; presigned URLs point at `{base_url}/storage/{key}` and carry an HMAC."""

    def __init__(self, root: Path, secret: bytes, base_url: str, clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self.secret = secret
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        root.mkdir(parents=True, exist_ok=True)

    @property
    def browser_origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in {"", ".", ".."} for p in parts):
            raise ValueError(f"{key!r} is not a storage key")
        return self.root.joinpath(*parts)

    def put(self, key: str, stream: Readable, size: int, content_type: str) -> ObjectInfo:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        written = 0
        try:
            with tmp.open("wb") as out:
                while size < 0 or written < size:
                    chunk = stream.read(CHUNK if size < 0 else min(CHUNK, size - written))
                    if not chunk:
                        break
                    out.write(chunk)
                    written += len(chunk)
            if 0 <= size != written:
                raise ValueError(f"the stream ended after {written} of {size} bytes")
            path.with_name(path.name + TYPE_SUFFIX).write_text(content_type)
            os.replace(tmp, path)  # readers see the whole object or none
        finally:
            tmp.unlink(missing_ok=True)
        return ObjectInfo(key, written, content_type)

    def get(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        try:
            handle = path.open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise KeyError(key) from None
        return self._chunks(handle)

    @staticmethod
    def _chunks(handle: BinaryIO) -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        if not path.is_file():
            return None
        kind = path.with_name(path.name + TYPE_SUFFIX)
        content_type = kind.read_text() if kind.is_file() else "application/octet-stream"
        return ObjectInfo(key, path.stat().st_size, content_type)

    def copy(self, source: str, dest: str) -> None:
        info = self.stat(source)
        if info is None:
            raise KeyError(source)
        with self._path(source).open("rb") as stream:
            self.put(dest, stream, info.size, info.content_type)

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        path.with_name(path.name + TYPE_SUFFIX).unlink(missing_ok=True)

    # -- signed URLs ------------------------------------------------------------------------------

    def _signature(self, method: str, key: str, expires: int, extra: str) -> str:
        message = f"{method}\n{key}\n{expires}\n{extra}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def _url(self, method: str, key: str, expires: timedelta, params: dict[str, str]) -> str:
        until = int(self.clock() + lifetime(int(expires.total_seconds())).total_seconds())
        extra = urlencode(sorted(params.items()))
        query = {**params, "expires": str(until), "signature": self._signature(method, key, until, extra)}
        return f"{self.base_url}/storage/{quote(key)}?{urlencode(query)}"

    def presign_put(self, key: str, expires: timedelta) -> str:
        return self._url("PUT", key, expires, {})

    def presign_get(self, key: str, expires: timedelta, filename: str, content_type: str) -> str:
        return self._url("GET", key, expires, {"filename": filename})

    def check(self, method: str, key: str, query: dict[str, str]) -> None:
        """Raise UrlRefused unless query signs method on key and has not expired."""
        params = {k: v for k, v in query.items() if k not in {"expires", "signature"}}
        try:
            until = int(query.get("expires", ""))
        except ValueError:
            raise UrlRefused("the URL has no valid expiry") from None
        expected = self._signature(method, key, until, urlencode(sorted(params.items())))
        if not hmac.compare_digest(expected, query.get("signature", "")):
            raise UrlRefused("the URL's signature does not match")
        if self.clock() > until:
            raise UrlRefused("the URL has expired")
