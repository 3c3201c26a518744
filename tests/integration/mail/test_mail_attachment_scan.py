"""Attachments of a mail go through the same scan as uploads (real clamd, infra/clamav.py): an infected one is
attached quarantined with clamd's finding on the timeline, never dropped and never downloadable; a clean one is
downloadable."""

from __future__ import annotations

import email.utils
import smtplib
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from casestream.settings import Settings
from infra.clamav import EICAR_HEX
from infra.mail import DOMAIN
from infra.server import Server
from tests.http_server import LiveServer, free_port, live_server
from tests.integration.mail.conftest import ALICE, CLAIM_BY_MAIL, wait_for

SCANNED = f"scanned@{DOMAIN}"  # no IMAP box: only the SMTP receiver takes mail for it
EICAR = bytes.fromhex(EICAR_HEX)


@pytest.fixture(scope="module")
def receiving(mail_server: Server, clamav_server: Server, tmp_path_factory: pytest.TempPathFactory,
              ) -> Iterator[tuple[LiveServer, int]]:
    data: Path = tmp_path_factory.mktemp("mail-scan")
    port = free_port()
    settings = Settings(data_dir=data, processes="off", mail_smtp_receiver_port=port, mail_send_retry_seconds=0.5,
                        clamav_url=clamav_server.info()["url"], clamav_timeout=10,
                        mail_mailboxes={SCANNED: {"tenant": "acme", "password": "unused"}})
    with live_server(settings) as live:
        with live.client("admin", ("admin",)) as admin:
            definition = {**CLAIM_BY_MAIL, "mail": {**CLAIM_BY_MAIL["mail"], "address": SCANNED}}
            reply = admin.post("/api/definitions", json=definition)
            assert reply.status_code == 200, reply.text
            assert live.platform.runner.wait(reply.json()["position"], 10)
        yield live, port


def _documents(client: Any, case_id: str) -> dict[str, dict[str, Any]] | None:
    found = client.get(f"/api/cases/{case_id}/documents").json()
    return {d["filename"]: d for d in found} if len(found) == 2 else None


def test_an_infected_attachment_is_kept_quarantined_and_a_clean_one_is_visible(
    receiving: tuple[LiveServer, int],
) -> None:
    live, port = receiving
    marker = uuid.uuid4().hex[:12]
    message = EmailMessage()
    message["From"] = ALICE
    message["To"] = SCANNED
    message["Subject"] = f"Scan me {marker}"
    message["Message-ID"] = email.utils.make_msgid(domain=DOMAIN)
    message.set_content("One of these is the EICAR test file.")
    message.add_attachment(EICAR + b"\n", maintype="text", subtype="plain", filename="invoice.txt")
    message.add_attachment(b"an ordinary note\n", maintype="text", subtype="plain", filename="note.txt")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.send_message(message)
    with live.client("carol", ("caseworker",)) as worker:
        case = wait_for("the case", lambda: next(iter(worker.get("/api/cases", params={"q": marker}).json()["items"]),
                                                 None))
        documents = wait_for("both attachments filed", lambda: _documents(worker, case["id"]))
        infected, clean = documents["invoice.txt"], documents["note.txt"]
        [version] = infected["versions"]
        assert (version["status"], infected["available"]) == ("quarantined", False)
        assert "Casestream.Test.EICAR" in version["scan_reason"]
        refused = worker.get(f"/api/cases/{case['id']}/documents/{infected['id']}/download")
        assert refused.status_code == 409, refused.text
        assert clean["available"] is True
        assert worker.get(f"/api/cases/{case['id']}/documents/{clean['id']}/download").status_code == 200
        summaries = [e["summary"] for e in worker.get(f"/api/cases/{case['id']}/timeline").json()]
        assert any("quarantined version 1 of document “invoice.txt”" in s for s in summaries), summaries
