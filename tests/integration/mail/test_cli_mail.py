"""`casestream mail ...` as an operator runs it (a subprocess on a data folder): poll bob's mailbox of the real
Dovecot once, take in a raw file, list the quarantine, send the outbox through Postfix."""

from __future__ import annotations

import email.utils
import json
import os
import subprocess
import sys
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest

from casestream.bootstrap import bootstrap
from casestream.settings import Settings
from commands import messages as m
from commands.bus import Actor
from infra.mail import DOMAIN, MAILBOXES
from infra.server import Server
from tests.integration.mail.conftest import ALICE, BOB, CLAIM_BY_MAIL, inbox, mark_all_seen, send, wait_for


def _cli(data: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CASESTREAM_DATA_DIR": str(data), "CASESTREAM_PROCESSES": "off",
           "CASESTREAM_MAIL_MAILBOXES": json.dumps({BOB: {"tenant": "acme", "password": MAILBOXES[BOB]}})}
    return subprocess.run([sys.executable, "-m", "casestream", "mail", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=check)


@pytest.fixture(scope="module")
def data(mail_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mail-cli")
    platform = bootstrap(Settings(data_dir=folder, processes="off"), start_runner=False)
    try:
        definition = {**CLAIM_BY_MAIL, "mail": {**CLAIM_BY_MAIL["mail"], "address": BOB}}
        platform.bus.dispatch(m.PublishCaseDefinition.model_validate(definition), Actor("admin", "acme", ("admin",)))
    finally:
        platform.close()
    return folder


def test_poll_takes_in_the_unseen_mail_and_send_delivers_the_acknowledgement(data: Path) -> None:
    mark_all_seen(BOB)
    message = EmailMessage()
    message["From"] = ALICE
    message["To"] = BOB
    message["Subject"] = f"Polled {uuid.uuid4().hex[:8]}"
    message["Message-ID"] = email.utils.make_msgid(domain=DOMAIN)
    message.set_content("Read me once.")
    send(message)
    wait_for("delivery to bob", lambda: any(m["Message-ID"] == message["Message-ID"] for m in inbox(BOB)))
    polled = _cli(data, "poll")
    assert f"{BOB}: 1 message(s)" in polled.stdout and "received CLM-000001 (opened)" in polled.stdout
    assert "0 message(s)" in _cli(data, "poll").stdout  # marked seen: not taken twice
    sent = _cli(data, "send")
    assert "sent 1 message(s); 0 still waiting" in sent.stdout, sent.stdout + sent.stderr
    wait_for("the acknowledgement", lambda: any(m["In-Reply-To"] == message["Message-ID"] for m in inbox(ALICE)))


def test_ingest_a_file_and_list_the_quarantine(data: Path, tmp_path: Path) -> None:
    raw = tmp_path / "broken.eml"
    raw.write_bytes(b"Subject: no sender here\r\n\r\nhello")
    assert _cli(data, "ingest", str(raw), "--mailbox", BOB).stdout.strip() == "quarantined: no sender address (From)"
    listed = _cli(data, "quarantine", "--status", "quarantined").stdout
    assert "no sender here" in listed and "raw: acme/mail/sha256/" in listed


def test_a_bad_option_is_named(data: Path) -> None:
    refused = _cli(data, "poll", "--mailbox", "nobody@casestream.test", check=False)
    assert refused.returncode != 0 and "--mailbox" in refused.stderr
