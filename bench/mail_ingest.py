"""E-mail to case ingest rate: messages with a 1 MB attachment per second, end to end, from the SMTP hand-off to
Postfix until the attachment is a visible document of the case the message opened (Postfix -> Dovecot -> the IMAP
poller -> the ingester: raw kept, parsed, ReceiveEmail, the document commands -> the read model).

Baseline, same run, same messages: raw SMTP send to another mailbox of the same Postfix + Dovecot and an IMAP
fetch of every message (imaplib, no casestream). Rounds interleave the two so a busy neighbour hits both alike.

    python bench/mail_ingest.py --quick
"""

from __future__ import annotations

import argparse
import email.utils
import imaplib
import os
import smtplib
import statistics
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import banner, percentile, table
from casestream.bootstrap import bootstrap
from casestream.settings import Settings
from commands import messages as m
from commands.bus import Actor
from infra.mail import DOMAIN, HOST, IMAP_PORT, MAILBOXES, SMTP_PORT, MailServer
from projections.ports import Query

CASES, BOB, ALICE = f"cases@{DOMAIN}", f"bob@{DOMAIN}", f"alice@{DOMAIN}"
MIB = 1024 * 1024
DEFINITION = {
    "key": "claim", "name": "Claim", "number_prefix": "CLM", "schema": {"type": "object"},
    "stages": [{"key": "intake"}], "mail": {"address": CASES},  # no acknowledgement: the ingest path alone
}


def _messages(count: int, to: str, marker: str) -> list[EmailMessage]:
    made = []
    for n in range(count):
        message = EmailMessage()
        message["From"] = ALICE
        message["To"] = to
        message["Subject"] = f"bench {marker} {n}"
        message["Message-ID"] = email.utils.make_msgid(domain=DOMAIN)
        message.set_content("A claim with its invoice attached.")
        message.add_attachment(b"%PDF-1.4\n" + os.urandom(MIB), maintype="application", subtype="pdf",
                               filename=f"invoice-{marker}-{n}.pdf")
        made.append(message)
    return made


def _send(messages: list[EmailMessage]) -> dict[str, float]:
    """Hand every message to Postfix over one connection; when each was accepted."""
    sent = {}
    with smtplib.SMTP(HOST, SMTP_PORT, timeout=60) as smtp:
        for message in messages:
            smtp.send_message(message)
            sent[str(message["Subject"])] = time.perf_counter()
    return sent


def _seen_all(address: str) -> None:
    with imaplib.IMAP4(HOST, IMAP_PORT, timeout=30) as imap:
        imap.login(address, MAILBOXES[address])
        imap.select("INBOX")
        if imap.search(None, "ALL")[1][0]:
            imap.store("1:*", "+FLAGS", "(\\Seen)")
        imap.logout()


def baseline(count: int) -> tuple[float, float]:
    """Raw SMTP send + IMAP fetch of count messages: (messages/s, seconds)."""
    _seen_all(BOB)
    marker = uuid.uuid4().hex[:8]
    messages = _messages(count, BOB, marker)
    started = time.perf_counter()
    _send(messages)
    fetched: set[bytes] = set()
    with imaplib.IMAP4(HOST, IMAP_PORT, timeout=60) as imap:
        imap.login(BOB, MAILBOXES[BOB])
        imap.select("INBOX")
        deadline = time.monotonic() + 300
        while len(fetched) < count:
            for num in imap.search(None, "UNSEEN")[1][0].split():
                parts = imap.fetch(num.decode(), "(RFC822)")[1]  # marks it seen
                raw = next(p[1] for p in parts if isinstance(p, tuple))
                if marker.encode() in raw[:4096]:
                    fetched.add(num)
            if time.monotonic() > deadline:
                raise TimeoutError(f"baseline: {len(fetched)} of {count} fetched")
            time.sleep(0.02)
        imap.logout()
    seconds = time.perf_counter() - started
    return count / seconds, seconds


def ours(platform: object, count: int) -> tuple[float, float, list[float]]:
    """Send count messages to the cases mailbox; (messages/s, seconds, per-message latency) until every attachment
    is a visible document."""
    from casestream.bootstrap import EmbeddedPlatform

    assert isinstance(platform, EmbeddedPlatform)
    marker = uuid.uuid4().hex[:8]
    messages = _messages(count, CASES, marker)
    started = time.perf_counter()
    sent = _send(messages)
    visible: dict[str, float] = {}
    deadline = time.monotonic() + 600
    while len(visible) < count:
        for doc in platform.documents.find(Query("documents", "acme", {}, sort="created_at", limit=10_000)):
            name = doc["filename"]
            if marker in name and name not in visible:
                visible[name] = time.perf_counter()
        if time.monotonic() > deadline:
            raise TimeoutError(f"casestream: {len(visible)} of {count} documents visible")
        time.sleep(0.02)
    seconds = max(visible.values()) - started
    latencies = [visible[f"invoice-{marker}-{n}.pdf"] - sent[f"bench {marker} {n}"] for n in range(count)]
    return count / seconds, seconds, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 10 messages")
    parser.add_argument("--messages", type=int, default=None, help="messages per round (default 30)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3)")
    args = parser.parse_args()
    count = args.messages or (10 if args.quick else 30)
    rounds = args.rounds or (2 if args.quick else 3)
    server = MailServer()
    server.up()
    banner("e-mail to case ingest", f"{rounds} rounds x {count} messages with a 1 MiB attachment; Postfix SMTP "
                                    f"{SMTP_PORT}, Dovecot IMAP {IMAP_PORT}; embedded platform (SQLite, local storage)")
    _seen_all(CASES)
    with tempfile.TemporaryDirectory(prefix="casestream-bench-mail-") as folder:
        settings = Settings(data_dir=Path(folder), processes="off", policy_engine="embedded", mail_imap=True,
                            mail_outbox=False, mail_imap_poll_seconds=0.2,
                            mail_mailboxes={CASES: {"tenant": "acme", "password": MAILBOXES[CASES]}})
        platform = bootstrap(settings)
        try:
            published = platform.bus.dispatch(m.PublishCaseDefinition.model_validate(DEFINITION),
                                              Actor("admin", "acme", ("admin",)))
            platform.runner.wait(published.position, 10)
            ours(platform, 2)  # warm-up: imports, first IDLE, first folds
            base_rates, our_rates, latencies = [], [], []
            for _ in range(rounds):
                base_rates.append(baseline(count)[0])
                rate, _seconds, lat = ours(platform, count)
                our_rates.append(rate)
                latencies.extend(lat)
        finally:
            platform.close()
    base, mine = statistics.median(base_rates), statistics.median(our_rates)
    table(["path", "messages/s (median)", "MiB/s", "rounds"], [
        ["baseline: SMTP send + IMAP fetch (imaplib)", f"{base:.2f}", f"{base:.2f}",
         " ".join(f"{r:.2f}" for r in base_rates)],
        ["casestream: SMTP -> IMAP poller -> case + visible document", f"{mine:.2f}", f"{mine:.2f}",
         " ".join(f"{r:.2f}" for r in our_rates)],
    ])
    print(f"\nsend -> visible document: p50 {percentile(latencies, 50):.2f} s, p95 {percentile(latencies, 95):.2f} s, "
          f"max {max(latencies):.2f} s ({len(latencies)} messages)")
    print(f"RATIO casestream / baseline: {mine / base:.2f}x")


if __name__ == "__main__":
    main()
