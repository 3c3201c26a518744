"""The `process_versions` and `processes` read models: every deployed version (its file exactly as deployed) and one
summary per deployed id, folded from `ProcessDeployed` (domain/process_deployment.py).

Both are keyed by scope (the tenant, or `SHIPPED` for the processes shipped with casestream), kind ("bpmn", "dmn",
"form") and id, so a tenant's own deployment and the shipped one of the same id are told apart; the queries
(projections/process_version_queries.py) pick the tenant's own first. The forms deployed with a process are not
kept here: no query answers them, and their keys are the form's own (not valid document keys in every store).
"""

from __future__ import annotations

from domain.events import Event
from domain.process_deployment import ProcessDeployed
from projections.base import Doc, Fold, Projection


def summary_key(scope: str, kind: str, process_id: str) -> str:
    """The `processes` document of one deployed id in a scope."""
    return f"{scope}/{kind}/{process_id}"


def version_key(scope: str, kind: str, process_id: str, version: int) -> str:
    """The `process_versions` document of one version."""
    return f"{summary_key(scope, kind, process_id)}/{version}"


def _version_key(event: Event) -> str:
    assert isinstance(event, ProcessDeployed)
    return version_key(event.tenant, event.kind, event.process_id, event.process_version)


def _summary_key(event: Event) -> str:
    assert isinstance(event, ProcessDeployed)
    return summary_key(event.tenant, event.kind, event.process_id)


def version_deployed(_doc: Doc | None, e: ProcessDeployed) -> Doc:
    """One version: the file as deployed (the XML is returned byte for byte from it)."""
    return {
        "id": _version_key(e),
        "tenant": e.tenant,
        "kind": e.kind,
        "process_id": e.process_id,
        "version": e.process_version,
        "name": e.name,
        "filename": e.filename,
        "xml": e.xml,
        "content_hash": e.content_hash,
        "deployer": e.deployer,
        "deployed_at": e.occurred_at.isoformat(),
    }


def summary_deployed(_doc: Doc | None, e: ProcessDeployed) -> Doc:
    """The id's newest version and how many versions it has (versions count 1, 2, 3…: the newest's number)."""
    return {
        "id": _summary_key(e),
        "tenant": e.tenant,
        "kind": e.kind,
        "process_id": e.process_id,
        "name": e.name,
        "latest_version": e.process_version,
        "versions": e.process_version,
        "content_hash": e.content_hash,
        "deployer": e.deployer,
        "deployed_at": e.occurred_at.isoformat(),
    }


VERSION_FOLDS: dict[type[Event], Fold] = {ProcessDeployed: version_deployed}
SUMMARY_FOLDS: dict[type[Event], Fold] = {ProcessDeployed: summary_deployed}

PROCESS_VERSIONS = Projection(
    collection="process_versions",
    folds=VERSION_FOLDS,
    key=_version_key,
    indexes=("kind", "process_id"),
    order="deployed_at",
)

PROCESSES = Projection(
    collection="processes",
    folds=SUMMARY_FOLDS,
    key=_summary_key,
    indexes=("kind", "process_id"),
    order="process_id",
)
