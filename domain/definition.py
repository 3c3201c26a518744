"""CaseDefinition: a versioned description of a kind of case (schema, stages, queues, card fields)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from domain.aggregate import Aggregate, applies
from domain.errors import AlreadyExists, FieldError, NotFound, ValidationFailed
from domain.events import Context, Event
from domain.schema import check_schema

NAMESPACE = uuid.UUID("6c1f3b1e-8d7e-4f55-9a57-3d1c2b7c0a10")
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,39}$")


def key_problem(key: str, field_name: str) -> FieldError | None:
    """A FieldError when key is not a lowercase slug, else None."""
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        return FieldError(field_name, "must be 2-40 characters of a-z, 0-9 and '-', starting with a letter")
    return None


def definition_id(tenant: str, key: str) -> UUID:
    """Definitions are keyed per tenant, so their ids are derived, not random."""
    return uuid.uuid5(NAMESPACE, f"definition:{tenant}:{key}")


@dataclass(frozen=True)
class Stage:
    """A stage of a case and the stages it may move to."""

    key: str
    name: str
    transitions: tuple[str, ...] = ()


@dataclass(frozen=True)
class DefinitionSpec:
    """One version of a case definition's content."""

    key: str
    name: str
    schema: dict[str, Any]
    stages: tuple[Stage, ...]
    ui_schema: dict[str, Any] = field(default_factory=dict)
    statuses: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    card_fields: tuple[str, ...] = ()
    number_prefix: str = ""

    @property
    def initial_stage(self) -> str:
        return self.stages[0].key

    @property
    def prefix(self) -> str:
        return self.number_prefix or self.key.upper().replace("-", "")

    def stage(self, key: str) -> Stage | None:
        return next((s for s in self.stages if s.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "schema": self.schema,
            "ui_schema": self.ui_schema,
            "stages": [{"key": s.key, "name": s.name, "transitions": list(s.transitions)} for s in self.stages],
            "statuses": list(self.statuses),
            "queues": list(self.queues),
            "card_fields": list(self.card_fields),
            "number_prefix": self.number_prefix,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DefinitionSpec:
        return cls(
            key=raw["key"],
            name=raw["name"],
            schema=raw["schema"],
            ui_schema=raw.get("ui_schema") or {},
            stages=tuple(
                Stage(s["key"], s.get("name") or s["key"], tuple(s.get("transitions") or ()))
                for s in raw["stages"]
            ),
            statuses=tuple(raw.get("statuses") or ()),
            queues=tuple(raw.get("queues") or ()),
            card_fields=tuple(raw.get("card_fields") or ()),
            number_prefix=raw.get("number_prefix") or "",
        )

    def check(self) -> None:
        """Refuse a spec whose parts do not fit together, naming each bad field."""
        errors: list[FieldError] = []
        if problem := key_problem(self.key, "key"):
            errors.append(problem)
        if not self.name.strip():
            errors.append(FieldError("name", "must not be empty"))
        if self.number_prefix and not re.fullmatch(r"[A-Z][A-Z0-9]{0,11}", self.number_prefix):
            errors.append(FieldError("number_prefix", "must be 1-12 upper-case letters or digits"))
        if not self.stages:
            errors.append(FieldError("stages", "at least one stage is required"))
        keys = [s.key for s in self.stages]
        for i, stage in enumerate(self.stages):
            if problem := key_problem(stage.key, f"stages[{i}].key"):
                errors.append(problem)
            if keys.count(stage.key) > 1:
                errors.append(FieldError(f"stages[{i}].key", f"duplicate stage {stage.key!r}"))
            for j, target in enumerate(stage.transitions):
                if target not in keys:
                    errors.append(FieldError(f"stages[{i}].transitions[{j}]", f"unknown stage {target!r}"))
        for i, queue in enumerate(self.queues):
            if problem := key_problem(queue, f"queues[{i}]"):
                errors.append(problem)
        if errors:
            raise ValidationFailed("case definition is not valid", errors)
        check_schema(self.schema, "schema")


class DefinitionPublished(Event):
    """A new version of a case definition was published (the first one creates the definition)."""

    definition_version: int
    spec: dict[str, Any]


class CaseDefinition(Aggregate):
    """A versioned case definition; cases pin the version they were opened under."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.key = ""
        self.specs: list[DefinitionSpec] = []

    @property
    def latest(self) -> DefinitionSpec:
        return self.specs[-1]

    @property
    def latest_version(self) -> int:
        return len(self.specs)

    def spec(self, version: int) -> DefinitionSpec:
        if not 1 <= version <= len(self.specs):
            raise NotFound(f"case definition {self.key!r} has no version {version}")
        return self.specs[version - 1]

    @classmethod
    def create(cls, ctx: Context, spec: DefinitionSpec) -> CaseDefinition:
        spec.check()
        definition = cls(definition_id(ctx.tenant, spec.key))
        definition.record(ctx, DefinitionPublished, definition_version=1, spec=spec.to_dict())
        return definition

    def publish(self, ctx: Context, spec: DefinitionSpec) -> None:
        """Publish a revised version; the key cannot change."""
        spec.check()
        if spec.key != self.key:
            raise ValidationFailed("key cannot change", [FieldError("key", f"must stay {self.key!r}")])
        if spec == self.latest:
            raise AlreadyExists(f"case definition {self.key!r} version {self.latest_version} is identical")
        self.record(ctx, DefinitionPublished, definition_version=self.latest_version + 1, spec=spec.to_dict())

    @applies(DefinitionPublished)
    def _published(self, event: DefinitionPublished) -> None:
        spec = DefinitionSpec.from_dict(event.spec)
        self.key = spec.key
        self.specs.append(spec)
