"""Parked cases: where a poison event stops its case, and the later events of that case wait in order.

Two MongoDB collections beside the read models (names in adapters/stream_worker/__init__.py):

- `worker_parked` — one marker per parked aggregate key: ``{_id: key, since_offset, topic, partition,
  position, error, parked: <count of events parked under it>, created_at}``.
- `worker_parked_events` — every parked record, the poison one first: ``{_id: "<topic>:<partition>:<offset>",
  key, topic, partition, offset, position (None if undecodable), value (the original message, text),
  error (None for an event that only waits), parked_at}``.

The marker is only removed by `retry`, with a guard on `parked` so that an event a live worker parks while
the retry runs is never stranded: a worker inserts the event first and then increments `parked`; if the
marker is gone by then, the worker applies the event itself (see `add_waiting`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database

MARKERS = "worker_parked"
EVENTS = "worker_parked_events"


@dataclass(frozen=True)
class Delivery:
    """One Kafka record as a worker receives it (raw key and value)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: float | None = None  # the record's broker timestamp, seconds
    relay_read_at: float | None = None  # when the relay read its event from the store (header), Unix seconds
    received_at: float | None = None  # when this worker received it, Unix seconds

    @property
    def record_id(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def key_text(self) -> str | None:
        return None if self.key is None else self.key.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Parked:
    """A record to park: the poison one (error set) or one that waits behind it (error None)."""

    delivery: Delivery
    key: str
    position: int | None
    error: str | None


def _event_doc(item: Parked) -> dict[str, Any]:
    d = item.delivery
    return {
        "_id": d.record_id, "key": item.key, "topic": d.topic, "partition": d.partition, "offset": d.offset,
        "position": item.position, "value": d.value.decode("utf-8", errors="replace"), "error": item.error,
        "parked_at": datetime.now(UTC).isoformat(),
    }


class MongoParking:
    """The parked keys and their events, in the read models' MongoDB database."""

    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self.db = db
        self.markers = db[MARKERS]
        self.events = db[EVENTS]
        self.events.create_index([("key", ASCENDING), ("offset", ASCENDING)])

    def parked_keys(self) -> set[str]:
        """Every key that is parked now."""
        return {str(m["_id"]) for m in self.markers.find({}, {"_id": 1})}

    def _insert(self, item: Parked) -> None:
        # an upsert by record id, one statement per command (FerretDB holds a connection per statement):
        # a redelivered record is parked once
        doc = _event_doc(item)
        self.events.update_one({"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True)

    def _insert_by_key(self, items: Sequence[Parked]) -> Iterator[tuple[str, list[Parked]]]:
        """Insert the records key by key (keys in first-seen order), yielding each key's records once they are in."""
        by_key: dict[str, list[Parked]] = {}
        for item in items:
            by_key.setdefault(item.key, []).append(item)
        for key, group in by_key.items():
            for item in group:
                self._insert(item)
            yield key, group

    def add_waiting(self, items: Sequence[Parked]) -> set[str]:
        """Park records of keys already parked; return the keys whose marker has gone (retried meanwhile): their
        records were un-parked again and the caller applies them."""
        gone: set[str] = set()
        for key, group in self._insert_by_key(items):
            if self.markers.update_one({"_id": key}, {"$inc": {"parked": len(group)}}).matched_count == 0:
                gone.add(key)
                for item in group:
                    self.events.delete_one({"_id": item.delivery.record_id})
        return gone

    def park_new(self, items: Sequence[Parked]) -> None:
        """Park poison records (error set) and the records of their keys that followed them in the batch."""
        for key, group in self._insert_by_key(items):
            first = group[0]
            d = first.delivery
            self.markers.update_one(
                {"_id": key},
                {"$setOnInsert": {"topic": d.topic, "partition": d.partition, "since_offset": d.offset,
                                  "position": first.position, "error": first.error,
                                  "created_at": datetime.now(UTC).isoformat()},
                 "$inc": {"parked": len(group)}},
                upsert=True,
            )

    def marker(self, key: str) -> dict[str, Any] | None:
        return self.markers.find_one({"_id": key})

    def parked_events(self, key: str) -> list[dict[str, Any]]:
        """A key's parked records in their Kafka order."""
        return list(self.events.find({"key": key}).sort([("offset", ASCENDING)]))

    def keys_with_events(self) -> set[str]:
        return {str(k) for k in self.events.distinct("key")}

    def remove_events(self, record_ids: Iterable[str]) -> None:
        for record_id in record_ids:
            self.events.delete_one({"_id": record_id})

    def release(self, key: str, parked: int) -> bool:
        """Drop the key's marker if no record was parked under it since `parked` was read."""
        return self.markers.delete_one({"_id": key, "parked": parked}).deleted_count == 1

    def set_error(self, key: str, record_id: str, error: str) -> None:
        """Record why a retry stopped at a record (the marker and the record say so)."""
        self.markers.update_one({"_id": key}, {"$set": {"error": error, "retry_failed_at": record_id}})
        self.events.update_one({"_id": record_id}, {"$set": {"error": error}})

    def reset(self) -> None:
        self.db.drop_collection(MARKERS)
        self.db.drop_collection(EVENTS)
        self.events.create_index([("key", ASCENDING), ("offset", ASCENDING)])
