"""How far the distributed read models are: read-your-writes for `serve --distributed` without an embedded runner.

The relay stores, with its position R, the last position it published to each topic partition (its head);
each worker stores, per partition, the position of the last event it applied (tracking documents named
`worker:<topic>:<partition>` in MongoDB). Events of one partition arrive in position order, so partition k
holds every event at or below P if tracking(k) >= P, or if tracking(k) >= head(k) (nothing it was sent is
unapplied). With R >= P, the read models include every event up to P when that holds for every partition.

The largest such P for one snapshot is min(R, bound(k) for every partition k that still has unapplied
events), the `position` reported here. Nothing is read from the event log.

bound(k) is tracking(k) (contract 1.0.0: the partition's next event may be any position above it), or, when
the relay stored the partition's recent spans (contract 1.2.0: the first and last position of each of its last
batches there; no event of the partition between one span's last and the next span's first), one less than the
first position of the first span starting after tracking(k): everything of k below it is applied. So a
position is reached once every partition applied its events below it, without waiting for a partition's next
event (before 1.2.0, each event waited for the next batch of every other partition with events in flight).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.kafka_relay import Heads, Span, Spans

log = logging.getLogger(__name__)
TRACKING_PREFIX = "worker:"
_TRACKING_ID = re.compile(r"^worker:(?P<topic>.+):(?P<partition>\d+)$")


def tracking_name(topic: str, partition: int) -> str:
    """The tracking document a worker keeps for one partition."""
    return f"{TRACKING_PREFIX}{topic}:{partition}"


@dataclass(frozen=True)
class Snapshot:
    """The relay's position and heads, and the workers' applied positions, read at about one moment."""

    relay_position: int
    heads: Heads
    applied: Mapping[tuple[str, int], int]
    spans: Mapping[tuple[str, int], Sequence[Span]] = field(default_factory=dict)  # empty: a relay before 1.2.0
    taken_at: float = field(default_factory=time.monotonic)

    def behind(self) -> dict[tuple[str, int], int]:
        """Partitions holding events not yet applied, with the position applied there."""
        return {
            slot: self.applied.get(slot, 0) for slot, head in self.heads.items() if self.applied.get(slot, 0) < head
        }

    def bound(self, slot: tuple[str, int]) -> int:
        """The largest P such that partition `slot` applied all its events at or below P."""
        applied = self.applied.get(slot, 0)
        spans = self.spans.get(slot, ())
        for i, (first, last) in enumerate(spans):
            if last > applied:
                # spans[i - 1] ended at or below `applied`, and nothing was published there in between
                return first - 1 if i > 0 and first > applied else applied
        return applied

    @property
    def position(self) -> int:
        """The largest P such that the read models include every event at or below P."""
        return min([self.relay_position, *(self.bound(slot) for slot in self.behind())])

    def includes(self, position: int) -> bool:
        return self.position >= position


# (R, heads) as contract 1.0.0 stores them, or (R, heads, spans) from a relay of contract 1.2.0
HeadLoader = Callable[[], tuple[int, Heads] | tuple[int, Heads, Spans]]
TrackingLoader = Callable[[], Mapping[tuple[str, int], int]]


def mongo_tracking(database: Any) -> TrackingLoader:
    """Read every worker tracking document of a MongoDB read-model database (one small query)."""
    collection = database["tracking"]

    def load() -> dict[tuple[str, int], int]:
        applied: dict[tuple[str, int], int] = {}
        for record in collection.find({"_id": {"$regex": f"^{TRACKING_PREFIX}"}}, {"position": 1}):
            match = _TRACKING_ID.match(str(record["_id"]))
            if match:
                applied[(match["topic"], int(match["partition"]))] = int(record["position"])
        return applied

    return load


def mongo_tracking_offsets(database: Any) -> TrackingLoader:
    """The highest Kafka offset the workers handled per partition (applied or parked), from their tracking."""
    collection = database["tracking"]

    def load() -> dict[tuple[str, int], int]:
        handled: dict[tuple[str, int], int] = {}
        for record in collection.find({"_id": {"$regex": f"^{TRACKING_PREFIX}"}}, {"offset": 1}):
            match = _TRACKING_ID.match(str(record["_id"]))
            if match and record.get("offset") is not None:
                handled[(match["topic"], int(match["partition"]))] = int(record["offset"])
        return handled

    return load


class KafkaReadProgress:
    """Read-your-writes over relay heads and worker tracking; what the API waits on in distributed mode.

    Snapshots are shared: a waiter reuses one younger than `fresh` seconds, so many waiting queries cost
    one PostgreSQL and one MongoDB read per `fresh` interval, not one each.
    """

    def __init__(
        self, load_heads: HeadLoader, load_tracking: TrackingLoader, *, fresh: float = 0.02, poll: float = 0.02,
    ) -> None:
        self.load_heads = load_heads
        self.load_tracking = load_tracking
        self.fresh = fresh
        self.poll = poll
        self.last_error: str | None = None
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def snapshot(self, max_age: float | None = None) -> Snapshot:
        """A snapshot no older than max_age (default `fresh`) seconds."""
        limit = self.fresh if max_age is None else max_age
        with self._lock:
            current = self._snapshot
            if current is not None and time.monotonic() - current.taken_at <= limit:
                return current
            try:
                # both only rise: a tracking value older than the heads only makes the answer more cautious
                relay = self.load_heads()
                applied = self.load_tracking()
            except Exception as exc:
                self.last_error = repr(exc)
                raise
            self.last_error = None
            spans: Spans = relay[2] if len(relay) == 3 else {}
            self._snapshot = Snapshot(relay[0], relay[1], applied, spans)
            return self._snapshot

    @property
    def position(self) -> int:
        """The read models' position as of the last snapshot (0 before the first)."""
        current = self._snapshot
        return current.position if current is not None else 0

    @property
    def running(self) -> bool:
        return not self._stopped

    def wait(self, position: int, timeout: float) -> bool:
        """Block until the read models include position (read-your-writes); False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.snapshot().includes(position):
                    return True
            except Exception:
                log.exception("reading the read models' progress failed")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(self.poll, remaining))

    def stop(self) -> None:
        self._stopped = True
