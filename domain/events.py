"""The event base: every change is a past-tense, versioned event carrying who, which tenant and why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, dataclass_transform
from uuid import UUID

JSON = Any
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Context:
    """Who issues a change and why: copied onto every event the change records."""

    actor: str
    tenant: str
    command_id: str
    correlation_id: str
    causation_id: str
    now: datetime
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()  # for the authorization policy only; not stored (Metadata keeps neither)


@dataclass(frozen=True)
class Metadata:
    """The part of a Context stored with each event."""

    actor: str
    tenant: str
    command_id: str
    correlation_id: str
    causation_id: str

    @classmethod
    def of(cls, ctx: Context) -> Metadata:
        return cls(ctx.actor, ctx.tenant, ctx.command_id, ctx.correlation_id, ctx.causation_id)


EVENT_TYPES: dict[str, type[Event]] = {}


@dataclass_transform(kw_only_default=True, frozen_default=True)
@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of all domain events. Subclasses add payload fields and may raise `class_version`.

    When a subclass's payload changes shape, bump `class_version` and add an upcaster keyed by the old
    version to `upcasters`: stored events are upcast on load, so old history stays readable forever.
    """

    class_version: ClassVar[int] = 1
    upcasters: ClassVar[dict[int, Upcaster]] = {}

    event_id: UUID
    aggregate_id: UUID
    version: int
    occurred_at: datetime
    meta: Metadata

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__name__ in EVENT_TYPES and EVENT_TYPES[cls.__name__] is not cls:
            raise TypeError(f"duplicate event type name {cls.__name__}")
        dataclass(frozen=True, kw_only=True)(cls)
        if not cls.__dict__.get("abstract", False):  # a shared base of other events is never stored itself
            EVENT_TYPES[cls.__name__] = cls

    @classmethod
    def type_name(cls) -> str:
        """The stable name of this event type (also the Kafka CloudEvents `type` stem)."""
        return cls.__name__

    @classmethod
    def upcast(cls, state: dict[str, Any], stored_version: int) -> dict[str, Any]:
        """Bring a stored payload from stored_version up to the current class_version."""
        for version in range(stored_version, cls.class_version):
            step = cls.upcasters.get(version)
            if step is None:
                raise ValueError(f"{cls.__name__}: no upcaster from version {version}")
            state = step(state)
        return state

    @property
    def tenant(self) -> str:
        return self.meta.tenant

    @property
    def actor(self) -> str:
        return self.meta.actor


@dataclass(frozen=True)
class Positioned:
    """An event with its position in the global, gap-free log."""

    position: int
    event: Event
