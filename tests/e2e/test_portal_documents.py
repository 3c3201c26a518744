"""The portal uploads a document through the presigned URL straight to the real S3 server (SeaweedFS from infra/,
with a real clamd scanning it) and downloads it back byte-identical; both URLs name the public endpoint
(`s3_public_url`, here a host name the server itself never uses), and the thumbnail shows once it is made; an
infected upload is shown quarantined with the scanner's finding and offers no download."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Page, Request, expect

from casestream.demo import load_demo
from casestream.settings import Settings
from infra.clamav import EICAR_HEX
from infra.server import Server
from tests.e2e.test_portal import cases, eventually, open_case_from_list, region, screenshot
from tests.http_server import LiveServer, live_server

PUBLIC = "http://localhost:28333"  # what browsers reach; the server talks to S3 at 127.0.0.1
BUCKET = "cs-e2e-portal"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, s3_server: Server, clamav_server: Server) -> Iterator[LiveServer]:
    """A platform keeping documents in the real S3 server, presigning for PUBLIC, scanning with the real clamd."""
    endpoint = s3_server.info()["endpoint"]
    assert not endpoint.startswith(PUBLIC)
    settings = Settings(data_dir=tmp_path_factory.mktemp("e2e-documents"), document_storage="s3", s3_url=endpoint,
                        s3_public_url=PUBLIC, s3_bucket=BUCKET, clamav_url=clamav_server.info()["url"])
    with live_server(settings) as live:
        load_demo(live.platform.bus, cases=6)
        live.platform.runner.wait(live.platform.store.max_position(), 30)
        yield live


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client("alice") as client:
        yield client


def _photo() -> bytes:
    noise = Image.frombytes("RGB", (400, 300), os.urandom(400 * 300 * 3))  # incompressible: a real-sized upload
    out = io.BytesIO()
    noise.save(out, "PNG")
    return out.getvalue()


def test_portal_uploads_through_the_presigned_url_and_downloads_it_back(
    signed_in: Page, api: httpx.Client, tmp_path: Path,
) -> None:
    page = signed_in
    photo = _photo()
    pick = cases(api, status="open")[0]
    storage_calls: list[tuple[str, str]] = []

    def seen(request: Request) -> None:
        if not request.url.startswith(signed_in.url.split("/#")[0]):
            storage_calls.append((request.method, request.url))

    page.on("request", seen)
    open_case_from_list(page, pick["number"])
    documents = region(page, "Documents")
    expect(documents).to_contain_text("No documents yet.")

    documents.get_by_label("File to upload").set_input_files(
        {"name": "roof photo.png", "mimeType": "image/png", "buffer": photo})
    documents.get_by_role("button", name="Upload", exact=True).click()
    expect(documents.get_by_role("listitem").filter(has_text="roof photo.png")).to_be_visible()
    expect(region(page, "Timeline")).to_contain_text("attached document “roof photo.png”")

    puts = [url for method, url in storage_calls if method == "PUT"]
    assert len(puts) == 1 and puts[0].startswith(f"{PUBLIC}/{BUCKET}/acme/{pick['id']}/uploads/"), storage_calls

    with page.expect_download() as download:
        documents.get_by_role("button", name="Download roof photo.png").click()
    saved = tmp_path / "downloaded.png"
    download.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == hashlib.sha256(photo).hexdigest()
    assert download.value.url.startswith(f"{PUBLIC}/{BUCKET}/acme/{pick['id']}/sha256/")
    assert download.value.suggested_filename == "roof photo.png"

    # the thumbnail is made in the background; once it is, the case page shows it
    [doc] = eventually(lambda: api.get(f"/api/cases/{pick['id']}/documents").json(),
                       lambda docs: bool(docs) and docs[0]["versions"][0]["preview"] is not None, timeout=30)
    assert doc["versions"][0]["preview"] == "ready"
    page.reload()
    expect(region(page, "Documents").get_by_role("img", name="Preview of roof photo.png")).to_be_visible()
    screenshot(page, "case-documents")


def test_portal_shows_an_infected_upload_quarantined_without_a_download(signed_in: Page, api: httpx.Client) -> None:
    page = signed_in
    pick = cases(api, status="open")[1]
    open_case_from_list(page, pick["number"])
    documents = region(page, "Documents")
    eicar = bytes.fromhex(EICAR_HEX)
    documents.get_by_label("File to upload").set_input_files(
        {"name": "invoice.txt", "mimeType": "text/plain", "buffer": eicar})
    documents.get_by_role("button", name="Upload", exact=True).click()
    item = documents.get_by_role("listitem").filter(has_text="invoice.txt")
    expect(item).to_contain_text("quarantined: ClamAV found Casestream.Test.EICAR")
    expect(item.get_by_role("button", name="Download invoice.txt")).to_have_count(0)
    expect(region(page, "Timeline")).to_contain_text("quarantined version 1 of document “invoice.txt”")
