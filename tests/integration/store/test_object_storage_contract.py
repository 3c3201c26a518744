"""One contract for the object storage port, run against the local folder and the real S3 server (SeaweedFS)."""

from __future__ import annotations

import io
import os
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import pytest

from adapters.local_storage import LocalFolderStorage, UrlRefused
from adapters.object_storage import ObjectStorage, content_key
from adapters.s3_storage import S3Storage
from infra.s3 import S3Server
from infra.server import Server

MIB = 1024 * 1024
PUBLIC_LOCAL = "http://files.example.test:8000"


class StorageContract:
    """What every ObjectStorage does; subclasses give `storage` and `fetch` (an HTTP request to a presigned URL)."""

    storage: ObjectStorage

    def fetch(self, method: str, url: str, body: bytes = b"") -> tuple[int, bytes]:
        raise NotImplementedError

    def public_base(self) -> str:
        raise NotImplementedError

    def key(self) -> str:
        return f"acme/{uuid.uuid4()}/uploads/{uuid.uuid4()}"

    def test_put_stat_and_get_round_trip(self) -> None:
        key = self.key()
        info = self.storage.put(key, io.BytesIO(b"hello world"), 11, "text/plain")
        assert (info.size, info.content_type) == (11, "text/plain")
        stat = self.storage.stat(key)
        assert stat is not None and (stat.size, stat.content_type) == (11, "text/plain")
        assert b"".join(self.storage.get(key)) == b"hello world"

    def test_a_stream_of_unknown_length_is_stored_whole(self) -> None:
        data = os.urandom(3 * MIB + 17)
        key = self.key()
        assert self.storage.put(key, io.BytesIO(data), -1, "application/octet-stream").size == len(data)
        assert b"".join(self.storage.get(key)) == data

    def test_missing_objects_have_no_stat_and_get_raises_key_error(self) -> None:
        key = self.key()
        assert self.storage.stat(key) is None
        with pytest.raises(KeyError):
            b"".join(self.storage.get(key))

    def test_copy_then_delete(self) -> None:
        source, dest = self.key(), content_key("acme", str(uuid.uuid4()), "a" * 64)
        self.storage.put(source, io.BytesIO(b"%PDF-1.7 x"), 10, "application/pdf")
        self.storage.copy(source, dest)
        self.storage.delete(source)
        self.storage.delete(source)  # twice: nothing there, no error
        assert self.storage.stat(source) is None
        assert b"".join(self.storage.get(dest)) == b"%PDF-1.7 x"
        with pytest.raises(KeyError):
            self.storage.copy(source, self.key())

    def test_presigned_put_then_presigned_get_through_http(self) -> None:
        key = self.key()
        put_url = self.storage.presign_put(key, timedelta(minutes=5))
        assert put_url.startswith(self.public_base())
        status, _ = self.fetch("PUT", put_url, b"uploaded by a browser")
        assert status == 200
        get_url = self.storage.presign_get(key, timedelta(minutes=5), "Brief ü.txt", "text/plain")
        assert get_url.startswith(self.public_base())
        assert self.fetch("GET", get_url) == (200, b"uploaded by a browser")

    def test_an_expired_url_is_refused_with_403(self) -> None:
        key = self.key()
        self.storage.put(key, io.BytesIO(b"x"), 1, "text/plain")
        url = self.storage.presign_get(key, timedelta(seconds=1), "x.txt", "text/plain")
        time.sleep(2.2)
        assert self.fetch("GET", url)[0] == 403
        put = self.storage.presign_put(self.key(), timedelta(seconds=1))
        time.sleep(2.2)
        assert self.fetch("PUT", put, b"late")[0] == 403

    def test_a_tampered_url_is_refused_with_403(self) -> None:
        key = self.key()
        self.storage.put(key, io.BytesIO(b"secret"), 6, "text/plain")
        url = self.storage.presign_get(key, timedelta(minutes=5), "s.txt", "text/plain")
        other = self.key()
        self.storage.put(other, io.BytesIO(b"other"), 5, "text/plain")
        last = key.rsplit("/", 1)[1]
        assert self.fetch("GET", url.replace(last, other.rsplit("/", 1)[1]))[0] == 403


class TestLocalFolderStorage(StorageContract):
    @pytest.fixture(autouse=True)
    def _storage(self, tmp_path: Path) -> None:
        self.local = LocalFolderStorage(tmp_path / "objects", b"k" * 32, PUBLIC_LOCAL)
        self.storage = self.local

    def public_base(self) -> str:
        return PUBLIC_LOCAL + "/storage/"

    def fetch(self, method: str, url: str, body: bytes = b"") -> tuple[int, bytes]:
        """What the API's /storage route does with a request (api/routes_documents.py)."""
        parts = urlsplit(url)
        key = unquote(parts.path.removeprefix("/storage/"))
        try:
            self.local.check(method, key, dict(parse_qsl(parts.query)))
        except UrlRefused:
            return 403, b""
        if method == "PUT":
            self.local.put(key, io.BytesIO(body), len(body), "application/octet-stream")
            return 200, b""
        return 200, b"".join(self.local.get(key))


class TestS3Storage(StorageContract):
    @pytest.fixture(autouse=True)
    def _storage(self, s3_server: Server) -> Iterator[None]:
        assert isinstance(s3_server, S3Server)
        info = s3_server.info()
        self.endpoint = info["endpoint"]
        self.storage = S3Storage(self.endpoint, info["access_key"], info["secret_key"], "cs-contract",
                                 region=info["region"])
        yield

    def public_base(self) -> str:
        return self.endpoint.rstrip("/") + "/cs-contract/"

    def fetch(self, method: str, url: str, body: bytes = b"") -> tuple[int, bytes]:
        response = httpx.request(method, url, content=body if method == "PUT" else None, timeout=30)
        return response.status_code, response.content

    def test_urls_are_signed_for_the_public_endpoint(self) -> None:
        public = S3Storage(self.endpoint, "casestream", "casestream-secret-key", "cs-contract",
                           public_url="https://files.example.test")
        url = public.presign_get("acme/x/sha256/" + "0" * 64, timedelta(minutes=15), "a.pdf", "application/pdf")
        assert url.startswith("https://files.example.test/cs-contract/acme/x/sha256/")
        assert "X-Amz-Expires=900" in url
