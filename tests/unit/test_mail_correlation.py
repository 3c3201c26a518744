"""A reply by e-mail reaches a process waiting for a message: an automation rule on EmailReceived correlates it
(the process manager asks the engine; the engine here is the recording stand-in of test_process_manager)."""

from __future__ import annotations

import pytest

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore
from adapters.mail_ingest import MailIngester
from adapters.sqlite_documents import SqliteDocumentStore
from commands import messages as m
from commands.bus import Actor, CommandBus
from domain.definition import DEPLOYED_PROCESSES
from processes.manager import ProcessManager
from tests.unit.conftest import TENANT, publish_claim
from tests.unit.test_process_manager import RecordingEngine

MAILBOX = "claims@casestream.test"
RULE = m.AutomationRuleIn(on="EmailReceived", action="correlate-message", value="customer-replied",
                          when='=threaded_by != "new"')


@pytest.fixture(autouse=True)
def no_deployed_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DEPLOYED_PROCESSES, "_ids", set())


def _raw(message_id: str, subject: str, in_reply_to: str = "") -> bytes:
    thread = f"In-Reply-To: {in_reply_to}\r\n" if in_reply_to else ""
    return (f"From: dana@example.org\r\nTo: {MAILBOX}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n{thread}"
            "\r\nHello.\r\n").encode()


def test_a_threaded_reply_is_correlated_to_the_waiting_process_and_a_new_message_is_not(
    bus: CommandBus, store: RecorderEventStore, documents: SqliteDocumentStore, runner: EmbeddedRunner,
) -> None:
    publish_claim(bus, Actor("admin", TENANT, ("admin",)), schema={"type": "object"}, automation=[RULE],
                  mail={"address": MAILBOX})
    runner.catch_up()
    engine = RecordingEngine()
    manager = ProcessManager(engine, bus, store, documents, lambda: runner.position)
    ingester = MailIngester(bus, documents, None)
    first = ingester.ingest(_raw("<first@example.org>", "Broken window"), MAILBOX, TENANT)
    runner.catch_up()
    manager.catch_up()
    assert first.status == "received" and engine.calls == []
    reply = ingester.ingest(_raw("<second@example.org>", "Re: Broken window", "<first@example.org>"), MAILBOX, TENANT)
    runner.catch_up()
    manager.catch_up()
    assert reply.case_id == first.case_id
    assert engine.calls == [("message", "customer-replied", first.case_id)]
