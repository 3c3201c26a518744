"""The read side's port: a document store holding each read model with the positions that built it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from projections.base import Doc


@dataclass(frozen=True)
class Write:
    """One document to store (None: delete) and the position of the event that produced it."""

    collection: str
    key: str
    doc: Doc | None
    position: int


@dataclass(frozen=True)
class In:
    """A filter value matching any of `values` (none: matches nothing), e.g. the definitions a reader may see."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Query:
    """A list query: equality (or `In`) filters, optional text search, one sort field, keyset pagination."""

    collection: str
    tenant: str
    filters: Mapping[str, Any] = field(default_factory=dict)
    text: str | None = None
    sort: str = "updated_at"
    descending: bool = True
    limit: int = 50
    after: tuple[Any, str] | None = None
    min_position: int | None = None


class DocumentStore(Protocol):
    """Where read models live (SQLite embedded, MongoDB distributed)."""

    def get(self, collection: str, key: str) -> tuple[Doc | None, int] | None:
        """The document (None if deleted) and its position, or None if never written."""
        ...

    def get_many(self, collection: str, keys: Sequence[str]) -> dict[str, tuple[Doc | None, int]]:
        """get() for many keys at once; keys never written are absent."""
        ...

    def write(self, writes: Sequence[Write], tracking: tuple[str, int] | None = None) -> None:
        """Store documents and a tracking position in one transaction."""
        ...

    def tracking(self, name: str) -> int:
        """The last position the named runner has applied (0 if none)."""
        ...

    def find(self, query: Query) -> list[Doc]: ...

    def find_positioned(self, query: Query) -> list[tuple[int, Doc]]:
        """Like find, each document with the position it was written at."""
        ...

    def count_by(self, collection: str, tenant: str, field: str, filters: Mapping[str, Any]) -> dict[str, int]: ...

    def reset(self, *, defer_indexes: bool = False) -> None:
        """Drop every read model and tracking position (for a rebuild); defer_indexes leaves the query indexes
        to ensure_indexes(), so a rebuild does not maintain them row by row."""
        ...

    def ensure_indexes(self) -> None:
        """Create the query indexes if missing."""
        ...
