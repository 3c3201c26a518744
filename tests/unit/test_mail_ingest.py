"""The ingester on an embedded platform (SQLite, local storage): what becomes of messages, MIME bombs quarantined,
and hypothesis-generated MIME never crashing it nor losing a message (its raw bytes kept and a record of it)."""

from __future__ import annotations

import email.utils
import hashlib
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.mail_ingest import Ingested, MailIngester
from adapters.mail_parse import MAX_MESSAGE_BYTES, MAX_TEXT
from casestream.bootstrap import EmbeddedPlatform, bootstrap
from casestream.settings import Settings
from commands import messages as m
from commands.bus import Actor
from commands.unit_of_work import UnitOfWork
from domain.message import Message, message_key, set_aside_key
from projections.ports import Query

MAILBOX = "claims@casestream.test"
ADMIN = Actor("admin", "acme", ("admin",))
DEFINITION = {
    "key": "claim", "name": "Claim", "number_prefix": "CLM",
    "schema": {"type": "object", "properties": {"email": {"type": "string"}}},
    "stages": [{"key": "intake"}],
    "mail": {"address": MAILBOX, "mapping": {"email": "sender"},
             "templates": {"ack": {"subject": "Received", "body": "{{ case.number }}"}}, "acknowledgement": "ack"},
}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPlatform]:
    data: Path = tmp_path_factory.mktemp("ingest")
    built = bootstrap(Settings(data_dir=data, processes="off", mail_outbox=False))
    result = built.bus.dispatch(m.PublishCaseDefinition.model_validate(DEFINITION), ADMIN)
    assert built.runner.wait(result.position, 10)
    yield built
    built.close()


@pytest.fixture(scope="module")
def ingester(platform: EmbeddedPlatform) -> MailIngester:
    assert platform.mail is not None
    return platform.mail.ingester


