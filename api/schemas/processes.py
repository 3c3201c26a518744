"""Replies of the process deployment routes: each file's outcome, the deployed processes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class DeployProblem(BaseModel):
    """Why a file was refused: the BPMN element (null for the whole document), its line, and what is wrong."""

    element_id: str | None
    line: int | None
    message: str


class DeployedFile(BaseModel):
    """What became of one file: deployed (a new version), unchanged (the newest version has this content) or
    refused (nothing stored for it; `problems` says why)."""

    file: str
    kind: Literal["process", "form", "decisions"]
    status: Literal["deployed", "unchanged", "refused"]
    process_id: str | None = Field(description="The BPMN process id (a process file that passed the checks); a DMN "
                                               "file: its definitions id; a form: its id.")
    version: int | None = Field(description="The version it is now (deployed or unchanged): a form is versioned on "
                                            "its own, by its id.")
    content_hash: str | None = Field(description="SHA-256 of the file: the version's identity.")
    forms: list[str] = Field(description="A process: the forms deployed with it; a form: its id; a DMN file: its "
                                         "decision ids.")
    problems: list[DeployProblem]


class DeployReply(BaseModel):
    """Every file's outcome, in the order sent (status 200: none refused; 207: some refused, the others stored)."""

    files: list[DeployedFile]


class ProcessSummary(BaseModel):
    """A deployed process: its newest version and how many there are."""

    id: str
    name: str
    latest_version: int
    versions: int
    content_hash: str = Field(description="SHA-256 of the newest version's BPMN.")
    deployed_at: str = Field(description="When the newest version was deployed (ISO-8601 UTC).")
    deployer: str
    shipped: bool = Field(description="Shipped with casestream (every tenant sees it) rather than the tenant's own.")


class ProcessList(BaseModel):
    """The processes a tenant may start: its own deployments, and the shipped ones it has not replaced."""

    items: list[ProcessSummary]
