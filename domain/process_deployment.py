"""Process deployments: every version of every BPMN process a tenant deployed, as events (docs/processes.md).

One aggregate per tenant (`deployments_id`) holds the tenant's `ProcessDeployed` events, so listing a tenant's
processes and reading one version back are one aggregate read, and every runtime (the embedded engine, the process
worker) learns deployments from the log. Versions count 1, 2, 3… per tenant and process id; a deployment makes a new
version only when its content differs from the newest version of that id (the same bytes deploy once). The processes
shipped with casestream live in the `SHIPPED` scope, which every tenant sees; a tenant's own deployment of the same
id takes precedence for that tenant. A DMN file (the decisions of business-rule tasks) is deployed the same way, as a
`ProcessDeployed` of kind "dmn" keyed by its `definitions` id, and versioned apart from the processes (`decisions`);
so is a form-js form deployed on its own (kind "form", keyed by the form's `id`, versioned in `form_versions`), which
user tasks of any process of the tenant link with `zeebe:formDefinition formId`.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from uuid import UUID

from domain.aggregate import Aggregate, applies
from domain.definition import NAMESPACE
from domain.errors import FieldError, ValidationFailed
from domain.events import Context, Event, Upcaster

SHIPPED = "*"  # the scope of the shipped processes: no tenant can be named so (tenants match ^[a-z][a-z0-9-]*$)


def deployments_id(tenant: str) -> UUID:
    """The aggregate id of a tenant's (or the shipped scope's) process deployments."""
    return uuid.uuid5(NAMESPACE, f"process-deployments:{tenant}")


def xml_hash(xml: str) -> str:
    """The content hash of a deployed file (its UTF-8 bytes): the engine's identity of a model and of a version."""
    return hashlib.sha256(xml.encode("utf-8")).hexdigest()


Kind = Literal["bpmn", "dmn", "form"]


def _deployed_v1_to_v2(state: dict[str, Any]) -> dict[str, Any]:
    """Version 1 deployments were all BPMN."""
    return {**state, "kind": "bpmn"}


class ProcessDeployed(Event):
    """A new version of a process (its BPMN XML exactly as deployed, and the forms deployed with it) or of a DMN
    file's decisions (`kind` "dmn": `process_id` is the DMN definitions id, the XML is the DMN) or of a form
    deployed on its own (`kind` "form": `process_id` is the form's id, `xml` the form-js JSON text as deployed).

    Version 2 added `kind`; version-1 payloads are upcast as "bpmn".
    """

    class_version: ClassVar[int] = 2
    upcasters: ClassVar[dict[int, Upcaster]] = {1: _deployed_v1_to_v2}

    process_id: str
    name: str
    process_version: int
    filename: str
    xml: str
    content_hash: str
    deployer: str
    forms: dict[str, Any]  # form id -> form-js JSON, the forms deployed alongside (empty when none)
    kind: str  # "bpmn", "dmn" or "form"


@dataclass(frozen=True)
class ProcessVersion:
    """One deployed version of a process."""

    process_id: str
    name: str
    version: int
    filename: str
    xml: str
    content_hash: str
    deployer: str
    deployed_at: str
    forms: dict[str, Any]
    kind: str = "bpmn"


class ProcessDeployments(Aggregate):
    """A tenant's deployed processes (and DMN files, and forms): every version of each id, in deployment order."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.versions: dict[str, list[ProcessVersion]] = {}
        self.decisions: dict[str, list[ProcessVersion]] = {}  # DMN definitions id -> its versions
        self.form_versions: dict[str, list[ProcessVersion]] = {}  # form id -> its versions

    def _of(self, kind: str) -> dict[str, list[ProcessVersion]]:
        return self.decisions if kind == "dmn" else self.form_versions if kind == "form" else self.versions

    def latest(self, process_id: str, kind: Kind = "bpmn") -> ProcessVersion | None:
        """The newest version of a process id (of a DMN definitions id with kind "dmn", of a form id with kind
        "form"; None if never deployed)."""
        found = self._of(kind).get(process_id)
        return found[-1] if found else None

    def numbered(self, process_id: str, number: int) -> ProcessVersion | None:
        """Version `number` (1-based) of a process id."""
        found = self.versions.get(process_id, [])
        return found[number - 1] if 1 <= number <= len(found) else None

    def deploy(
        self, ctx: Context, *, process_id: str, name: str, filename: str, xml: str, content_hash: str,
        forms: dict[str, Any], kind: Kind = "bpmn",
    ) -> tuple[ProcessVersion, bool]:
        """Deploy a checked BPMN, DMN or form file: its version, and whether it is new (False: the newest version has
        the same content, and the same forms when forms are given, so nothing is recorded)."""
        if content_hash != xml_hash(xml):
            raise ValidationFailed("the content hash does not match the XML",
                                   [FieldError("content_hash", "must be the SHA-256 of the XML's UTF-8 bytes")])
        latest = self.latest(process_id, kind)
        if latest is not None and latest.content_hash == content_hash and (not forms or forms == latest.forms):
            return latest, False
        self.record(ctx, ProcessDeployed, process_id=process_id, name=name,
                    process_version=len(self._of(kind).get(process_id, [])) + 1, filename=filename, xml=xml,
                    content_hash=content_hash, deployer=ctx.actor,
                    forms=dict(forms) if forms or latest is None else dict(latest.forms), kind=kind)
        deployed = self.latest(process_id, kind)
        assert deployed is not None
        return deployed, True

    @applies(ProcessDeployed)
    def _deployed(self, e: ProcessDeployed) -> None:
        self._of(e.kind).setdefault(e.process_id, []).append(version_of(e))


def version_of(e: ProcessDeployed) -> ProcessVersion:
    """The version a deployment event records."""
    return ProcessVersion(e.process_id, e.name, e.process_version, e.filename, e.xml, e.content_hash, e.deployer,
                          e.occurred_at.isoformat(), dict(e.forms), e.kind)
