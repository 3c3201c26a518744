"""Quarantine and previews through the HTTP API with a real clamd (infra/clamav.py): the EICAR file is attached
quarantined with the reason on the timeline and never served; a clean file becomes downloadable and gets a
thumbnail; while clamd is unreachable a version stays pending (not downloadable) and is scanned once clamd is back;
a file whose preview cannot be made still downloads."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from casestream.settings import Settings
from infra.clamav import EICAR_HEX
from infra.server import Server
from tests.http_server import LiveServer, live_server
from tests.integration.api.conftest import CLAIM
from tests.sse import collect_sse

EICAR = bytes.fromhex(EICAR_HEX)
LIMITS = {"max_size": 5_000_000, "allowed_types": ["application/pdf", "text/plain", "image/png"]}


def _png(width: int = 900, height: int = 600) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


@contextmanager
def _serve(data: Path, clamav_url: str) -> Iterator[LiveServer]:
    settings = Settings(data_dir=data, processes="off", clamav_url=clamav_url, clamav_timeout=10,
                        document_scan_retry_seconds=0.2)
    with live_server(settings) as live:
        with live.client("ada", ("admin",)) as admin:
            assert admin.post("/api/definitions", json={**CLAIM, "documents": LIMITS}).status_code == 200
        yield live


@pytest.fixture(scope="module")
def app(clamav_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with _serve(tmp_path_factory.mktemp("quarantine"), clamav_server.info()["url"]) as live:
        yield live


def _case(client: httpx.Client) -> str:
    reply = client.post("/api/cases", json={"definition_key": "claim", "title": "Hail", "data": {"amount": 5}})
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def _upload(client: httpx.Client, case_id: str, data: bytes, filename: str, content_type: str) -> dict[str, Any]:
    ticket = client.post(f"/api/cases/{case_id}/uploads", json={
        "filename": filename, "content_type": content_type, "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest()}).json()
    assert httpx.put(ticket["url"], content=data, timeout=60).status_code == 200
    confirmed = client.post(
        f"/api/cases/{case_id}/documents/{ticket['document_id']}/uploads/{ticket['upload_id']}/confirm")
    assert confirmed.status_code == 200, confirmed.text
    return {"document_id": ticket["document_id"], "position": confirmed.json()["position"]}


def _eventually(probe: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if check(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def _doc(client: httpx.Client, case_id: str, document_id: str, position: int = 0) -> dict[str, Any]:
    reply = client.get(f"/api/cases/{case_id}/documents/{document_id}", params={"wait_for": position})
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def test_eicar_is_quarantined_with_the_reason_on_the_timeline_and_never_served(app: LiveServer) -> None:
    with app.client("alice") as alice:
        case_id = _case(alice)
        sent = _upload(alice, case_id, EICAR + b"\n", "invoice.txt", "text/plain")
        doc = alice.get(f"/api/cases/{case_id}/documents/{sent['document_id']}",
                        params={"wait_for": sent["position"]}).json()
        [version] = doc["versions"]
        assert (version["status"], doc["available"]) == ("quarantined", False)
        assert "Casestream.Test.EICAR" in version["scan_reason"]
        summaries = [e["summary"] for e in alice.get(f"/api/cases/{case_id}/timeline").json()]
        assert any(s.startswith("quarantined version 1 of document “invoice.txt”: ClamAV found Casestream.Test.EICAR")
                   for s in summaries), summaries
        refused = alice.get(f"/api/cases/{case_id}/documents/{sent['document_id']}/download")
        assert refused.status_code == 409 and refused.json()["type"].endswith("document-not-available"), refused.text
        assert "Casestream.Test.EICAR" in refused.json()["detail"]
        assert alice.get(f"/api/cases/{case_id}/documents/{sent['document_id']}/preview").status_code == 409


def test_a_clean_file_becomes_visible_with_a_thumbnail(app: LiveServer) -> None:
    image = _png()
    with app.client("alice") as alice:
        case_id = _case(alice)
        sent = _upload(alice, case_id, image, "roof.png", "image/png")
        doc = alice.get(f"/api/cases/{case_id}/documents/{sent['document_id']}",
                        params={"wait_for": sent["position"]}).json()
        assert (doc["versions"][0]["status"], doc["available"]) == ("available", True)
        link = alice.get(f"/api/cases/{case_id}/documents/{sent['document_id']}/download").json()
        assert httpx.get(link["url"], timeout=30).content == image
        doc = _eventually(lambda: _doc(alice, case_id, sent["document_id"], sent["position"]),
                          lambda d: d["versions"][0]["preview"] is not None)
        assert doc["versions"][0]["preview"] == "ready"
        thumb = alice.get(f"/api/cases/{case_id}/documents/{sent['document_id']}/preview")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(thumb.content)).size == (256, 171)


def test_a_file_whose_preview_fails_still_downloads(app: LiveServer) -> None:
    broken = b"%PDF-1.7\n" + os.urandom(5_000)  # sniffs as a PDF, PDFium cannot read it
    with app.client("alice") as alice:
        case_id = _case(alice)
        sent = _upload(alice, case_id, broken, "scan.pdf", "application/pdf")
        doc = _eventually(lambda: _doc(alice, case_id, sent["document_id"], sent["position"]),
                          lambda d: d["versions"][0]["preview"] is not None)
        assert doc["versions"][0]["preview"] == "failed" and doc["available"]
        missing = alice.get(f"/api/cases/{case_id}/documents/{sent['document_id']}/preview")
        assert missing.status_code == 404 and "could not be made" in missing.json()["detail"]
        link = alice.get(f"/api/cases/{case_id}/documents/{sent['document_id']}/download").json()
        assert httpx.get(link["url"], timeout=30).content == broken


def test_an_unreachable_scanner_leaves_the_version_pending_until_clamd_is_back(
    clamav_server: Server, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("clamd-away")
    socket_path = folder / "clamd.sock"  # nothing listens there yet
    with _serve(folder / "data", f"unix://{socket_path}") as live, live.client("alice") as alice:
        case_id = _case(alice)
        sent = _upload(alice, case_id, b"the adjuster's notes\n" * 40, "notes.txt", "text/plain")
        doc = alice.get(f"/api/cases/{case_id}/documents/{sent['document_id']}",
                        params={"wait_for": sent["position"]}).json()
        assert (doc["versions"][0]["status"], doc["available"]) == ("pending", False)
        refused = alice.get(f"/api/cases/{case_id}/documents/{sent['document_id']}/download")
        assert refused.status_code == 409 and "waiting for the virus scan" in refused.json()["detail"]
        worker = live.platform.document_worker
        assert worker is not None
        assert _eventually(lambda: worker.waiting_for_scanner, bool)  # it tried, and keeps trying
        assert _doc(alice, case_id, sent["document_id"], sent["position"])["versions"][0]["status"] == "pending"

        socket_path.symlink_to(clamav_server.info()["url"].removeprefix("unix://"))  # clamd is back
        doc = _eventually(lambda: _doc(alice, case_id, sent["document_id"], sent["position"]),
                          lambda d: d["available"])
        assert doc["versions"][0]["status"] == "available"
        summaries = [e["summary"] for e in alice.get(f"/api/cases/{case_id}/timeline").json()]
        assert "version 1 of document “notes.txt” passed the virus scan" in summaries
        assert alice.get(f"/api/cases/{case_id}/documents/{sent['document_id']}/download").status_code == 200


def test_the_live_feed_announces_documents_and_their_quarantine(app: LiveServer) -> None:
    received: list[dict[str, Any]] = []
    with app.client("alice") as alice:
        case_id = _case(alice)

        def read() -> None:
            with contextlib.suppress(httpx.ReadTimeout), httpx.stream(
                    "GET", f"{app.url}/api/events", params={"case_id": case_id}, timeout=20,
                    headers={"Authorization": alice.headers["Authorization"]}) as reply:
                collect_sse(reply.iter_lines(), received, 3)

        reader = threading.Thread(target=read)
        listening = app.app.state.broadcaster.subscribers + 1
        reader.start()
        app.wait_for_subscribers(listening)
        _upload(alice, case_id, EICAR, "invoice.txt", "text/plain")
        _upload(alice, case_id, b"clean words\n", "notes.txt", "text/plain")
        reader.join(timeout=30)
    assert [m["event"] for m in received] == ["DocumentAttached", "DocumentVersionQuarantined", "DocumentAttached"]
    assert all(m["data"]["case_id"] == case_id for m in received)
    assert "notes.txt" in received[2]["data"]["summary"]


def test_a_version_left_pending_at_shutdown_is_scanned_after_the_restart(
    clamav_server: Server, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data = tmp_path_factory.mktemp("restart") / "data"
    with _serve(data, "tcp://127.0.0.1:1") as live, live.client("alice") as alice:  # nothing listens on port 1
        case_id = _case(alice)
        sent = _upload(alice, case_id, b"%PDF-1.7\n" + os.urandom(4_000), "scan.pdf", "application/pdf")
        worker = live.platform.document_worker
        assert worker is not None
        assert _eventually(lambda: worker.waiting_for_scanner, bool)
        stopped_at = worker.position
    assert stopped_at < sent["position"]  # it never moved past the pending version

    settings = Settings(data_dir=data, processes="off", clamav_url=clamav_server.info()["url"])
    with live_server(settings) as live, live.client("alice") as alice:
        doc = _eventually(lambda: _doc(alice, case_id, sent["document_id"], sent["position"]),
                          lambda d: d["available"])
        assert doc["versions"][0]["status"] == "available"
