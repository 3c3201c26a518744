"""The live feed: case events pushed to portal clients as Server-Sent Events, per tenant, resumable.

The runner hands each committed batch to a Broadcaster; each connection gets its own bounded queue.
A client reconnecting with Last-Event-ID first gets what it missed from the timeline read model, then
the live events, with no gap and no repeat.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson

from domain.events import Positioned
from projections.base import Doc
from projections.ports import DocumentStore, Query
from projections.timeline import TIMELINE, entry

QUEUE_SIZE = 10_000


class Subscription:
    """One connection's queue of (position, tenant, timeline entry)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tenant: str) -> None:
        self.loop = loop
        self.tenant = tenant
        self.queue: asyncio.Queue[tuple[int, Doc]] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False

    def offer(self, item: tuple[int, Doc]) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # A client this far behind is dropped; it reconnects with Last-Event-ID and catches up from the read model.
            self.overflowed = True


class Broadcaster:
    """Fans runner batches out to the subscriptions of the matching tenant."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()

    def subscribe(self, tenant: str) -> Subscription:
        sub = Subscription(asyncio.get_running_loop(), tenant)
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def publish(self, batch: Sequence[Positioned]) -> None:
        """Called on the runner thread after a batch is visible in the read models."""
        items = [(p.position, entry(None, p.event)) for p in batch if TIMELINE.handles(p.event)]
        if not items:
            return
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            mine = [item for item in items if item[1]["tenant"] == sub.tenant]
            for item in mine:
                sub.loop.call_soon_threadsafe(sub.offer, item)


def _message(position: int, doc: Doc) -> dict[str, Any]:
    body = {k: v for k, v in doc.items() if k != "tenant"}
    return {"id": str(position), "event": doc["type"], "data": orjson.dumps(body).decode()}


async def stream(
    broadcaster: Broadcaster, documents: DocumentStore, tenant: str, last_id: int | None, case_id: str | None,
) -> AsyncIterator[dict[str, Any]]:
    """SSE messages: the missed ones (from the read model) then live ones, filtered by tenant and case."""
    sub = broadcaster.subscribe(tenant)
    try:
        sent = last_id if last_id is not None else None
        if last_id is not None:
            while True:
                filters = {"case_id": case_id} if case_id else {}
                query = Query("timeline", tenant, filters, sort="position", descending=False, limit=500,
                              min_position=sent)
                missed = await asyncio.to_thread(documents.find_positioned, query)
                for position, doc in missed:
                    yield _message(position, doc)
                    sent = position
                if len(missed) < 500:
                    break
        while not sub.overflowed:
            position, doc = await sub.queue.get()
            if sent is not None and position <= sent:
                continue
            if case_id and doc["case_id"] != case_id:
                continue
            yield _message(position, doc)
            sent = position
    finally:
        broadcaster.unsubscribe(sub)

