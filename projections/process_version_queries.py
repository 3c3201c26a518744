"""The deployed processes as a tenant sees them, from the `processes` and `process_versions` read models (never the
event store): its own deployments first, then the shipped ones it has not replaced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.process_deployment import SHIPPED
from projections.base import Doc
from projections.ports import DocumentStore, Query
from projections.process_versions import summary_key, version_key

PAGE = 500  # documents per read while listing every deployed process of a scope
BPMN = "bpmn"


@dataclass(frozen=True)
class DeployedVersion:
    """One version of a process as deployed: enough to answer it byte for byte."""

    process_id: str
    version: int
    filename: str
    xml: str
    content_hash: str


def _scope_summaries(documents: DocumentStore, scope: str) -> list[Doc]:
    """Every process summary of one scope, by process id (read page by page: a scope has no upper bound)."""
    found: list[Doc] = []
    after: tuple[Any, str] | None = None
    while True:
        page = documents.find(Query(collection="processes", tenant=scope, filters={"kind": BPMN}, sort="process_id",
                                    descending=False, limit=PAGE, after=after))
        found.extend(page)
        if len(page) < PAGE:
            return found
        after = (page[-1]["process_id"], page[-1]["id"])


def _summary(doc: Doc, shipped: bool) -> dict[str, Any]:
    return {"id": doc["process_id"], "name": doc["name"], "latest_version": doc["latest_version"],
            "versions": doc["versions"], "content_hash": doc["content_hash"], "deployed_at": doc["deployed_at"],
            "deployer": doc["deployer"], "shipped": shipped}


def list_processes(documents: DocumentStore, tenant: str) -> list[dict[str, Any]]:
    """The tenant's deployed processes and the shipped ones it has not replaced, sorted by id."""
    items = {doc["process_id"]: _summary(doc, True) for doc in _scope_summaries(documents, SHIPPED)}
    items.update({doc["process_id"]: _summary(doc, False) for doc in _scope_summaries(documents, tenant)})
    return [items[pid] for pid in sorted(items)]


def _doc(documents: DocumentStore, collection: str, key: str) -> Doc | None:
    found = documents.get(collection, key)
    return found[0] if found is not None else None


def process_version(documents: DocumentStore, tenant: str, process_id: str, number: int) -> DeployedVersion | None:
    """Version `number` of a process: the tenant's own when it deployed that id at all, else the shipped one."""
    own = _doc(documents, "processes", summary_key(tenant, BPMN, process_id)) is not None
    doc = _doc(documents, "process_versions", version_key(tenant if own else SHIPPED, BPMN, process_id, number))
    if doc is None:
        return None
    return DeployedVersion(doc["process_id"], doc["version"], doc["filename"], doc["xml"], doc["content_hash"])
