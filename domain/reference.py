"""Reference data: queues, record types (a schema) and records (data of a record type)."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from domain.aggregate import Aggregate, applies
from domain.definition import NAMESPACE, key_problem
from domain.errors import CaseNotOpen, InvalidStateChange, ValidationFailed
from domain.events import Context, Event
from domain.schema import check_schema, validate


def queue_id(tenant: str, key: str) -> UUID:
    return uuid.uuid5(NAMESPACE, f"queue:{tenant}:{key}")


def record_type_id(tenant: str, key: str) -> UUID:
    return uuid.uuid5(NAMESPACE, f"record-type:{tenant}:{key}")


def record_id(tenant: str, type_key: str, key: str) -> UUID:
    return uuid.uuid5(NAMESPACE, f"record:{tenant}:{type_key}:{key}")


def _check_key(key: str, field_name: str) -> None:
    if problem := key_problem(key, field_name):
        raise ValidationFailed(f"{field_name} is not valid", [problem])


def _check_name(name: str) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise ValidationFailed("name must not be empty")
    return name


class QueueDefined(Event):
    """A queue was created or its name and description changed."""

    key: str
    name: str
    description: str


class Queue(Aggregate):
    """A work queue cases can be placed in."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.key = ""
        self.name = ""
        self.description = ""

    @classmethod
    def define(cls, ctx: Context, key: str, name: str, description: str = "") -> Queue:
        _check_key(key, "key")
        queue = cls(queue_id(ctx.tenant, key))
        queue.record(ctx, QueueDefined, key=key, name=_check_name(name), description=description.strip())
        return queue

    def redefine(self, ctx: Context, name: str, description: str = "") -> None:
        name = _check_name(name)
        if (name, description.strip()) == (self.name, self.description):
            raise InvalidStateChange(f"queue {self.key!r} is unchanged")
        self.record(ctx, QueueDefined, key=self.key, name=name, description=description.strip())

    @applies(QueueDefined)
    def _defined(self, e: QueueDefined) -> None:
        self.key, self.name, self.description = e.key, e.name, e.description


class RecordTypeDefined(Event):
    """A record type was created or revised (its schema applies to records saved afterwards)."""

    key: str
    name: str
    schema: dict[str, Any]


class RecordType(Aggregate):
    """A kind of reference record, with the JSON Schema its records follow."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.key = ""
        self.name = ""
        self.schema: dict[str, Any] = {}

    @classmethod
    def define(cls, ctx: Context, key: str, name: str, schema: dict[str, Any]) -> RecordType:
        _check_key(key, "key")
        check_schema(schema)
        record_type = cls(record_type_id(ctx.tenant, key))
        record_type.record(ctx, RecordTypeDefined, key=key, name=_check_name(name), schema=schema)
        return record_type

    def redefine(self, ctx: Context, name: str, schema: dict[str, Any]) -> None:
        check_schema(schema)
        name = _check_name(name)
        if (name, schema) == (self.name, self.schema):
            raise InvalidStateChange(f"record type {self.key!r} is unchanged")
        self.record(ctx, RecordTypeDefined, key=self.key, name=name, schema=schema)

    @applies(RecordTypeDefined)
    def _defined(self, e: RecordTypeDefined) -> None:
        self.key, self.name, self.schema = e.key, e.name, e.schema


class RecordSaved(Event):
    """A record was created or its data replaced."""

    type_key: str
    key: str
    data: dict[str, Any]


class RecordRemoved(Event):
    """A record was removed (kept in history, hidden from lists)."""

    reason: str


class Record(Aggregate):
    """One reference record of a record type."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.type_key = ""
        self.key = ""
        self.data: dict[str, Any] = {}
        self.removed = False

    def save(self, ctx: Context, record_type: RecordType, key: str, data: dict[str, Any]) -> None:
        _check_key(key, "key")
        validate(record_type.schema, data)
        if self.version and not self.removed and data == self.data:
            raise InvalidStateChange(f"record {key!r} is unchanged")
        self.record(ctx, RecordSaved, type_key=record_type.key, key=key, data=data)

    def remove(self, ctx: Context, reason: str) -> None:
        if self.removed or not self.version:
            raise CaseNotOpen(f"record {self.key!r} is already removed")
        self.record(ctx, RecordRemoved, reason=reason.strip())

    @applies(RecordSaved)
    def _saved(self, e: RecordSaved) -> None:
        self.type_key, self.key, self.data, self.removed = e.type_key, e.key, e.data, False

    @applies(RecordRemoved)
    def _removed(self, e: RecordRemoved) -> None:
        self.removed = True
