"""The `messages` read model (the e-mails of each case, in and out) and `mail_aside` (what became no case).

A message document carries its texts (plain and sanitised HTML), its thread headers and its outbox state; the
set-aside list is what admins look at: quarantined (malformed, over a limit, unmappable) and ignored (auto-replies,
bounces, loops) messages with their reasons and the storage key of their raw bytes.
"""

from __future__ import annotations

from typing import Any

from domain import message as msg
from domain.events import Event
from projections.base import Doc, Fold, Projection
from projections.texts import iso_text


def _base(e: Any, direction: str, status: str) -> Doc:
    at = iso_text(e.occurred_at)
    return {
        "id": str(e.aggregate_id), "tenant": e.tenant, "case_id": e.case_id, "direction": direction,
        "status": status, "mailbox": e.mailbox, "message_id": e.message_id, "to": e.to, "cc": e.cc,
        "subject": e.subject, "text": e.text, "in_reply_to": e.in_reply_to, "references": e.references,
        "at": at, "updated_at": at, "actor": e.actor, "version": e.version,
    }


def received(_doc: Doc | None, e: msg.EmailReceived) -> Doc:
    return _base(e, msg.INBOUND, msg.RECEIVED) | {
        "sender": e.sender, "sender_name": e.sender_name, "html": e.html, "truncated": e.truncated,
        "threaded_by": e.threaded_by, "attachments": e.attachments, "raw_key": e.raw_key, "size": e.size,
    }


def composed(_doc: Doc | None, e: msg.EmailComposed) -> Doc:
    return _base(e, msg.OUTBOUND, msg.QUEUED) | {
        "sender": e.mailbox, "sender_name": "", "html": "", "truncated": False, "threaded_by": "",
        "attachments": [], "template": e.template, "purpose": e.purpose, "attempts": 0, "error": None,
    }


def _outbox(status_of: Any) -> Fold:
    def fold(doc: Doc | None, e: Event) -> Doc | None:
        if doc is None:
            return None
        new = dict(doc)
        status_of(new, e)
        new["version"] = e.version
        new["updated_at"] = iso_text(e.occurred_at)
        return new

    return fold


def _sent(doc: Doc, _e: msg.EmailSent) -> None:
    doc["status"] = msg.SENT
    doc["error"] = None


def _failed(doc: Doc, e: msg.EmailSendFailed) -> None:
    doc["attempts"] = e.attempt
    doc["error"] = e.reason
    if e.final:
        doc["status"] = msg.FAILED


MESSAGES = Projection(
    collection="messages",
    folds={msg.EmailReceived: received, msg.EmailComposed: composed, msg.EmailSent: _outbox(_sent),
           msg.EmailSendFailed: _outbox(_failed)},
    indexes=("case_id",),
    order="at",
)


def set_aside(_doc: Doc | None, e: msg.EmailSetAside) -> Doc:
    at = iso_text(e.occurred_at)
    return {
        "id": str(e.aggregate_id), "tenant": e.tenant, "mailbox": e.mailbox, "status": e.status, "kind": e.kind,
        "reason": e.reason, "raw_key": e.raw_key, "size": e.size, "sha256": e.sha256, "message_id": e.message_id,
        "sender": e.sender, "subject": e.subject, "at": at, "updated_at": at,
    }


MAIL_ASIDE = Projection(collection="mail_aside", folds={msg.EmailSetAside: set_aside}, indexes=("status",),
                        order="at")
