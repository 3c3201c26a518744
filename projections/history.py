"""A case as of any version or moment: the same pure fold as the live read model, over a prefix of its events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.diff import diff
from domain.errors import FieldError, NotFound, ValidationFailed
from domain.events import Event
from projections.base import Doc
from projections.cases import CASES

TRACKED = ("title", "stage", "status", "assignee", "queue", "closed_reason", "resolution")


def as_of(events: Sequence[Event], *, version: int | None = None, at: datetime | None = None) -> Doc:
    """The case document after the last event at or before version / at (a version it never had is refused)."""
    latest = events[-1].version if events else 0
    if version is not None and not 1 <= version <= latest:
        raise ValidationFailed(f"the case has no version {version}", [FieldError("version", f"between 1 and {latest}")])
    doc: Doc | None = None
    for event in events:
        if version is not None and event.version > version:
            break
        if at is not None and event.occurred_at > at:
            break
        if CASES.handles(event):
            doc = CASES.fold(doc, event)
    if doc is None:
        raise NotFound("the case did not exist at that point")
    doc.pop("search", None)
    return doc


def compare(events: Sequence[Event], from_version: int, to_version: int) -> dict[str, Any]:
    """What changed between two versions: top-level fields and a field-level diff of the data."""
    latest = events[-1].version if events else 0
    for name, value in (("from", from_version), ("to", to_version)):
        if not 1 <= value <= latest:
            raise ValidationFailed(f"{name} version out of range", [FieldError(name, f"between 1 and {latest}")])
    if from_version > to_version:
        raise ValidationFailed("from is after to", [FieldError("from", f"at most to ({to_version})")])
    before = as_of(events, version=from_version)
    after = as_of(events, version=to_version)
    fields = {f: {"old": before.get(f), "new": after.get(f)} for f in TRACKED if before.get(f) != after.get(f)}
    return {
        "from": from_version, "to": to_version, "fields": fields,
        "data": diff(before["data"], after["data"]),
        "events": [
            {"version": e.version, "type": e.type_name(), "actor": e.actor, "at": e.occurred_at.isoformat()}
            for e in events if from_version < e.version <= to_version
        ],
    }
