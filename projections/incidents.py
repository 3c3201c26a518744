"""The `incidents` read model: one document per process incident, open until an operator retries or cancels.

An incident raised before incidents had their own id is keyed by its event id (domain/process.py incident_key).
"""

from __future__ import annotations

from domain import process as p
from domain.events import Event
from projections.base import Doc, Fold, Projection
from projections.texts import iso_text, uuid_text

OPEN, RESOLVED = "open", "resolved"


def raised(_doc: Doc | None, e: p.IncidentRaised) -> Doc:
    at = iso_text(e.occurred_at)
    return {
        "id": p.incident_key(e),
        "tenant": e.tenant,
        "instance_id": uuid_text(e.aggregate_id),
        "process_id": e.process_id,
        "case_id": e.case_id,
        "element_id": e.element_id,
        "kind": e.kind,
        "job_type": e.job_type,
        "message": e.message,
        "state": OPEN,
        "created_at": at,
        "updated_at": at,
        "resolution": None,
        "resolved_at": None,
        "resolved_by": None,
        "note": "",
    }


def resolved(doc: Doc | None, e: p.IncidentResolved) -> Doc | None:
    if doc is None:
        return None
    at = iso_text(e.occurred_at)
    return {**doc, "state": RESOLVED, "resolution": e.resolution, "resolved_at": at, "resolved_by": e.actor,
            "note": e.note, "updated_at": at}


def _key(event: Event) -> str:
    if isinstance(event, p.IncidentRaised):
        return p.incident_key(event)
    assert isinstance(event, p.IncidentResolved)
    return event.incident_id


FOLDS: dict[type[Event], Fold] = {p.IncidentRaised: raised, p.IncidentResolved: resolved}

INCIDENTS = Projection(
    collection="incidents",
    folds=FOLDS,
    key=_key,
    indexes=("state", "process_id", "case_id", "instance_id", "created_at"),
    order="created_at",
)