def _mail(subject: str = "Broken window", body: str = "Please come.", **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Dana <dana@example.org>"
    message["To"] = MAILBOX
    message["Subject"] = subject
    message["Message-ID"] = email.utils.make_msgid(domain="example.org")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def _kept(platform: EmbeddedPlatform, raw: bytes, outcome: Ingested) -> None:
    """The message is not lost: its raw bytes are in storage and an aggregate records what became of it."""
    assert platform.storage is not None
    sha = hashlib.sha256(raw).hexdigest()
    assert b"".join(platform.storage.get(f"acme/mail/sha256/{sha}")) == raw
    assert outcome.message is not None
    uow = UnitOfWork(platform.store, "acme")
    recorded = uow.find(Message, uuid.UUID(outcome.message))
    assert recorded is not None and recorded.status


def test_a_new_message_opens_a_case_and_queues_the_acknowledgement(platform: EmbeddedPlatform,
                                                                   ingester: MailIngester) -> None:
    raw = bytes(_mail())
    outcome = ingester.ingest(raw, MAILBOX, "acme")
    assert (outcome.status, outcome.opened) == ("received", True)
    assert outcome.number is not None and outcome.number.startswith("CLM-")
    _kept(platform, raw, outcome)
    assert platform.runner.wait(platform.store.max_position(), 10)
    messages = platform.documents.find(Query("messages", "acme", {"case_id": outcome.case_id}))
    assert sorted((d["direction"], d["status"]) for d in messages) == [("in", "received"), ("out", "queued")]


def test_the_same_message_id_twice_is_ignored(ingester: MailIngester) -> None:
    raw = bytes(_mail())
    first = ingester.ingest(raw, MAILBOX, "acme")
    again = ingester.ingest(raw, MAILBOX, "acme")
    assert (again.status, again.case_id) == ("duplicate", first.case_id)


def test_a_case_token_in_the_subject_threads_a_message_without_headers(platform: EmbeddedPlatform,
                                                                        ingester: MailIngester) -> None:
    first = ingester.ingest(bytes(_mail()), MAILBOX, "acme")
    assert platform.runner.wait(platform.store.max_position(), 10)  # the token is looked up in the cases read model
    follow = ingester.ingest(bytes(_mail(subject=f"More photos [{first.number}]")), MAILBOX, "acme")
    assert (follow.status, follow.case_id, follow.opened) == ("received", first.case_id, False)


@pytest.mark.parametrize("headers", [
    {"Auto_Submitted": "auto-replied"}, {"Auto_Submitted": "auto-generated; owner-email=x@y.z"},
    {"X_Autoreply": "yes"}, {"Precedence": "bulk"}, {"Precedence": "auto_reply"}, {"X_Auto_Response_Suppress": "All"},
])
def test_auto_replies_are_set_aside(ingester: MailIngester, headers: dict[str, str]) -> None:
    outcome = ingester.ingest(bytes(_mail(**headers)), MAILBOX, "acme")
    assert (outcome.status, outcome.case_id) == ("ignored", None)


def test_auto_submitted_no_is_a_person(ingester: MailIngester) -> None:
    assert ingester.ingest(bytes(_mail(Auto_Submitted="no")), MAILBOX, "acme").status == "received"


def test_a_delivery_status_report_is_a_bounce(ingester: MailIngester) -> None:
    report = (b"From: someone@example.org\r\nTo: " + MAILBOX.encode() + b"\r\nSubject: Delivery Status\r\n"
              b"Content-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n"
              b"--r\r\nContent-Type: text/plain\r\n\r\ncould not deliver\r\n"
              b"--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n"
              b"--r--\r\n")
    outcome = ingester.ingest(report, MAILBOX, "acme")  # not from the daemon: the report type alone tells
    assert (outcome.status, outcome.reason) == ("ignored", "a delivery-status report (multipart/report)")


def test_a_sender_repeating_itself_is_stopped_after_fifteen(ingester: MailIngester) -> None:
    outcomes = [ingester.ingest(bytes(_mail(subject=f"Re: ticket {n}")), MAILBOX, "acme").status for n in range(17)]
    assert outcomes[:15] == ["received"] * 15
    assert outcomes[15:] == ["ignored", "ignored"]


def test_html_is_sanitised_and_a_long_text_truncated_with_a_note(platform: EmbeddedPlatform,
                                                                 ingester: MailIngester) -> None:
    message = _mail(subject="Long one", body="x" * (MAX_TEXT + 500))
    message.add_alternative('<p onclick="steal()">Hi<script>alert(1)</script><img src="http://t/x.gif"></p>',
                            subtype="html")
    outcome = ingester.ingest(bytes(message), MAILBOX, "acme")
    assert platform.runner.wait(platform.store.max_position(), 10)
    doc = platform.documents.get("messages", str(outcome.message))
    assert doc is not None and doc[0] is not None
    received = doc[0]
    assert received["html"].strip() == "<p>Hi</p>"
    assert received["truncated"] and "truncated" in received["text"][MAX_TEXT:]


@pytest.mark.parametrize(("bomb", "reason"), [
    (b"From: a@b.c\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
     + b"".join(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1) for i in range(3000)),
     "multipart containers"),
    (b"From: a@b.c\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
     + b"--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n" * 20_000 + b"--x--\r\n", "MIME parts"),
    (b"From: a@b.c\r\nX-Big: " + b"a" * 400_000 + b"\r\n\r\nbody", "header block"),
    (b"From: a@b.c\r\n\r\n" + b"a" * (MAX_MESSAGE_BYTES + 1), "bytes"),
])
def test_mime_bombs_are_quarantined_with_their_reason(platform: EmbeddedPlatform, ingester: MailIngester,
                                                      bomb: bytes, reason: str) -> None:
    outcome = ingester.ingest(bomb, MAILBOX, "acme")
    assert outcome.status == "quarantined" and reason in outcome.reason
    _kept(platform, bomb, outcome)


def test_a_mailbox_no_definition_reads_is_quarantined(ingester: MailIngester) -> None:
    outcome = ingester.ingest(bytes(_mail()), "nobody@casestream.test", "acme")
    assert (outcome.status, outcome.reason) == ("quarantined", "no case definition reads nobody@casestream.test")


def test_a_duplicate_of_a_quarantined_message_is_one_record(platform: EmbeddedPlatform, ingester: MailIngester) -> None:
    raw = b"not a message"
    assert ingester.ingest(raw, MAILBOX, "acme").status == "quarantined"
    assert ingester.ingest(raw, MAILBOX, "acme").status == "duplicate"
    key = set_aside_key("acme", MAILBOX, hashlib.sha256(raw).hexdigest())
    assert len(platform.store.events_of(key)) == 1


# -- generated MIME -------------------------------------------------------------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
_HEADER_NAMES = st.sampled_from(["Subject", "From", "To", "Cc", "Message-ID", "In-Reply-To", "References",
                                 "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Auto-Submitted",
                                 "Precedence", "X-Weird", "Date", "MIME-Version"])
