"""Handlers of the e-mail commands: the same shape as the others (load, domain calls; the bus saves).

A received message is threaded on the write side: `In-Reply-To` first, then `References` (newest first), each a
Message aggregate found by its id; then the case the subject's token names (resolved by the ingester, checked here
against the mailbox's definition); else it opens a case of the mailbox's definition, through the OpenCase handler,
and queues the definition's acknowledgement, in the same append.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from commands import mail_messages as mm
from commands import messages as m
from commands.handlers import Outcome, handles, open_case
from commands.unit_of_work import UnitOfWork
from domain.case import Case
from domain.definition import CaseDefinition, DefinitionSpec, definition_id
from domain.errors import CaseNotOpen, FieldError, NotFound, ValidationFailed
from domain.events import Context
from domain.mail_config import mapped_data, render
from domain.message import RECEIVED, Message, message_key, normalise_message_id, set_aside_key

MAX_REFERENCES = 20
MAX_TITLE = 200


def canonical(message_id: str) -> str:
    """A Message-ID as stored and sent: in angle brackets."""
    return f"<{normalise_message_id(message_id)}>"


def _message(uow: UnitOfWork, key: UUID) -> Message | None:
    try:
        return uow.find(Message, key)
    except TypeError:  # the id names another kind of aggregate
        return None


def _case(uow: UnitOfWork, case_id: UUID | str) -> Case | None:
    try:
        case = uow.find(Case, UUID(str(case_id)))
    except (TypeError, ValueError):
        return None
    return case if case is not None and case.number else None


def _definition(uow: UnitOfWork, key: str) -> CaseDefinition:
    return uow.get(CaseDefinition, definition_id(uow.tenant, key), f"case definition {key!r}")


def _thread(cmd: mm.ReceiveEmail, uow: UnitOfWork) -> tuple[Case | None, str]:
    """The case the message answers and how it was found, or (None, "new")."""
    candidates = [(cmd.in_reply_to, "in-reply-to")] + [(ref, "references") for ref in reversed(cmd.references)]
    for ref, how in candidates:
        if not normalise_message_id(ref):
            continue
        earlier = _message(uow, message_key(uow.tenant, ref))
        if earlier is not None and earlier.case_id:
            case = _case(uow, earlier.case_id)
            if case is not None:
                return case, how
    if cmd.token_case_id is not None:
        case = _case(uow, cmd.token_case_id)
        if case is not None and case.definition_key == cmd.definition_key:
            return case, "subject"
    return None, "new"


def _facts(cmd: mm.ReceiveEmail, ctx: Context) -> dict[str, Any]:
    """The message facts a definition's mapping and templates read."""
    return {
        "sender": cmd.sender, "sender_name": cmd.sender_name, "subject": cmd.subject, "text": cmd.text,
        "to": list(cmd.to), "received_at": ctx.now.isoformat(), "message_id": canonical(cmd.message_id),
        "mailbox": cmd.mailbox.lower(),
    }


@handles(mm.ReceiveEmail)
def receive_email(cmd: mm.ReceiveEmail, ctx: Context, uow: UnitOfWork) -> Outcome:
    key = message_key(ctx.tenant, cmd.message_id)
    message = _message(uow, key) or uow.add(Message(key))
    spec = _definition(uow, cmd.definition_key).latest
    if spec.mail.address != cmd.mailbox.lower():
        raise ValidationFailed("the mailbox does not belong to the definition", [
            FieldError("mailbox", f"{cmd.definition_key!r} reads {spec.mail.address or 'no mailbox'}")])
    message.require_new()  # a second arrival is refused before it could open a case
    case, threaded_by = _thread(cmd, uow)
    facts = _facts(cmd, ctx)
    opened = case is None
    if case is None:
        title = " ".join(render(spec.mail.title, {"message": facts}).split())[:MAX_TITLE] or "(no subject)"
        command = m.OpenCase(definition_key=cmd.definition_key, title=title,
                             data=mapped_data(spec.mail.mapping, facts))
        case = uow.get(Case, open_case(command, ctx, uow).aggregate_id, "the opened case")
    message.receive(
        ctx, case_id=str(case.id), mailbox=cmd.mailbox.lower(), message_id=canonical(cmd.message_id),
        sender=cmd.sender, sender_name=cmd.sender_name, to=list(cmd.to), cc=list(cmd.cc), subject=cmd.subject,
        text=cmd.text, html=cmd.html, truncated=cmd.truncated,
        in_reply_to=canonical(cmd.in_reply_to) if normalise_message_id(cmd.in_reply_to) else "",
        references=[canonical(r) for r in cmd.references][-MAX_REFERENCES:], threaded_by=threaded_by,
        attachments=list(cmd.attachments), raw_key=cmd.raw_key, size=cmd.size,
    )
    extra: dict[str, Any] = {"case_id": str(case.id), "number": case.number, "opened": opened,
                             "threaded_by": threaded_by}
    if opened and spec.mail.acknowledgement:
        ack = _compose(ctx, uow, case, spec, template=spec.mail.acknowledgement, subject=None, body=None,
                       to=[cmd.sender], cc=[], reply_to=message, purpose="acknowledgement")
        extra["acknowledgement"] = str(ack.id)
    return Outcome(message.id, extra)


