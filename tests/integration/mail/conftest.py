"""An embedded platform that reads the cases@ mailbox of the real Postfix + Dovecot (infra/mail.py) over IMAP and
sends through Postfix, served over real HTTP, with a definition whose mailbox that is."""

from __future__ import annotations

import email
import email.policy
import imaplib
import smtplib
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from casestream.settings import Settings
from infra.mail import DOMAIN, HOST, IMAP_PORT, MAILBOXES, SMTP_PORT
from infra.server import Server
from tests.http_server import LiveServer, live_server

CASES = f"cases@{DOMAIN}"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"

CLAIM_BY_MAIL: dict[str, Any] = {
    "key": "claim",
    "name": "Claim",
    "number_prefix": "CLM",
    "schema": {"type": "object", "properties": {"email": {"type": "string"}, "description": {"type": "string"}}},
    "stages": [{"key": "intake", "transitions": ["assessment"]}, {"key": "assessment"}],
    "mail": {
        "address": CASES,
        "title": "{{ message.subject }}",
        "mapping": {"email": "sender", "description": "text"},
        "templates": {
            "ack": {"subject": "We received: {{ message.subject }}",
                    "body": "Your claim {{ case.number }} is open. Reply to this message to add to it."},
            "answer": {"subject": "About {{ case.title }}", "body": "Dear {{ data.email }}, we are on it."},
        },
        "acknowledgement": "ack",
    },
}


def mark_all_seen(address: str) -> None:
    """Leave no unseen message from earlier runs in a mailbox (the poller reads unseen ones)."""
    with imaplib.IMAP4(HOST, IMAP_PORT, timeout=10) as imap:
        imap.login(address, MAILBOXES[address])
        imap.select("INBOX")
        if imap.search(None, "ALL")[1][0]:
            imap.store("1:*", "+FLAGS", "(\\Seen)")
        imap.logout()


def inbox(address: str) -> list[EmailMessage]:
    """Every message in a test mailbox (parsed)."""
    found: list[EmailMessage] = []
    with imaplib.IMAP4(HOST, IMAP_PORT, timeout=10) as imap:
        imap.login(address, MAILBOXES[address])
        imap.select("INBOX", readonly=True)
        for num in imap.search(None, "ALL")[1][0].split():
            parts = imap.fetch(num.decode(), "(BODY.PEEK[])")[1]
            raw = next(p[1] for p in parts if isinstance(p, tuple))
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
        imap.logout()
    return found


def unseen(address: str) -> bool:
    """Whether a mailbox holds a message nobody has read yet."""
    with imaplib.IMAP4(HOST, IMAP_PORT, timeout=10) as imap:
        imap.login(address, MAILBOXES[address])
        imap.select("INBOX", readonly=True)
        found = bool(imap.search(None, "UNSEEN")[1][0].split())
        imap.logout()
    return found


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    """probe() once it returns something truthy; fails naming what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.2)


def send(message: EmailMessage, port: int = SMTP_PORT) -> None:
    with smtplib.SMTP(HOST, port, timeout=30) as smtp:
        smtp.send_message(message)


@pytest.fixture(scope="module")
def mail_platform(mail_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    mark_all_seen(CASES)
    data: Path = tmp_path_factory.mktemp("mail")
    settings = Settings(data_dir=data, processes="off", mail_imap=True, mail_imap_poll_seconds=0.5,
                        mail_send_retry_seconds=0.5,
                        mail_mailboxes={CASES: {"tenant": "acme", "password": MAILBOXES[CASES]}})
    with live_server(settings) as live:
        with live.client("admin", ("admin",)) as admin:
            reply = admin.post("/api/definitions", json=CLAIM_BY_MAIL)
            assert reply.status_code == 200, reply.text
            live.platform.runner.wait(reply.json()["position"], 10)
        yield live


@pytest.fixture()
def worker(mail_platform: LiveServer) -> Iterator[httpx.Client]:
    with mail_platform.client("carol", ("caseworker",)) as client:
        yield client
