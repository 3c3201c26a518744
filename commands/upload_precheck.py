"""Before the upload confirm touches storage: may this subject confirm, and is there such a pending upload?

The confirm measures (streams) the uploaded object and keeps it by content before its command runs; a subject the
policy refuses, or an upload that does not exist, must not get that far (nor learn anything from storage's answer).
The command itself is decided again by the bus, as every command is.
"""

from __future__ import annotations

from commands import messages as m
from commands.authorization import Authorized, request_of
from commands.bus import Actor, CommandBus
from commands.unit_of_work import UnitOfWork
from domain.document import Document
from domain.errors import NotFound


def check_confirmable(bus: CommandBus, command: m.ConfirmDocumentUpload, actor: Actor) -> None:
    """Raise Forbidden, or NotFound (also for what the subject may not read), unless command could be handled."""
    prepared = bus.prepare(command, actor, None, None)
    uow = UnitOfWork(bus.store, actor.tenant)
    if isinstance(prepared.handler, Authorized):
        request = request_of(command, prepared.ctx, uow)
        if request is None:
            raise NotFound(f"case {command.case_id} not found")
        prepared.handler.check(command, request)
    try:
        document = uow.find(Document, command.document_id)
    except TypeError:  # the id names another kind of aggregate
        document = None
    if document is None or document.case_id != str(command.case_id) or command.upload_id not in document.uploads:
        raise NotFound(f"no pending upload {command.upload_id!r} on document {command.document_id}")
