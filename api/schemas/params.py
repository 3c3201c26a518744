"""Path parameters of the query routes, documented with their formats."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

# ids are read as text: an id that is not a UUID names nothing, and is answered 404 like any unknown one
CaseIdPath = Annotated[str, Path(max_length=64, description="The case id.", json_schema_extra={"format": "uuid"})]
TaskIdPath = Annotated[str, Path(max_length=64, description="The task id.", json_schema_extra={"format": "uuid"})]
DefinitionKeyPath = Annotated[str, Path(max_length=40, description="The definition key.")]
TypeKeyPath = Annotated[str, Path(max_length=40, description="The record type key.")]