_TYPES = st.sampled_from(["text/plain", "text/html", "application/pdf", "image/png", "message/rfc822",
                          "application/octet-stream", "text/plain; charset=bogus-8", "text/html; charset=utf-7",
                          "multipart/mixed", "multipart/alternative; boundary=\"\"", "garbage"])
_ENCODINGS = st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "binary", "nonsense"])


@st.composite
def _part(draw: st.DrawFn, depth: int = 0) -> bytes:
    """One MIME entity as bytes: headers drawn from the usual (and unusual) ones, a body, sometimes nested parts."""
    headers = [(b"Content-Type", draw(_TYPES).encode()),
               (b"Content-Transfer-Encoding", draw(_ENCODINGS).encode())]
    for _ in range(draw(st.integers(0, 4))):
        value = draw(_TEXT.map(lambda t: t.encode("utf-8")) | st.binary(max_size=40))  # also bytes that are no UTF-8
        headers.append((draw(_HEADER_NAMES).encode(), value.replace(b"\r", b"").replace(b"\n", b" ")))
    if depth < 4 and draw(st.booleans()):
        boundary = draw(st.sampled_from([b"b1", b"b2", b"==x==", b""]))
        headers[0] = (b"Content-Type", b'multipart/mixed; boundary="' + boundary + b'"')
        children = draw(st.lists(_part(depth + 1), max_size=4))
        body = b"".join(b"--" + boundary + b"\r\n" + child + b"\r\n" for child in children)
        if draw(st.booleans()):
            body += b"--" + boundary + b"--\r\n"
    else:
        body = draw(st.binary(max_size=300) | _TEXT.map(lambda t: t.encode("utf-8")))
    head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return head + b"\r\n" + body


@st.composite
def _message(draw: st.DrawFn) -> bytes:
    local = (st.text("abcxyz.+-_%\u00e9", min_size=1, max_size=40).map(lambda t: t.encode("utf-8"))
             | st.integers(200, 320).map(lambda n: b"a" * n))  # longer than any address a command takes
    sender = draw(st.sampled_from([b"From: Gen <gen@example.org>\r\n", b"From: \r\n", b"", b"From: <<>>\r\n",
                                   b"From: MAILER-DAEMON@example.org\r\n"])
                  | local.map(lambda name: b"From: " + name + b"@example.org\r\n"))
    top = sender + b"To: " + MAILBOX.encode() + b"\r\n"
    if draw(st.booleans()):
        top += b"Message-ID: <" + draw(st.sampled_from([b"fixed@gen", b"a b c", b"", b"x" * 950])) + b">\r\n"
    raw = top + draw(_part())
    if draw(st.booleans()):  # damage it: cut it short or flip bytes
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] + draw(st.binary(max_size=20))
    return raw


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(raw=_message() | st.binary(max_size=2000))
def test_generated_mime_never_crashes_the_ingester_nor_loses_a_message(
    platform: EmbeddedPlatform, ingester: MailIngester, raw: bytes,
) -> None:
    outcome = ingester.ingest(raw, MAILBOX, "acme")
    assert outcome.status in {"received", "duplicate", "quarantined", "ignored"}
    assert platform.storage is not None
    sha = hashlib.sha256(raw).hexdigest()
    assert b"".join(platform.storage.get(f"acme/mail/sha256/{sha}")) == raw
    if outcome.status == "duplicate":  # recorded before: as a received message, or set aside
        assert outcome.message is not None or UnitOfWork(platform.store, "acme").find(
            Message, set_aside_key("acme", MAILBOX, sha)) is not None
    else:
        _kept(platform, raw, outcome)


def test_message_keys_ignore_angle_brackets_and_spaces() -> None:
    assert message_key("acme", " <a@b> ") == message_key("acme", "a@b")
    assert message_key("acme", "a@b") != message_key("globex", "a@b")


def test_concurrent_deliveries_each_open_a_case_with_its_own_number(ingester: MailIngester) -> None:
    from concurrent.futures import ThreadPoolExecutor

    raws = [bytes(_mail(subject=f"Parallel {n} {uuid.uuid4().hex}")) for n in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda raw: ingester.ingest(raw, MAILBOX, "acme"), raws))
    assert [o.status for o in outcomes] == ["received"] * 8
    assert len({o.number for o in outcomes}) == 8
