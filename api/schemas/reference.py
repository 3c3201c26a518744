"""Replies of the reference queries: definitions, queues, record types and records."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DefinitionVersion(BaseModel):
    """One published version of a definition and its spec (as POST /api/definitions took it)."""

    version: int
    spec: dict[str, Any]


class Definition(BaseModel):
    """A case definition: its latest spec and every version published."""

    model_config = ConfigDict(extra="allow")
    id: str
    tenant: str
    key: str
    name: str
    latest_version: int
    latest: dict[str, Any] = Field(description="The latest version's spec: schema, stages, statuses, queues, ...")
    versions: list[DefinitionVersion]


class Queue(BaseModel):
    """A work queue."""

    model_config = ConfigDict(extra="allow")
    id: str
    tenant: str
    key: str
    name: str
    description: str


class RecordType(BaseModel):
    """A kind of reference record and the JSON Schema its records follow."""

    model_config = ConfigDict(extra="allow")
    id: str
    tenant: str
    key: str
    name: str
    schema_: dict[str, Any] = Field(alias="schema")


class ReferenceRecord(BaseModel):
    """A reference record (a vendor, a product, ...)."""

    model_config = ConfigDict(extra="allow")
    id: str
    tenant: str
    type_key: str
    key: str
    data: dict[str, Any]
    version: int
    updated_at: str
