"""Aggregate base: state changes only by recording events; replay rebuilds the same state."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Self, TypeVar
from uuid import UUID

from domain.events import Context, Event, Metadata

E = TypeVar("E", bound=Event)


class Aggregate:
    """An entity whose state is a fold of its events. Subclasses register appliers with `applies`."""

    _appliers: ClassVar[dict[type[Event], Callable[[Any, Any], None]]]

    def __init__(self, aggregate_id: UUID) -> None:
        self.id = aggregate_id
        self.version = 0
        self.tenant = ""
        self.pending: list[Event] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._appliers = {}
        for attr in vars(cls).values():
            event_type = getattr(attr, "_applies_to", None)
            if event_type is not None:
                cls._appliers[event_type] = attr

    def record(self, ctx: Context, event_type: type[E], **payload: Any) -> E:
        """Create the next event from ctx and payload, apply it, and queue it for saving."""
        event = event_type(
            event_id=uuid.uuid4(),
            aggregate_id=self.id,
            version=self.version + 1,
            occurred_at=ctx.now,
            meta=Metadata.of(ctx),
            **payload,
        )
        self.apply(event)
        self.pending.append(event)
        return event

    def apply(self, event: Event) -> None:
        """Fold one event into the state; an event at or below the current version changes nothing."""
        if event.version <= self.version:
            return
        if event.version != self.version + 1:
            raise ValueError(f"event version {event.version} does not follow {self.version} on {self.id}")
        self.apply_as_latest(event)

    def apply_as_latest(self, event: Event) -> None:
        """Fold one event without the sequence check: also loads an aggregate whose whole state its newest
        event carries (a number sequence) from that event alone."""
        applier = self._appliers.get(type(event))
        if applier is None:
            raise TypeError(f"{type(self).__name__} cannot apply {type(event).__name__}")
        applier(self, event)
        self.tenant = event.meta.tenant
        self.version = event.version

    @classmethod
    def replay(cls, aggregate_id: UUID, events: Iterable[Event]) -> Self:
        """Rebuild an aggregate from its stored events."""
        aggregate = cls(aggregate_id)
        for event in events:
            aggregate.apply(event)
        return aggregate

    def collect(self) -> list[Event]:
        """Hand over the events recorded since the last collect (for saving)."""
        events, self.pending = self.pending, []
        return events


def applies(event_type: type[Event]) -> Callable[[Callable[[Any, Any], None]], Callable[[Any, Any], None]]:
    """Mark a method as the applier of one event type."""

    def mark(func: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        func._applies_to = event_type  # type: ignore[attr-defined]
        return func

    return mark
