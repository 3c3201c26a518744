"""Object storage on S3 through the minio client (MinIO, AWS S3, SeaweedFS); URLs signed for the public endpoint."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import BinaryIO, cast
from urllib.parse import urlsplit

from minio import Minio
from minio.commonconfig import CopySource
from minio.error import S3Error

from adapters.object_storage import CHUNK, ObjectInfo, Readable, content_disposition, lifetime

PART_SIZE = 16 * 1024 * 1024  # multipart part size for streams of unknown length (S3's minimum is 5 MiB)
_MISSING = {"NoSuchKey", "NoSuchObject", "NotFound", "NoSuchBucket"}


def _client(url: str, access_key: str, secret_key: str, region: str) -> Minio:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.netloc:
        raise ValueError(f"{url!r} is not an S3 endpoint URL")
    return Minio(parts.netloc, access_key=access_key, secret_key=secret_key, secure=parts.scheme == "https",
                 region=region)


class S3Storage:
    """One bucket. Presigned URLs are signed offline (the region is given) for `public_url`, the host a browser
    reaches: a URL signed for an internal host name breaks, since the host is part of the signature."""

    def __init__(
        self, url: str, access_key: str, secret_key: str, bucket: str, *, region: str = "us-east-1",
        public_url: str | None = None,
    ) -> None:
        self.client = _client(url, access_key, secret_key, region)
        self.signer = _client(public_url or url, access_key, secret_key, region)
        parts = urlsplit(public_url or url)
        self.public_origin = f"{parts.scheme}://{parts.netloc}"
        self.bucket = bucket
        self._bucket_ready = False
        self._lock = threading.Lock()

    def ensure_bucket(self) -> None:
        """Create the bucket on first use (idempotent)."""
        if self._bucket_ready:
            return
        with self._lock:
            if not self._bucket_ready:
                if not self.client.bucket_exists(self.bucket):
                    try:
                        self.client.make_bucket(self.bucket)
                    except S3Error as exc:
                        if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                            raise
                self._bucket_ready = True

    def put(self, key: str, stream: Readable, size: int, content_type: str) -> ObjectInfo:
        self.ensure_bucket()
        self.client.put_object(self.bucket, key, cast(BinaryIO, stream), size, content_type=content_type,
                               part_size=PART_SIZE if size < 0 else 0)
        info = self.stat(key)
        if info is None:
            raise RuntimeError(f"S3 lost {key} right after storing it")
        return info

    def get(self, key: str) -> Iterator[bytes]:
        try:
            response = self.client.get_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                raise KeyError(key) from None
            raise
        return self._chunks(response)

    @staticmethod
    def _chunks(response: object) -> Iterator[bytes]:
        try:
            yield from response.stream(CHUNK)  # type: ignore[attr-defined]
        finally:
            response.close()  # type: ignore[attr-defined]
            response.release_conn()  # type: ignore[attr-defined]

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            found = self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                return None
            raise
        return ObjectInfo(key, int(found.size or 0), found.content_type or "application/octet-stream")

    def copy(self, source: str, dest: str) -> None:
        try:
            self.client.copy_object(self.bucket, dest, CopySource(self.bucket, source))
        except S3Error as exc:
            if exc.code in _MISSING:
                raise KeyError(source) from None
            raise

    def delete(self, key: str) -> None:
        self.client.remove_object(self.bucket, key)

    @property
    def browser_origin(self) -> str:
        return self.public_origin

    def presign_put(self, key: str, expires: timedelta) -> str:
        self.ensure_bucket()
        return self.signer.presigned_put_object(self.bucket, key, lifetime(int(expires.total_seconds())))

    def presign_get(self, key: str, expires: timedelta, filename: str, content_type: str) -> str:
        headers: dict[str, str | list[str] | tuple[str]] = {
            "response-content-disposition": content_disposition(filename), "response-content-type": content_type,
        }
        return self.signer.presigned_get_object(self.bucket, key, lifetime(int(expires.total_seconds())),
                                                response_headers=headers)
