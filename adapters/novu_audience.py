"""Where the Novu publisher keeps each case's audience (followers, number, title): a MongoDB collection.

One document per case, `{_id: case id, position, tenant, number, title, followers: [{user, since}]}`, folded
by `adapters.novu_mapping.fold_audience` from the case's events in per-case (partition) order. The position of
the last folded event is stored with the document in the same write, and an event at or below it is not
folded again, so a redelivered event changes nothing (writes are idempotent by position).
"""

from __future__ import annotations

from typing import Any, Protocol

from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from adapters.novu_mapping import Audience, fold_audience
from domain.events import Positioned

COLLECTION = "notify_audience"


class AudienceStore(Protocol):
    """Keeps case audiences, folded once per event position."""

    def apply(self, case_id: str, item: Positioned) -> Audience | None:
        """Fold the event into the case's audience unless it was folded already; return the audience."""
        ...

    def get(self, case_id: str) -> Audience | None: ...


def _audience(doc: dict[str, Any] | None) -> Audience | None:
    if doc is None:
        return None
    return {k: v for k, v in doc.items() if k not in ("_id", "position")}


class MongoAudiences:
    """Case audiences in a MongoDB (or FerretDB) collection."""

    def __init__(self, uri: str, database: str, *, client: MongoClient[dict[str, Any]] | None = None) -> None:
        self._owns_client = client is None
        self.client: MongoClient[dict[str, Any]] = client or MongoClient(uri)
        self.collection: Collection[dict[str, Any]] = self.client[database][COLLECTION]

    def get(self, case_id: str) -> Audience | None:
        return _audience(self.collection.find_one({"_id": case_id}))

    def apply(self, case_id: str, item: Positioned) -> Audience | None:
        for _attempt in range(5):
            doc = self.collection.find_one({"_id": case_id})
            stored = int(doc["position"]) if doc else 0
            if item.position <= stored:
                return _audience(doc)
            new = {"_id": case_id, "position": item.position, **fold_audience(_audience(doc), item)}
            if doc is None:
                try:
                    self.collection.insert_one(new)
                except DuplicateKeyError:  # another publisher inserted it first: read again
                    continue
                return _audience(new)
            # guarded on the position read, so two publishers (during a rebalance) cannot fold over each other
            if self.collection.replace_one({"_id": case_id, "position": stored}, new).matched_count == 1:
                return _audience(new)
        raise RuntimeError(f"audience of case {case_id} keeps changing under the publisher")

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
