"""A projection: a pure fold `(document | None, event) -> document | None` per read model.

No I/O here. The host (embedded runner or stream worker) loads the document, folds, and stores the
result together with the event's position in one write; an event at or below the stored position is
skipped, so replays and redeliveries change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.events import Event

Doc = dict[str, Any]
Fold = Callable[[Doc | None, Any], Doc | None]  # Any: each fold takes its own event type


@dataclass(frozen=True)
class Projection:
    """One read model: its collection, the document an event touches, and the folds by event type."""

    collection: str
    folds: Mapping[type[Event], Fold]
    key: Callable[[Event], str] = field(default=lambda e: str(e.aggregate_id))
    indexes: tuple[str, ...] = ()
    order: str = "updated_at"
    text_search: bool = False  # documents carry a lower-case `search` text that list queries match substrings in
    # folds giving the same documents as `folds` but updating the one passed in: only for a host that holds the
    # sole reference to each document (a rebuild folding in memory), where copying it per event is wasted work
    in_place_folds: Mapping[type[Event], Fold] = field(default_factory=dict)
    # every document is folded from the events of one aggregate only (its own, or a single event's): a rebuild may
    # then split the log by aggregate between processes, each folding its share into documents nobody else writes
    per_aggregate: bool = False
    # every document is one event's own (keyed by it): no other event folds into it, so a host need not load it
    # before folding (a replayed event stores it again as it was)
    per_event: bool = False

    def handles(self, event: Event) -> bool:
        return type(event) in self.folds

    def fold(self, doc: Doc | None, event: Event) -> Doc | None:
        """Apply one event (None deletes the document)."""
        return self.folds[type(event)](doc, event)
