"""The `documents` read model: one document per case file, with its versions, newest last.

Only attached documents appear: a requested upload is not a document until its confirm attaches it. A removed
document stays (status `removed`) so its history remains readable; lists hide it unless asked. Each version carries
its scan status (`available`, `pending`, `quarantined` with `scan_reason`) and its preview (`ready`, `failed` or
null); `available` on the document says whether any version's bytes may be fetched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain import document as d
from domain.events import Event
from projections.base import Doc, Fold, Projection


def _version(e: d.DocumentAttached | d.DocumentVersionAdded, number: int) -> Doc:
    return {
        "number": number, "filename": e.filename, "content_type": e.content_type, "size": e.size,
        "sha256": e.sha256, "object_key": e.object_key, "status": e.status,
        "added_at": e.occurred_at.isoformat(), "added_by": e.actor, "preview": None,
    }


def _available(versions: list[Doc]) -> bool:
    return any(v["status"] == d.AVAILABLE for v in versions)


def attached(_doc: Doc | None, e: d.DocumentAttached) -> Doc:
    return {
        "id": str(e.aggregate_id), "tenant": e.tenant, "case_id": e.case_id, "filename": e.filename,
        "content_type": e.content_type, "size": e.size, "status": d.ACTIVE, "legal_hold": False,
        "versions": [_version(e, 1)], "available": e.status == d.AVAILABLE, "version": e.version,
        "created_at": e.occurred_at.isoformat(),
        "created_by": e.actor, "updated_at": e.occurred_at.isoformat(), "updated_by": e.actor,
    }


def _step(update: Callable[[Doc, Any], None]) -> Fold:
    """Apply an update to a shallow copy (nested values replaced, never mutated)."""

    def fold(doc: Doc | None, event: Event) -> Doc | None:
        if doc is None:
            return None  # every document starts with DocumentAttached
        new = dict(doc)
        update(new, event)
        new["version"] = event.version
        new["updated_at"] = event.occurred_at.isoformat()
        new["updated_by"] = event.actor
        return new

    return fold


def _version_added(doc: Doc, e: d.DocumentVersionAdded) -> None:
    doc["versions"] = [*doc["versions"], _version(e, e.version_number)]
    doc["filename"], doc["content_type"], doc["size"] = e.filename, e.content_type, e.size
    doc["available"] = _available(doc["versions"])


def _change_version(doc: Doc, number: int, **changes: Any) -> None:
    doc["versions"] = [{**v, **changes} if v["number"] == number else v for v in doc["versions"]]
    doc["available"] = _available(doc["versions"])


def _scanned(doc: Doc, e: d.DocumentVersionScanned) -> None:
    _change_version(doc, e.version_number, status=d.AVAILABLE)


def _quarantined(doc: Doc, e: d.DocumentVersionQuarantined) -> None:
    _change_version(doc, e.version_number, status=d.QUARANTINED, scan_reason=e.reason)


def _preview(doc: Doc, e: d.DocumentPreviewRecorded) -> None:
    _change_version(doc, e.version_number, preview="ready" if e.preview_key else "failed",
                    preview_key=e.preview_key)


def _renamed(doc: Doc, e: d.DocumentRenamed) -> None:
    doc["filename"] = e.filename


def _removed(doc: Doc, e: d.DocumentRemoved) -> None:
    doc["status"] = d.REMOVED
    doc["removed_reason"] = e.reason


def _hold(on: bool) -> Callable[[Doc, Any], None]:
    def update(doc: Doc, _e: Event) -> None:
        doc["legal_hold"] = on

    return update


FOLDS: dict[type[Event], Fold] = {
    d.DocumentAttached: attached,
    d.DocumentVersionAdded: _step(_version_added),
    d.DocumentVersionScanned: _step(_scanned),
    d.DocumentVersionQuarantined: _step(_quarantined),
    d.DocumentPreviewRecorded: _step(_preview),
    d.DocumentRenamed: _step(_renamed),
    d.DocumentRemoved: _step(_removed),
    d.DocumentLegalHoldPlaced: _step(_hold(True)),
    d.DocumentLegalHoldReleased: _step(_hold(False)),
}

DOCUMENTS = Projection(collection="documents", folds=FOLDS, indexes=("case_id",), order="created_at")
