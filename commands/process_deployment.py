"""The DeployProcess command and its handler (the same shape as the others: load, one domain call; the bus saves).

The BPMN is checked before the command is sent (processes/deployments.py: the engine's own parser decides what it
runs); the command carries what the check found. Only the deploy endpoint and the engine's start send it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from commands.handlers import Outcome, handles
from commands.messages import Command
from commands.unit_of_work import UnitOfWork
from domain.definition import PROCESS_ID_PATTERN
from domain.events import Context
from domain.process_deployment import SHIPPED, ProcessDeployments, deployments_id

MAX_XML = 1_000_000  # characters of one BPMN file (the API's body limit is 1 MiB)


class DeployProcess(Command):
    """Deploy a checked BPMN process: a new version unless the newest one has the same content."""

    process_id: str = Field(max_length=200, pattern=PROCESS_ID_PATTERN.pattern, description="The BPMN process id.")
    name: str = Field(default="", max_length=500, description="The process's name in the BPMN file.")
    filename: str = Field(max_length=500, description="The file it was deployed from.")
    xml: str = Field(max_length=MAX_XML, description="The BPMN XML, exactly as deployed.")
    content_hash: str = Field(min_length=64, max_length=64, description="SHA-256 of the XML's UTF-8 bytes.")
    forms: dict[str, Any] = Field(default_factory=dict, max_length=100,
                                  description="Form id -> form-js JSON deployed with it.")
    kind: Literal["bpmn", "dmn", "form"] = Field(default="bpmn", description="BPMN (a process), DMN (decisions; "
                                                 "process_id is the DMN definitions id) or a form-js form deployed "
                                                 "on its own (process_id is the form id, xml its JSON).")


@handles(DeployProcess)
def deploy_process(cmd: DeployProcess, ctx: Context, uow: UnitOfWork) -> Outcome:
    key = deployments_id(ctx.tenant)
    deployments = uow.find(ProcessDeployments, key) or uow.add(ProcessDeployments(key))
    version, new = deployments.deploy(ctx, process_id=cmd.process_id, name=cmd.name, filename=cmd.filename,
                                      xml=cmd.xml, content_hash=cmd.content_hash, forms=dict(cmd.forms),
                                      kind=cmd.kind)
    return Outcome(deployments.id, {"process_id": version.process_id, "process_version": version.version,
                                    "content_hash": version.content_hash, "new": new})


def deployed_process_ids(uow: UnitOfWork) -> frozenset[str]:
    """The process ids a definition of the unit's tenant may name: its own deployments and the shipped ones (read
    from the event store, so every API process knows them, with or without an engine)."""
    own = uow.find(ProcessDeployments, deployments_id(uow.tenant))
    # the shipped scope belongs to no tenant (uow.find would hide it): read as it is
    shipped = ProcessDeployments.replay(deployments_id(SHIPPED), uow.store.events_of(deployments_id(SHIPPED)))
    return frozenset((own.versions if own is not None else {}).keys() | shipped.versions.keys())
