"""SeaweedFS S3 answers the product's minio client: buckets, metadata, multipart, presigned GET."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import uuid
from datetime import timedelta

import httpx
import pytest
from minio import Minio
from minio.error import S3Error

from infra.s3 import ACCESS_KEY, S3_PORT, S3Server
from infra.server import Server

MIB = 1024 * 1024


@pytest.fixture()
def bucket(s3_server: Server) -> str:
    """A fresh bucket per test (a unique name, so reruns never collide)."""
    assert isinstance(s3_server, S3Server)
    name = f"cs-{uuid.uuid4().hex[:12]}"
    client = s3_server.client()
    client.make_bucket(name)
    return name


def _client(server: Server) -> Minio:
    assert isinstance(server, S3Server)
    return server.client()


def test_bucket_is_listed(s3_server: Server, bucket: str) -> None:
    names = [b.name for b in _client(s3_server).list_buckets()]
    assert bucket in names


def test_put_stat_get_with_metadata(s3_server: Server, bucket: str) -> None:
    client = _client(s3_server)
    data = b"case 42: intake form\n"
    client.put_object(
        bucket,
        "cases/42/intake.txt",
        io.BytesIO(data),
        len(data),
        content_type="text/plain",
        metadata={"x-amz-meta-case-id": "42"},
    )
    stat = client.stat_object(bucket, "cases/42/intake.txt")
    assert stat.size == len(data)
    assert stat.content_type == "text/plain"
    assert stat.metadata is not None
    assert stat.metadata.get("x-amz-meta-case-id") == "42"

    response = client.get_object(bucket, "cases/42/intake.txt")
    try:
        assert response.read() == data
    finally:
        response.close()
        response.release_conn()


def test_multipart_upload_of_12_mib(s3_server: Server, bucket: str) -> None:
    client = _client(s3_server)
    data = os.urandom(12 * MIB)
    # a 5 MiB part size forces a real multipart upload (3 parts) instead of one PUT
    client.put_object(bucket, "big.bin", io.BytesIO(data), -1, part_size=5 * MIB)
    stat = client.stat_object(bucket, "big.bin")
    assert stat.size == len(data)
    assert stat.etag is not None and stat.etag.endswith("-3")  # multipart ETags carry the part count
    response = client.get_object(bucket, "big.bin")
    try:
        assert hashlib.sha256(response.read()).digest() == hashlib.sha256(data).digest()
    finally:
        response.close()
        response.release_conn()


def test_presigned_get_works_without_credentials(s3_server: Server, bucket: str) -> None:
    client = _client(s3_server)
    data = b"attachment bytes"
    client.put_object(bucket, "doc.bin", io.BytesIO(data), len(data))
    url = client.presigned_get_object(bucket, "doc.bin", expires=timedelta(minutes=5))
    fetched = httpx.get(url, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == data
    # the signature is what grants access: a tampered one is refused
    refused = httpx.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=10)
    assert refused.status_code == 403


def test_remove_object_and_bucket(s3_server: Server, bucket: str) -> None:
    client = _client(s3_server)
    client.put_object(bucket, "gone.txt", io.BytesIO(b"x"), 1)
    client.remove_object(bucket, "gone.txt")
    with pytest.raises(S3Error) as missing:
        client.stat_object(bucket, "gone.txt")
    assert missing.value.code == "NoSuchKey"
    client.remove_bucket(bucket)
    assert not client.bucket_exists(bucket)


def test_wrong_secret_is_refused(s3_server: Server) -> None:
    assert isinstance(s3_server, S3Server)
    bad = Minio(
        f"127.0.0.1:{S3_PORT}", access_key=ACCESS_KEY, secret_key="wrong", secure=False, region="us-east-1"
    )
    with pytest.raises(S3Error) as denied:
        bad.list_buckets()
    assert denied.value.code == "SignatureDoesNotMatch"


def test_s3_listens_only_on_loopback(s3_server: Server) -> None:
    pid = s3_server.pid()
    assert pid is not None
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    ours = {line.split()[3] for line in out.splitlines() if f"pid={pid}," in line}
    assert f"127.0.0.1:{S3_PORT}" in ours
    assert all(addr.startswith("127.0.0.1:") for addr in ours), ours


def test_a_restart_that_keeps_data_still_serves_the_objects_and_a_plain_start_wipes_them(s3_server: Server) -> None:
    # `casestream up --distributed` restarts the servers it started itself with keep_data (documents persist)
    assert isinstance(s3_server, S3Server)
    name = f"resume-{uuid.uuid4().hex[:12]}"
    client = s3_server.client()
    client.make_bucket(name)
    client.put_object(name, "kept", io.BytesIO(b"still here"), 10)
    s3_server.down()
    assert s3_server.up(keep_data=True)
    assert s3_server.client().get_object(name, "kept").read() == b"still here"
    s3_server.down()
    assert s3_server.up()  # a plain start (the test suite's) begins empty
    assert not s3_server.client().bucket_exists(name)
