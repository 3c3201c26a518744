"""The private Postfix + Dovecot pair: SMTP in, LMTP hand-off, IMAP out, loopback only."""

from __future__ import annotations

import imaplib
import smtplib
import subprocess
import uuid

import pytest

from infra.mail import DOMAIN, IMAP_PORT, MAILBOXES, SMTP_PORT, MailServer
from infra.server import Server


def _mail(server: Server) -> MailServer:
    assert isinstance(server, MailServer)
    return server


def test_smtp_delivery_reaches_imap_mailbox(mail_server: Server) -> None:
    mail = _mail(mail_server)
    to = f"alice@{DOMAIN}"
    subject = f"Case opened {uuid.uuid4().hex[:8]}"
    body = "Case 42 was opened.\nPlease review the intake form.\n"
    msg_id = mail.deliver(to, subject, body, headers={"X-Casestream-Case": "42"})

    got = mail.wait_for_message(to, MAILBOXES[to], msg_id)

    assert got["Subject"] == subject
    assert got["X-Casestream-Case"] == "42"
    assert got.get_content().replace("\r\n", "\n") == body
    # the other mailbox stays untouched: delivery went to the addressed user only
    other = f"cases@{DOMAIN}"
    assert all(m["Message-ID"] != msg_id for m in mail.read_mailbox(other, MAILBOXES[other]))


def test_unknown_recipient_and_relay_are_refused(mail_server: Server) -> None:
    _mail(mail_server)
    with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=10) as smtp:
        smtp.ehlo("test.casestream.test")
        smtp.mail(f"noreply@{DOMAIN}")
        code_unknown, _ = smtp.rcpt(f"nobody@{DOMAIN}")
        code_outside, _ = smtp.rcpt("someone@example.org")
    assert code_unknown >= 500
    assert code_outside >= 500


def test_imap_rejects_a_wrong_password(mail_server: Server) -> None:
    _mail(mail_server)
    with imaplib.IMAP4("127.0.0.1", IMAP_PORT, timeout=10) as imap, pytest.raises(imaplib.IMAP4.error):
        imap.login(f"alice@{DOMAIN}", "not-the-password")


def test_mail_listens_only_on_loopback(mail_server: Server) -> None:
    mail = _mail(mail_server)
    pids = mail.pids()
    assert pids["dovecot"] is not None and pids["postfix"] is not None
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    # every listener of Dovecot's or Postfix master's process (children inherit the sockets)
    marks = (f"pid={pids['dovecot']},", f"pid={pids['postfix']},")
    ours = [line for line in out.splitlines() if any(mark in line for mark in marks)]
    locals_ = {line.split()[3] for line in ours}
    assert f"127.0.0.1:{IMAP_PORT}" in locals_
    assert f"127.0.0.1:{SMTP_PORT}" in locals_
    assert all(addr.startswith("127.0.0.1:") for addr in locals_), locals_
