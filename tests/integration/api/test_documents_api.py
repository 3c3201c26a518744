"""Documents through the HTTP API of a real app, with local storage (embedded) and with the real S3 server: declare,
PUT to the presigned URL, confirm, list, download byte-identical; mismatches refused naming the field, with the
uploaded object removed and nothing stored."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.object_storage import upload_key
from casestream.settings import Settings
from infra.s3 import S3Server
from tests.http_server import LiveServer, live_server
from tests.integration.api.conftest import CLAIM

PDF = b"%PDF-1.7\n" + os.urandom(300_000)
LIMITS = {"max_size": 2_000_000, "allowed_types": ["application/pdf", "text/plain", "image/png"]}


@pytest.fixture(scope="module", params=["local", "s3"])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data: Path = tmp_path_factory.mktemp(f"documents-{request.param}")
    settings = Settings(data_dir=data, processes="off", document_storage=request.param,
                        document_upload_max_bytes=3_000_000)
    if request.param == "s3":
        s3 = request.getfixturevalue("s3_server")
        assert isinstance(s3, S3Server)
        info = s3.info()
        settings = settings.model_copy(update={"s3_url": info["endpoint"], "s3_bucket": "cs-documents-api"})
    with live_server(settings) as live:
        with live.client("ada", ("admin",)) as admin:
            assert admin.post("/api/definitions", json={**CLAIM, "documents": LIMITS}).status_code == 200
        yield live


def _case(client: httpx.Client) -> str:
    reply = client.post("/api/cases", json={"definition_key": "claim", "title": "Hail", "data": {"amount": 5}})
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def _declare(client: httpx.Client, case_id: str, data: bytes, **over: Any) -> dict[str, Any]:
    body = {"filename": "roof.pdf", "content_type": "application/pdf", "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), **over}
    reply = client.post(f"/api/cases/{case_id}/uploads", json=body)
    assert reply.status_code == 201, reply.text
    ticket: dict[str, Any] = reply.json()
    return ticket


def _upload(client: httpx.Client, case_id: str, data: bytes, sent: bytes | None = None, **over: Any) -> httpx.Response:
    ticket = _declare(client, case_id, data, **over)
    put = httpx.put(ticket["url"], content=data if sent is None else sent, timeout=60)
    assert put.status_code == 200, put.text
    return client.post(f"/api/cases/{case_id}/documents/{ticket['document_id']}/uploads/{ticket['upload_id']}/confirm")


def _problem_fields(reply: httpx.Response) -> list[str]:
    assert reply.headers["content-type"].startswith("application/problem+json"), reply.text
    return [e["path"] for e in reply.json().get("errors") or []]


def test_upload_confirm_list_and_download_byte_identical(app: LiveServer) -> None:
    with app.client("alice") as alice:
        case_id = _case(alice)
        confirmed = _upload(alice, case_id, PDF)
        assert confirmed.status_code == 200, confirmed.text
        listed = alice.get(f"/api/cases/{case_id}/documents", params={"wait_for": confirmed.json()["position"]})
        assert listed.status_code == 200, listed.text
        [doc] = listed.json()
        assert (doc["filename"], doc["size"], doc["versions"][0]["sha256"]) == (
            "roof.pdf", len(PDF), hashlib.sha256(PDF).hexdigest())
        link = alice.get(f"/api/cases/{case_id}/documents/{doc['id']}/download").json()
        public = app.platform.settings.s3_url if app.platform.settings.document_storage == "s3" else app.url
        assert link["url"].startswith(public) and link["expires_in"] == 900
        got = httpx.get(link["url"], timeout=60)
        assert got.status_code == 200 and got.content == PDF
        assert "roof.pdf" in got.headers["content-disposition"]
        timeline = alice.get(f"/api/cases/{case_id}/timeline").json()
        assert timeline[-1]["summary"].startswith("attached document “roof.pdf”")


@pytest.mark.parametrize(("sent", "over", "field"), [
    (b"%PDF-1.7\nsomething else entirely", {}, "sha256"),
    (PDF[:-1], {}, "size"),
    (b"just words, not a PDF at all" * 10, {"content_type": "application/pdf"}, "content_type"),
])
def test_a_mismatched_upload_is_refused_naming_the_field_and_its_object_removed(
    app: LiveServer, sent: bytes, over: dict[str, Any], field: str,
) -> None:
    with app.client("alice") as alice:
        case_id = _case(alice)
        declared = PDF if field != "content_type" else sent
        ticket = _declare(alice, case_id, declared, **over)
        assert httpx.put(ticket["url"], content=sent, timeout=60).status_code == 200
        before = app.platform.store.max_position()
        reply = alice.post(
            f"/api/cases/{case_id}/documents/{ticket['document_id']}/uploads/{ticket['upload_id']}/confirm")
        assert reply.status_code == 422, reply.text
        assert field in _problem_fields(reply)
        assert app.platform.storage is not None
        assert app.platform.storage.stat(upload_key("acme", case_id, ticket["upload_id"])) is None
        sha = hashlib.sha256(sent).hexdigest()
        assert app.platform.storage.stat(f"acme/{case_id}/sha256/{sha}") is None  # nothing half-stored
        stored = [type(p.event).__name__ for p in app.platform.store.read(before, 100)]
        assert "DocumentAttached" not in stored


@pytest.mark.parametrize(("over", "field"), [
    ({"content_type": "application/x-msdownload", "filename": "setup.exe"}, "content_type"),
    ({"size": 2_000_001}, "size"),
    ({"filename": "a/b.pdf"}, "filename"),
])
def test_the_definitions_limits_refuse_an_upload_before_any_byte(
    app: LiveServer, over: dict[str, Any], field: str,
) -> None:
    with app.client("alice") as alice:
        case_id = _case(alice)
        body = {"filename": "x.pdf", "content_type": "application/pdf", "size": 10, "sha256": "ab" * 32, **over}
        reply = alice.post(f"/api/cases/{case_id}/uploads", json=body)
        assert reply.status_code == 422, reply.text
        assert field in _problem_fields(reply)


def test_the_same_bytes_twice_are_stored_once_and_a_held_document_cannot_be_removed(app: LiveServer) -> None:
    with app.client("alice") as alice, app.client("bob", ("supervisor",)) as bob:
        case_id = _case(alice)
        first = _upload(alice, case_id, PDF).json()
        second = _upload(alice, case_id, PDF, filename="copy.pdf").json()
        docs = alice.get(f"/api/cases/{case_id}/documents", params={"wait_for": second["position"]}).json()
        assert len(docs) == 2 and first["id"] != second["id"]
        storage = app.platform.storage
        assert storage is not None
        assert storage.stat(f"acme/{case_id}/sha256/{hashlib.sha256(PDF).hexdigest()}") is not None
        if app.platform.settings.document_storage == "local":
            stored = list((app.platform.settings.data_dir / "documents" / "acme" / case_id / "sha256").iterdir())
            assert len([p for p in stored if not p.name.endswith(".type")]) == 1
        doc = f"/api/cases/{case_id}/documents/{first['id']}"
        assert alice.post(f"{doc}/legal-hold", json={"reason": "litigation"}).status_code == 403
        assert bob.post(f"{doc}/legal-hold", json={"reason": "litigation"}).status_code == 200
        refused = alice.post(f"{doc}/remove", json={"reason": "tidy"})
        assert refused.status_code == 409 and refused.json()["type"].endswith("document-on-hold"), refused.text
        assert bob.post(f"{doc}/legal-hold/release", json={}).status_code == 200
        removed = alice.post(f"{doc}/remove", json={"reason": "duplicate"})
        assert removed.status_code == 200
        listed = alice.get(f"/api/cases/{case_id}/documents", params={"wait_for": removed.json()["position"]})
        assert [d["id"] for d in listed.json()] == [second["id"]]
        assert alice.get(f"{doc}/download").status_code == 404


def test_another_tenant_neither_sees_nor_confirms_documents(app: LiveServer) -> None:
    with app.client("alice") as alice, app.client("mallory", ("admin",), "globex") as mallory:
        case_id = _case(alice)
        ticket = _declare(alice, case_id, PDF)
        assert httpx.put(ticket["url"], content=PDF, timeout=60).status_code == 200
        path = f"/api/cases/{case_id}/documents/{ticket['document_id']}/uploads/{ticket['upload_id']}/confirm"
        assert mallory.post(path).status_code == 404
        assert mallory.get(f"/api/cases/{case_id}/documents").status_code == 404
        assert alice.post(path).status_code == 200  # the upload was left alone


@pytest.mark.parametrize("app", ["local"], indirect=True)  # the API's own upload route: local storage only
def test_a_local_upload_is_streamed_with_its_own_size_limit(app: LiveServer) -> None:
    with app.client("alice") as alice:
        case_id = _case(alice)
        ticket = _declare(alice, case_id, PDF)

        def chunks() -> Iterator[bytes]:
            for _ in range(4):
                yield os.urandom(1_000_000)

        reply = httpx.put(ticket["url"], content=chunks(), timeout=60)
        assert reply.status_code == 413, reply.text
        assert app.platform.storage is not None
        assert app.platform.storage.stat(upload_key("acme", case_id, ticket["upload_id"])) is None
        forged = ticket["url"].replace("signature=", "signature=0")
        assert httpx.put(forged, content=b"x").status_code == 403
        assert uuid.UUID(ticket["upload_id"])
