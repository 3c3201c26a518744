"""Documents on cases: declared uploads, confirms that must match, versions, renames, removal and legal hold."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from adapters.embedded_runner import EmbeddedRunner
from adapters.sqlite_documents import SqliteDocumentStore
from commands import messages as m
from commands.bus import Actor, CommandBus, Result
from domain.document import DocumentOnHold, type_agrees
from domain.errors import CaseNotOpen, InvalidStateChange, NotFound, ValidationFailed
from projections import queries
from tests.unit.conftest import open_claim, publish_claim

PDF = b"%PDF-1.7\n" + b"x" * 100
PDF_SHA = hashlib.sha256(PDF).hexdigest()


def _request(bus: CommandBus, actor: Actor, case_id: str, data: bytes = PDF, **over: object) -> Result:
    fields: dict[str, object] = {"case_id": case_id, "filename": "claim.pdf", "content_type": "application/pdf",
                                 "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), **over}
    return bus.dispatch(m.RequestDocumentUpload.model_validate(fields), actor)


def _confirm(bus: CommandBus, actor: Actor, case_id: str, requested: Result, data: bytes = PDF,
             sniffed: str = "application/pdf") -> Result:
    return bus.dispatch(m.ConfirmDocumentUpload(
        case_id=uuid.UUID(case_id), document_id=uuid.UUID(str(requested.extra["document_id"])),
        upload_id=str(requested.extra["upload_id"]), size=len(data), sniffed_type=sniffed,
        sha256=hashlib.sha256(data).hexdigest(), object_key=f"acme/{case_id}/sha256/{hashlib.sha256(data).hexdigest()}",
    ), actor)


@pytest.fixture
def case_id(bus: CommandBus, alice: Actor) -> str:
    publish_claim(bus, alice, documents=m.DocumentLimitsIn(max_size=1000, allowed_types=["application/pdf",
                                                                                          "text/plain"]))
    return open_claim(bus, alice).id


def test_a_confirmed_upload_is_attached_and_listed_with_its_version(
    bus: CommandBus, alice: Actor, case_id: str, runner: EmbeddedRunner, documents: SqliteDocumentStore,
) -> None:
    requested = _request(bus, alice, case_id)
    runner.catch_up()
    assert documents.get("documents", str(requested.extra["document_id"])) is None  # not a document yet
    confirmed = _confirm(bus, alice, case_id, requested)
    assert confirmed.extra["version_number"] == 1
    runner.catch_up()
    doc, _ = documents.get("documents", str(requested.extra["document_id"]))  # type: ignore[misc]
    assert doc is not None
    assert (doc["filename"], doc["size"], doc["status"], doc["case_id"]) == ("claim.pdf", len(PDF), "active", case_id)
    assert [v["sha256"] for v in doc["versions"]] == [PDF_SHA]
    timeline = queries.case_timeline(documents, "acme", case_id)
    assert timeline[-1]["summary"] == "attached document “claim.pdf” (109 bytes)"


@pytest.mark.parametrize(("data", "sniffed", "field"), [
    (PDF + b"!", "application/pdf", "size"),
    (b"%PDF-1.7\n" + b"y" * 100, "application/pdf", "sha256"),
    (PDF, "image/png", "content_type"),
])
def test_a_confirm_that_does_not_match_the_declaration_is_refused_naming_the_field(
    bus: CommandBus, alice: Actor, case_id: str, data: bytes, sniffed: str, field: str,
) -> None:
    requested = _request(bus, alice, case_id)
    with pytest.raises(ValidationFailed) as refused:
        bus.dispatch(m.ConfirmDocumentUpload(
            case_id=uuid.UUID(case_id), document_id=uuid.UUID(str(requested.extra["document_id"])),
            upload_id=str(requested.extra["upload_id"]), size=len(data), sniffed_type=sniffed,
            sha256=hashlib.sha256(data).hexdigest(), object_key="k"), alice)
    assert field in [e.path for e in refused.value.errors]


@pytest.mark.parametrize(("over", "field"), [
    ({"size": 1001}, "size"),
    ({"content_type": "image/png"}, "content_type"),
    ({"filename": "../etc/passwd"}, "filename"),
])
def test_the_definitions_limits_refuse_an_upload_before_any_byte(
    bus: CommandBus, alice: Actor, case_id: str, over: dict[str, object], field: str,
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        _request(bus, alice, case_id, **over)
    assert field in [e.path for e in refused.value.errors]


def test_new_version_rename_hold_and_removal(bus: CommandBus, alice: Actor, bob: Actor, case_id: str,
                                              runner: EmbeddedRunner, documents: SqliteDocumentStore) -> None:
    first = _request(bus, alice, case_id)
    _confirm(bus, alice, case_id, first)
    doc_id = uuid.UUID(str(first.extra["document_id"]))
    text = b"plain words\n"
    second = _request(bus, alice, case_id, text, document_id=str(doc_id), filename="claim.txt",
                      content_type="text/plain")
    assert _confirm(bus, alice, case_id, second, text, "text/plain").extra["version_number"] == 2
    cid = uuid.UUID(case_id)
    bus.dispatch(m.RenameDocument(case_id=cid, document_id=doc_id, filename="Claim letter.txt"), alice)
    bus.dispatch(m.PlaceLegalHold(case_id=cid, document_id=doc_id, reason="litigation"), bob)
    with pytest.raises(DocumentOnHold):
        bus.dispatch(m.RemoveDocument(case_id=cid, document_id=doc_id, reason="tidy"), alice)
    bus.dispatch(m.ReleaseLegalHold(case_id=cid, document_id=doc_id, reason="settled"), bob)
    bus.dispatch(m.RemoveDocument(case_id=cid, document_id=doc_id, reason="duplicate"), alice)
    with pytest.raises(InvalidStateChange):
        bus.dispatch(m.RenameDocument(case_id=cid, document_id=doc_id, filename="again.txt"), alice)
    runner.catch_up()
    doc, _ = documents.get("documents", str(doc_id))  # type: ignore[misc]
    assert doc is not None and doc["status"] == "removed" and doc["filename"] == "Claim letter.txt"
    assert [v["number"] for v in doc["versions"]] == [1, 2]  # history kept
    summaries = [e["summary"] for e in queries.case_timeline(documents, "acme", case_id)][-6:]
    assert summaries == [
        "attached document “claim.pdf” (109 bytes)",
        "added version 2 of document “claim.txt” (12 bytes)",
        "renamed document “claim.txt” to “Claim letter.txt”",
        "placed document “Claim letter.txt” under legal hold: litigation",
        "released the legal hold on document “Claim letter.txt”: settled",
        "removed document “Claim letter.txt”: duplicate",
    ]


def test_a_document_of_another_case_or_tenant_is_not_found(
    bus: CommandBus, alice: Actor, mallory: Actor, case_id: str,
) -> None:
    requested = _request(bus, alice, case_id)
    _confirm(bus, alice, case_id, requested)
    doc_id = uuid.UUID(str(requested.extra["document_id"]))
    other_case = uuid.UUID(open_claim(bus, alice).id)
    with pytest.raises(NotFound):
        bus.dispatch(m.RenameDocument(case_id=other_case, document_id=doc_id, filename="x.pdf"), alice)
    with pytest.raises(NotFound):
        bus.dispatch(m.RenameDocument(case_id=uuid.UUID(case_id), document_id=doc_id, filename="x.pdf"), mallory)


def test_a_closed_case_takes_no_new_documents(bus: CommandBus, alice: Actor, case_id: str) -> None:
    bus.dispatch(m.CloseCase(case_id=uuid.UUID(case_id), reason="done"), alice)
    with pytest.raises(CaseNotOpen):
        _request(bus, alice, case_id)


def test_sniffed_types_agree_with_declarations_only_where_the_bytes_can_be_that() -> None:
    assert type_agrees("application/pdf", "application/pdf")
    assert type_agrees("text/csv", "text/plain") and type_agrees("application/json", "text/plain")
    assert type_agrees("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/zip")
    assert not type_agrees("application/pdf", "text/plain")
    assert not type_agrees("image/png", "application/octet-stream")
    assert not type_agrees("text/plain", "application/x-msdownload")