def _compose(
    ctx: Context, uow: UnitOfWork, case: Case, spec: DefinitionSpec, *, template: str | None, subject: str | None,
    body: str | None, to: list[str], cc: list[str], reply_to: Message | None, purpose: str,
) -> Message:
    """Record a composed message of the case: the template (or the given text) filled from the case."""
    mail = spec.mail
    if not mail.address:
        raise ValidationFailed("the case's definition has no mailbox to send from",
                               [FieldError("mail.address", f"definition {spec.key!r} sets none")])
    chosen = None
    if template is not None:
        chosen = mail.templates.get(template)
        if chosen is None:
            raise ValidationFailed("no such template", [FieldError("template", f"{spec.key!r} has no template "
                                                                               f"{template!r}")])
    values = {
        "case": {"id": str(case.id), "number": case.number, "title": case.title, "stage": case.stage},
        "data": case.data,
        "message": {"subject": reply_to.subject, "sender": reply_to.sender} if reply_to is not None else {},
    }
    if subject is None:
        subject = render(chosen.subject, values) if chosen else (f"Re: {reply_to.subject}" if reply_to else "")
    if body is None:
        body = render(chosen.body, values) if chosen else ""
    errors = []
    if not subject.strip():
        errors.append(FieldError("subject", "required without a template (or a message to reply to)"))
    if not body.strip():
        errors.append(FieldError("body", "required without a template"))
    recipients = to or ([reply_to.sender] if reply_to is not None and reply_to.sender else [])
    if not recipients:
        errors.append(FieldError("to", "required when the e-mail replies to no received message"))
    if errors:
        raise ValidationFailed("the e-mail cannot be composed", errors)
    token = f"[{case.number}]"
    subject = " ".join(subject.split())
    if token not in subject:  # the token threads replies whose mail client dropped In-Reply-To
        subject = f"{token} {subject}"
    domain = mail.address.rsplit("@", 1)[1]
    rfc_id = f"<{uuid.uuid4()}@{domain}>"
    message = uow.add(Message(message_key(ctx.tenant, rfc_id)))
    references = [*reply_to.references, reply_to.message_id][-MAX_REFERENCES:] if reply_to is not None else []
    message.compose(
        ctx, case_id=str(case.id), mailbox=mail.address, message_id=rfc_id, to=recipients, cc=list(cc),
        subject=subject[:998], text=body, in_reply_to=reply_to.message_id if reply_to is not None else "",
        references=references, template=template or "", purpose=purpose,
    )
    return message


@handles(mm.ComposeEmail)
def compose_email(cmd: mm.ComposeEmail, ctx: Context, uow: UnitOfWork) -> Outcome:
    case = uow.get(Case, cmd.case_id, f"case {cmd.case_id}", cmd.expected_version)
    if case.status != "open":
        raise CaseNotOpen(f"case {case.number} is {case.status}")
    spec = _definition(uow, case.definition_key).latest
    reply_to = None
    if cmd.reply_to is not None:
        reply_to = _message(uow, cmd.reply_to)
        if reply_to is None or reply_to.case_id != str(case.id) or reply_to.status != RECEIVED:
            raise NotFound(f"no received message {cmd.reply_to} on case {case.number}")
    message = _compose(ctx, uow, case, spec, template=cmd.template, subject=cmd.subject, body=cmd.body,
                       to=list(cmd.to), cc=list(cmd.cc), reply_to=reply_to, purpose=cmd.purpose)
    return Outcome(message.id, {"message_id": message.message_id, "case_id": str(case.id)})


def _outbox_message(uow: UnitOfWork, key: UUID) -> Message:
    found = _message(uow, key)
    if found is None or not found.status:
        raise NotFound(f"message {key} not found")
    return found


@handles(mm.RecordEmailSent)
def record_email_sent(cmd: mm.RecordEmailSent, ctx: Context, uow: UnitOfWork) -> Outcome:
    message = _outbox_message(uow, cmd.message)
    message.mark_sent(ctx)
    return Outcome(message.id)


@handles(mm.RecordEmailFailed)
def record_email_failed(cmd: mm.RecordEmailFailed, ctx: Context, uow: UnitOfWork) -> Outcome:
    message = _outbox_message(uow, cmd.message)
    message.mark_failed(ctx, cmd.reason)
    return Outcome(message.id, {"final": message.status == "failed"})


@handles(mm.SetEmailAside)
def set_email_aside(cmd: mm.SetEmailAside, ctx: Context, uow: UnitOfWork) -> Outcome:
    key = set_aside_key(ctx.tenant, cmd.mailbox.lower(), cmd.sha256)
    message = _message(uow, key) or uow.add(Message(key))
    message.set_aside(
        ctx, mailbox=cmd.mailbox.lower(), status=cmd.status, kind=cmd.kind, reason=cmd.reason, raw_key=cmd.raw_key,
        size=cmd.size, sha256=cmd.sha256, message_id=cmd.message_id, sender=cmd.sender, subject=cmd.subject,
    )
    return Outcome(message.id)
