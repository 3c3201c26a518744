"""E-mail out on a real bus and SQLite store: mailbox settings on the definition, composing from templates, the
`case.send-email` task type, and the outbox with a recording transport (the SMTP one is tested against Postfix in
tests/integration/mail)."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.event_store import RecorderEventStore
from adapters.mail_outbox import Outbox
from adapters.sqlite_documents import SqliteDocumentStore
from commands import mail_messages as mm
from commands.bus import Actor, CommandBus
from domain.errors import InvalidStateChange, ValidationFailed
from domain.mail_config import mapped_data, render
from domain.message import FAILED, SENT, Message
from processes.jobs import Completed, Job, Thrown, run_job
from projections.catalog import ALL
from tests.unit.conftest import TENANT, open_claim, publish_claim

MAILBOX = "claims@casestream.test"
MAIL = {"address": MAILBOX, "templates": {
    "update": {"subject": "News on {{ case.title }}", "body": "Dear {{ data.customer }}, case {{ case.number }}."}}}


class RecordingTransport:
    """A transport that keeps what it was given, or refuses everything while `refuse` is set."""

    def __init__(self) -> None:
        self.sent: list[tuple[EmailMessage, str, list[str]]] = []
        self.refuse = False

    def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> None:
        if self.refuse:
            raise ConnectionRefusedError("the SMTP server is away")
        self.sent.append((message, sender, recipients))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def mailed(bus: CommandBus, alice: Actor) -> str:
    publish_claim(bus, Actor("admin", TENANT, ("admin",)), mail=MAIL)
    return open_claim(bus, alice, customer="Dana").id


def test_rendering_fills_plain_values_and_nothing_else() -> None:
    values = {"case": {"number": "CLM-000001"}, "data": {"tags": ["a", "b"], "n": None}}
    assert render("{{ case.number }} {{data.tags}} [{{ data.n }}] {{ data.missing }}", values) == "CLM-000001 a, b [] "
    assert render("{{ case.__class__ }} {0.__class__}", values) == " {0.__class__}"
    assert mapped_data({"email": "sender", "note": "text"}, {"sender": "a@b.c", "text": ""}) == {"email": "a@b.c"}


@pytest.mark.parametrize(("mail", "path"), [
    ({"address": "not an address"}, "mail.address"),
    ({"address": MAILBOX, "mapping": {"email": "password"}}, "mail.mapping.email"),
    ({"address": MAILBOX, "templates": {"t": {"subject": "{{ os.environ }}", "body": ""}}}, "mail.templates.t.subject"),
    ({"address": MAILBOX, "acknowledgement": "missing"}, "mail.acknowledgement"),
])
def test_publishing_refuses_bad_mail_settings_naming_the_field(bus: CommandBus, mail: dict[str, Any],
                                                               path: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        publish_claim(bus, Actor("admin", TENANT, ("admin",)), mail=mail)
    assert path in [e.path for e in refused.value.errors]


def test_a_template_composes_an_email_with_the_case_token(bus: CommandBus, store: RecorderEventStore,
                                                          alice: Actor, mailed: str) -> None:
    result = bus.dispatch(mm.ComposeEmail(case_id=UUID(mailed), template="update", to=["dana@example.org"]), alice)
    message = Message.replay(UUID(result.id), store.events_of(UUID(result.id)))
    assert message.subject.startswith("[CLAIM-") and message.subject.endswith("] News on Broken window")
    assert message.to == ["dana@example.org"] and message.message_id.endswith("@casestream.test>")


def test_composing_without_body_or_recipients_names_what_is_missing(bus: CommandBus, alice: Actor,
                                                                     mailed: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        bus.dispatch(mm.ComposeEmail(case_id=UUID(mailed), subject="Hello"), alice)
    assert {e.path for e in refused.value.errors} == {"body", "to"}


def test_a_definition_without_mailbox_sends_nothing(bus: CommandBus, alice: Actor, claim: object) -> None:
    case_id = open_claim(bus, alice).id
    with pytest.raises(ValidationFailed) as refused:
        bus.dispatch(mm.ComposeEmail(case_id=UUID(case_id), subject="Hi", body="x", to=["a@b.cd"]), alice)
    assert [e.path for e in refused.value.errors] == ["mail.address"]


def test_the_send_email_task_composes_as_the_process(bus: CommandBus, store: RecorderEventStore,
                                                     mailed: str) -> None:
    job = Job(key="job-mail-1", type="case.send-email", process_instance_key="pi-1", element_id="mail",
              tenant=TENANT, variables={"caseId": mailed, "to": "dana@example.org, eve@example.org"},
              headers={"template": "update"}, process_id="claim-lifecycle")
    outcome = run_job(job, bus)
    assert isinstance(outcome, Completed)
    composed = [e for e in store.read(0, 1000) if type(e.event).__name__ == "EmailComposed"]
    assert [c.event.to for c in composed] == [["dana@example.org", "eve@example.org"]]
    assert composed[0].event.purpose == "process" and composed[0].event.actor == "process:claim-lifecycle"
    assert outcome.variables["emailMessageId"] == composed[0].event.message_id


def test_the_send_email_task_without_recipients_is_a_bpmn_error(bus: CommandBus, mailed: str) -> None:
    job = Job(key="job-mail-2", type="case.send-email", process_instance_key="pi-1", element_id="mail",
              tenant=TENANT, variables={"caseId": mailed}, headers={"template": "update"}, process_id="p")
    outcome = run_job(job, bus)
    assert isinstance(outcome, Thrown) and outcome.code == "validation-failed"


def _outbox(store: RecorderEventStore, bus: CommandBus, tmp_path: Path, transport: RecordingTransport,
            clock: Clock) -> Outbox:
    return Outbox(store, bus, SqliteDocumentStore(tmp_path / "outbox.sqlite", ALL), transport, retry_seconds=10,
                  clock=clock)


def test_the_outbox_sends_once_and_records_it(bus: CommandBus, store: RecorderEventStore, alice: Actor,
                                              mailed: str, tmp_path: Path) -> None:
    transport, clock = RecordingTransport(), Clock()
    result = bus.dispatch(mm.ComposeEmail(case_id=UUID(mailed), template="update", to=["dana@example.org"]), alice)
    outbox = _outbox(store, bus, tmp_path, transport, clock)
    assert outbox.run_once() == 1
    assert outbox.run_once() == 0  # nothing twice
    sent, sender, recipients = transport.sent[0]
    assert (sender, recipients, sent["From"]) == (MAILBOX, ["dana@example.org"], MAILBOX)
    assert Message.replay(UUID(result.id), store.events_of(UUID(result.id))).status == SENT
    restarted = _outbox(store, bus, tmp_path, transport, clock)  # a restart resumes, and sends nothing again
    assert restarted.run_once() == 0 and len(transport.sent) == 1


def test_the_outbox_retries_with_back_off_and_gives_up_after_five(bus: CommandBus, store: RecorderEventStore,
                                                                  alice: Actor, mailed: str, tmp_path: Path) -> None:
    transport, clock = RecordingTransport(), Clock()
    transport.refuse = True
    result = bus.dispatch(mm.ComposeEmail(case_id=UUID(mailed), template="update", to=["dana@example.org"]), alice)
    outbox = _outbox(store, bus, tmp_path, transport, clock)
    outbox.run_once()
    outbox.run_once()  # not due yet: no second attempt
    message = Message.replay(UUID(result.id), store.events_of(UUID(result.id)))
    assert message.attempts == 1
    for _ in range(6):
        clock.now += 10_000
        outbox.run_once()
    message = Message.replay(UUID(result.id), store.events_of(UUID(result.id)))
    assert (message.status, message.attempts) == (FAILED, 5)
    with pytest.raises(InvalidStateChange):
        bus.dispatch(mm.RecordEmailSent(message=UUID(result.id)), Actor("mail:x", TENANT, ("mail",)))
