"""Scan verdicts and previews of document versions: quarantine at the confirm, later scans, previews only of clean
bytes, and only the document worker's internal actor may record them."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from adapters.document_worker import DocumentWorker
from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore
from adapters.local_storage import LocalFolderStorage
from adapters.scanning import NoScan
from adapters.sqlite_documents import SqliteDocumentStore
from casestream.policy_setup import build_policy
from casestream.settings import Settings
from commands import messages as m
from commands.bus import Actor, CommandBus
from domain.errors import Forbidden, InvalidStateChange
from tests.unit.conftest import open_claim, publish_claim

DATA = b"plain words\n" * 10
SHA = hashlib.sha256(DATA).hexdigest()
WORKER = Actor("system:documents", "acme", ("process",))


def _attach(bus: CommandBus, actor: Actor, case_id: str, scan: str, reason: str = "") -> str:
    requested = bus.dispatch(m.RequestDocumentUpload(
        case_id=uuid.UUID(case_id), filename="notes.txt", content_type="text/plain", size=len(DATA), sha256=SHA,
    ), actor)
    document_id = str(requested.extra["document_id"])
    bus.dispatch(m.ConfirmDocumentUpload(
        case_id=uuid.UUID(case_id), document_id=uuid.UUID(document_id), upload_id=str(requested.extra["upload_id"]),
        size=len(DATA), sniffed_type="text/plain", sha256=SHA, object_key=f"acme/{case_id}/sha256/{SHA}",
        scan=scan, scan_reason=reason,  # type: ignore[arg-type]
    ), actor)
    return document_id


@pytest.fixture
def case_id(bus: CommandBus, alice: Actor) -> str:
    publish_claim(bus, alice)
    return open_claim(bus, alice).id


def _versions(runner: EmbeddedRunner, documents: SqliteDocumentStore, document_id: str) -> list[dict[str, object]]:
    runner.catch_up()
    found = documents.get("documents", document_id)
    assert found is not None and found[0] is not None
    return list(found[0]["versions"])


def test_an_infected_upload_is_attached_quarantined_with_its_reason(
    bus: CommandBus, alice: Actor, case_id: str, runner: EmbeddedRunner, documents: SqliteDocumentStore,
) -> None:
    document_id = _attach(bus, alice, case_id, "infected", "ClamAV found Eicar")
    [version] = _versions(runner, documents, document_id)
    assert (version["status"], version["scan_reason"]) == ("quarantined", "ClamAV found Eicar")
    with pytest.raises(InvalidStateChange):  # a verdict is final
        bus.dispatch(m.RecordDocumentScan(case_id=uuid.UUID(case_id), document_id=uuid.UUID(document_id),
                                          version_number=1, clean=True), WORKER)
    with pytest.raises(InvalidStateChange):  # no thumbnail of infected bytes
        bus.dispatch(m.RecordDocumentPreview(case_id=uuid.UUID(case_id), document_id=uuid.UUID(document_id),
                                             version_number=1, preview_key="k"), WORKER)


def test_an_unscanned_upload_waits_pending_until_a_clean_scan_then_takes_one_preview(
    bus: CommandBus, alice: Actor, case_id: str, runner: EmbeddedRunner, documents: SqliteDocumentStore,
) -> None:
    document_id = _attach(bus, alice, case_id, "unscanned")
    assert _versions(runner, documents, document_id)[0]["status"] == "pending"
    ids = {"case_id": uuid.UUID(case_id), "document_id": uuid.UUID(document_id), "version_number": 1}
    with pytest.raises(InvalidStateChange):
        bus.dispatch(m.RecordDocumentPreview(**ids, preview_key="k"), WORKER)  # type: ignore[arg-type]
    bus.dispatch(m.RecordDocumentScan(**ids, clean=True), WORKER)  # type: ignore[arg-type]
    assert _versions(runner, documents, document_id)[0]["status"] == "available"
    bus.dispatch(m.RecordDocumentPreview(**ids, preview_key="acme/x/previews/a.png"), WORKER)  # type: ignore[arg-type]
    assert _versions(runner, documents, document_id)[0]["preview"] == "ready"
    with pytest.raises(InvalidStateChange):
        bus.dispatch(m.RecordDocumentPreview(**ids, error="again"), WORKER)  # type: ignore[arg-type]


def test_a_confirm_that_says_nothing_of_a_scan_never_makes_the_bytes_available(
    bus: CommandBus, alice: Actor, case_id: str, runner: EmbeddedRunner, documents: SqliteDocumentStore,
) -> None:
    requested = bus.dispatch(m.RequestDocumentUpload(
        case_id=uuid.UUID(case_id), filename="n.txt", content_type="text/plain", size=len(DATA), sha256=SHA), alice)
    bus.dispatch(m.ConfirmDocumentUpload(
        case_id=uuid.UUID(case_id), document_id=uuid.UUID(str(requested.extra["document_id"])),
        upload_id=str(requested.extra["upload_id"]), size=len(DATA), sniffed_type="text/plain", sha256=SHA,
        object_key="k"), alice)
    assert _versions(runner, documents, str(requested.extra["document_id"]))[0]["status"] == "pending"


@pytest.mark.parametrize("roles", [("caseworker",), ("supervisor",), ("admin",)])
def test_only_the_document_worker_records_verdicts(
    store: RecorderEventStore, alice: Actor, tmp_path: Path, roles: tuple[str, ...],
) -> None:
    policed = CommandBus(store, build_policy(Settings(data_dir=tmp_path)))  # the shipped Rego policy
    publish_claim(policed, Actor("ada", "acme", ("admin",)))
    case_id = open_claim(policed, alice).id
    document_id = _attach(policed, alice, case_id, "unscanned")
    command = m.RecordDocumentScan(case_id=uuid.UUID(case_id), document_id=uuid.UUID(document_id),
                                   version_number=1, clean=True)
    with pytest.raises(Forbidden, match="only the document worker records scans and previews"):
        policed.dispatch(command, Actor("someone", "acme", roles))
    policed.dispatch(command, WORKER)


@pytest.mark.parametrize("scan", ["unscanned", "clean"])
def test_a_version_whose_bytes_are_missing_does_not_stall_the_worker(
    bus: CommandBus, alice: Actor, case_id: str, runner: EmbeddedRunner, documents: SqliteDocumentStore,
    store: RecorderEventStore, tmp_path: Path, scan: str, caplog: pytest.LogCaptureFixture,
) -> None:
    # the bytes the confirm named are gone from storage: the worker records what it can and goes on, no retry loop
    storage = LocalFolderStorage(tmp_path / "objects", b"k" * 32, "http://127.0.0.1:1")
    worker = DocumentWorker(bus, store, documents, storage, NoScan(), store.max_position)
    document_id = _attach(bus, alice, case_id, scan)
    runner.catch_up()
    worker.catch_up()
    runner.catch_up()
    assert worker.position == store.max_position()  # it went past the version instead of retrying it
    [version] = _versions(runner, documents, document_id)
    if scan == "unscanned":
        assert version["status"] == "pending"  # never visible without a scan of its bytes
    else:
        assert version["preview"] == "failed"
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
