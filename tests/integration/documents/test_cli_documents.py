"""`casestream documents …` as a person runs it (a real subprocess) against a real API: upload, list, download
byte-identical, legal hold, remove; refusals name the field or the option."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from casestream.settings import Settings
from tests.http_server import LiveServer, live_server
from tests.integration.api.conftest import CLAIM

LIMITS = {"max_size": 2_000_000, "allowed_types": ["application/pdf", "text/plain"]}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(Settings(data_dir=tmp_path_factory.mktemp("cli-documents"), processes="off")) as live:
        with live.client("ada", ("admin",)) as admin:
            assert admin.post("/api/definitions", json={**CLAIM, "documents": LIMITS}).status_code == 200
        yield live


def cli(app: LiveServer, *args: str, user: str = "alice", roles: str = "caseworker",
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CASESTREAM_TOKEN": app.token(user, (roles,))}
    return subprocess.run([sys.executable, "-m", "casestream", "documents", *args, "--url", app.url], env=env,
                          capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def test_upload_list_download_hold_and_remove_through_the_cli(app: LiveServer, tmp_path: Path) -> None:
    with app.client("alice") as alice:
        opened = alice.post("/api/cases", json={"definition_key": "claim", "title": "Hail", "data": {"amount": 5}})
        number = opened.json()["number"]
    source = tmp_path / "report.pdf"
    source.write_bytes(b"%PDF-1.7\n" + os.urandom(1_500_000))

    sent = cli(app, "upload", number, str(source))
    assert sent.returncode == 0, sent.stderr
    document_id, filename = sent.stdout.split()[:2]
    assert filename == "report.pdf" and "available" in sent.stdout

    listed = cli(app, "list", number)
    assert listed.returncode == 0 and document_id in listed.stdout and "[available]" in listed.stdout

    got = cli(app, "download", number, "report.pdf", "-o", str(tmp_path / "back.pdf"))
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "back.pdf").read_bytes() == source.read_bytes()
    again = cli(app, "download", number, document_id, "-o", str(tmp_path / "back.pdf"))
    assert again.returncode != 0 and "--output" in again.stderr  # no silent overwrite

    assert cli(app, "hold", number, document_id, "--reason", "audit", user="bob", roles="supervisor").returncode == 0
    held = cli(app, "remove", number, document_id, "--reason", "duplicate")
    assert held.returncode == 1 and "legal hold" in held.stderr
    assert cli(app, "hold", number, document_id, "--release", user="bob", roles="supervisor").returncode == 0
    assert cli(app, "remove", number, document_id, "--reason", "duplicate").returncode == 0
    assert "no documents" in cli(app, "list", number).stdout


def test_refusals_name_the_field_or_the_option(app: LiveServer, tmp_path: Path) -> None:
    with app.client("alice") as alice:
        case_id = alice.post("/api/cases", json={"definition_key": "claim", "title": "Hail",
                                                 "data": {"amount": 5}}).json()["id"]
    program = tmp_path / "setup.exe"
    program.write_bytes(b"MZ" + os.urandom(100))
    refused = cli(app, "upload", case_id, str(program))
    assert refused.returncode == 1 and "content_type:" in refused.stderr and "not allowed" in refused.stderr

    too_big = tmp_path / "big.txt"
    too_big.write_text("x" * 2_000_001)
    refused = cli(app, "upload", case_id, str(too_big))
    assert refused.returncode == 1 and "size:" in refused.stderr

    missing = cli(app, "upload", case_id, str(tmp_path / "nothing.pdf"))
    assert missing.returncode == 2 and "FILE" in missing.stderr
    unknown = cli(app, "list", "CLAIM-999999")
    assert unknown.returncode == 2 and "CASE" in unknown.stderr
    no_token = subprocess.run([sys.executable, "-m", "casestream", "documents", "list", case_id, "--url", app.url],
                              env={k: v for k, v in os.environ.items() if k != "CASESTREAM_TOKEN"},
                              capture_output=True, text=True, timeout=60, check=False)
    assert no_token.returncode == 2 and "--token" in no_token.stderr
