"""A real event store whose next appends fail: a technical failure (lost connection) for retry tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.event_store import RecorderEventStore
from domain.events import Event

LOST = "event store connection lost"


class FlakyStore:
    """The real store, except that the next `failures` appends raise a connection error."""

    def __init__(self, store: RecorderEventStore, failures: int) -> None:
        self._store = store
        self.failures = failures

    def append(self, events: Sequence[Event]) -> list[int]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError(LOST)
        return self._store.append(events)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
