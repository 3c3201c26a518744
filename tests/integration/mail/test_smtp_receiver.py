"""Direct delivery through the SMTP receiver (aiosmtpd): a message to a configured mailbox opens a case, another
recipient is refused at RCPT, and the acknowledgement goes out through the real Postfix to the sender."""

from __future__ import annotations

import email.utils
import smtplib
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from casestream.settings import Settings
from infra.mail import DOMAIN
from infra.server import Server
from tests.http_server import LiveServer, free_port, live_server
from tests.integration.mail.conftest import ALICE, CLAIM_BY_MAIL, inbox, wait_for

DIRECT = f"direct@{DOMAIN}"  # no IMAP box of its own: only the receiver takes mail for it


@pytest.fixture(scope="module")
def receiving(mail_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, int]]:
    data: Path = tmp_path_factory.mktemp("smtp-in")
    port = free_port()
    settings = Settings(data_dir=data, processes="off", mail_smtp_receiver_port=port, mail_send_retry_seconds=0.5,
                        mail_mailboxes={DIRECT: {"tenant": "acme", "password": "unused"}})
    with live_server(settings) as live:
        with live.client("admin", ("admin",)) as admin:
            definition = {**CLAIM_BY_MAIL, "mail": {**CLAIM_BY_MAIL["mail"], "address": DIRECT}}
            reply = admin.post("/api/definitions", json=definition)
            assert reply.status_code == 200, reply.text
            assert live.platform.runner.wait(reply.json()["position"], 10)
        yield live, port


def test_direct_delivery_opens_a_case_and_the_acknowledgement_goes_out(receiving: tuple[LiveServer, int]) -> None:
    live, port = receiving
    marker = uuid.uuid4().hex[:12]
    message = EmailMessage()
    message["From"] = ALICE
    message["To"] = DIRECT
    message["Subject"] = f"Direct {marker}"
    message["Message-ID"] = email.utils.make_msgid(domain=DOMAIN)
    message.set_content("Delivered straight to casestream.")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.send_message(message)
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail(ALICE, [f"someone-else@{DOMAIN}"], b"Subject: x\r\n\r\nx")
    with live.client("carol", ("caseworker",)) as worker:
        case = wait_for("the case", lambda: next(iter(worker.get("/api/cases", params={"q": marker}).json()["items"]),
                                                 None))
    assert case["data"]["email"] == ALICE
    ack = wait_for("the acknowledgement", lambda: next(
        (m for m in inbox(ALICE) if m["In-Reply-To"] == message["Message-ID"]), None))
    assert f"[{case['number']}]" in ack["Subject"] and ack["From"] == DIRECT
