"""E-mail to case end to end against the real Postfix + Dovecot: a message with two attachments opens a case with
both documents, the reply to its acknowledgement joins the same case, and the case's reply reaches the sender
threaded under their message."""

from __future__ import annotations

import email.utils
import uuid
from email.message import EmailMessage
from typing import Any

import httpx

from infra.mail import DOMAIN
from tests.http_server import LiveServer
from tests.integration.mail.conftest import ALICE, CASES, inbox, send, unseen, wait_for

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20


def _claim_mail(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Alice Smit <{ALICE}>"
    message["To"] = CASES
    message["Subject"] = subject
    message["Message-ID"] = email.utils.make_msgid(domain=DOMAIN)
    message.set_content("The storm took the roof off the shed.\nPhotos and the invoice are attached.")
    message.add_alternative("<p>The storm took the <b>roof</b> off the shed.<script>alert(1)</script></p>",
                            subtype="html")
    message.add_attachment(PDF, maintype="application", subtype="octet-stream", filename="invoice.pdf")
    message.add_attachment(PNG, maintype="image", subtype="png", filename="shed.png")
    return message


def _case_titled(client: httpx.Client, marker: str) -> dict[str, Any] | None:
    items = client.get("/api/cases", params={"q": marker}).json()["items"]
    return items[0] if len(items) == 1 else None


def _messages(client: httpx.Client, case_id: str) -> list[dict[str, Any]]:
    reply = client.get(f"/api/cases/{case_id}/messages")
    assert reply.status_code == 200, reply.text
    messages: list[dict[str, Any]] = reply.json()
    return messages


def _in_inbox(address: str, in_reply_to: str) -> EmailMessage | None:
    return next((m for m in inbox(address) if m["In-Reply-To"] == in_reply_to), None)


def test_mail_opens_a_case_with_its_attachments_and_the_thread_continues(
    mail_platform: LiveServer, worker: httpx.Client,
) -> None:
    marker = uuid.uuid4().hex[:12]
    first = _claim_mail(f"Storm damage {marker}")
    send(first)

    # a case opens with the sender, subject and text mapped, and both attachments as documents
    case = wait_for("the case opened by the mail", lambda: _case_titled(worker, marker))
    assert case["title"] == f"Storm damage {marker}"
    assert case["data"]["email"] == ALICE
    assert "roof off the shed" in case["data"]["description"]
    documents = wait_for("both documents", lambda: (
        docs if len(docs := worker.get(f"/api/cases/{case['id']}/documents").json()) == 2 else None))
    by_name = {d["filename"]: d for d in documents}
    assert set(by_name) == {"invoice.pdf", "shed.png"}
    assert by_name["invoice.pdf"]["content_type"] == "application/pdf"  # declared octet-stream, the bytes are a PDF
    link = worker.get(f"/api/cases/{case['id']}/documents/{by_name['shed.png']['id']}/download").json()
    assert httpx.get(link["url"]).content == PNG

    received = next(m for m in _messages(worker, case["id"]) if m["direction"] == "in")
    detail = worker.get(f"/api/cases/{case['id']}/messages/{received['id']}").json()
    assert detail["message_id"] == first["Message-ID"]
    assert detail["threaded_by"] == "new"
    assert "<script" not in detail["html"] and "<b>roof</b>" in detail["html"]
    assert {a["filename"]: a["document_id"] for a in detail["attachments"]} == {
        "invoice.pdf": by_name["invoice.pdf"]["id"], "shed.png": by_name["shed.png"]["id"]}

    # the acknowledgement reaches the sender, threaded under the first mail and carrying the case token
    ack = wait_for("the acknowledgement in alice's inbox", lambda: _in_inbox(ALICE, first["Message-ID"]))
    assert f"[{case['number']}]" in ack["Subject"]
    assert ack["Auto-Submitted"] == "auto-replied"

    # alice replies to the acknowledgement: the same case, threaded by In-Reply-To, no new case
    answer = EmailMessage()
    answer["From"] = ALICE
    answer["To"] = CASES
    answer["Subject"] = f"Re: {ack['Subject']}"
    answer["Message-ID"] = email.utils.make_msgid(domain=DOMAIN)
    answer["In-Reply-To"] = ack["Message-ID"]
    answer["References"] = f"{first['Message-ID']} {ack['Message-ID']}"
    answer.set_content("One more photo follows tomorrow.")
    send(answer)
    threaded = wait_for("the reply on the case", lambda: next(
        (m for m in _messages(worker, case["id"]) if m["message_id"] == answer["Message-ID"]), None))
    assert threaded["threaded_by"] == "in-reply-to"
    assert len(worker.get("/api/cases", params={"q": marker}).json()["items"]) == 1

    # the case worker replies to alice's answer: it arrives with the right In-Reply-To and References
    reply = worker.post(f"/api/cases/{case['id']}/messages/{threaded['id']}/reply", json={"template": "answer"})
    assert reply.status_code == 201, reply.text
    arrived = wait_for("the case's reply in alice's inbox", lambda: _in_inbox(ALICE, answer["Message-ID"]))
    assert arrived["Message-ID"] == reply.json()["message_id"]
    assert answer["Message-ID"] in arrived["References"] and first["Message-ID"] in arrived["References"]
    assert arrived["Subject"] == f"[{case['number']}] About Storm damage {marker}"
    assert "Dear alice@casestream.test, we are on it." in arrived.get_content()
    assert arrived["Auto-Submitted"] is None  # a person's reply

    # the timeline tells it all, and the outbox recorded the sends
    summaries = [e["summary"] for e in worker.get(f"/api/cases/{case['id']}/timeline").json()]
    assert any(s.startswith("received e-mail") and "2 attachment(s)" in s for s in summaries)
    wait_for("two sends on the timeline", lambda: sum(e["summary"].startswith("sent e-mail") for e in worker.get(
        f"/api/cases/{case['id']}/timeline").json()) == 2)


def test_the_same_message_twice_is_one_message(mail_platform: LiveServer, worker: httpx.Client) -> None:
    marker = uuid.uuid4().hex[:12]
    message = _claim_mail(f"Twice {marker}")
    send(message)
    case = wait_for("the case", lambda: _case_titled(worker, marker))
    send(message)  # Postfix delivers it again: a second copy in the mailbox
    wait_for("both copies read", lambda: sum(m["Message-ID"] == message["Message-ID"] for m in inbox(CASES)) == 2
             and not unseen(CASES))
    assert sum(m["message_id"] == message["Message-ID"] for m in _messages(worker, case["id"])) == 1
    assert len(worker.get(f"/api/cases/{case['id']}/documents").json()) == 2
    assert len(worker.get("/api/cases", params={"q": marker}).json()["items"]) == 1


def test_auto_replies_and_bounces_open_no_case_and_are_listed_for_admins(
    mail_platform: LiveServer, worker: httpx.Client,
) -> None:
    marker = uuid.uuid4().hex[:12]
    auto = EmailMessage()
    auto["From"] = ALICE
    auto["To"] = CASES
    auto["Subject"] = f"Out of office {marker}"
    auto["Auto-Submitted"] = "auto-replied"
    auto.set_content("I am away.")
    send(auto)
    bounce = EmailMessage()
    bounce["From"] = f"MAILER-DAEMON@{DOMAIN}"
    bounce["To"] = CASES
    bounce["Subject"] = f"Undelivered Mail Returned to Sender {marker}"
    bounce.set_content("This is the mail system.")
    send(bounce)
    with mail_platform.client("admin", ("admin",)) as admin:
        listed = wait_for("both set aside", lambda: (
            found if len(found := [i for i in admin.get("/api/mail/quarantine", params={"status": "ignored"}).json()[
                "items"] if marker in i["subject"]]) == 2 else None))
        assert {i["kind"] for i in listed} == {"auto-reply", "bounce"}
        assert worker.get("/api/mail/quarantine").status_code == 403
    assert worker.get("/api/cases", params={"q": marker}).json()["items"] == []
