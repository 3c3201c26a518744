"""The live feed: case events pushed to portal clients as Server-Sent Events, per tenant, resumable.

The runner (embedded) or the Kafka feed (distributed, adapters/kafka_live.py) hands each batch to a
Broadcaster, always in log order; each connection gets its own bounded queue. A client reconnecting with
Last-Event-ID first gets what it missed from the timeline read model, then the live events, with no gap and
no repeat: the replay covers positions up to what the Broadcaster had published when the client subscribed
(`released`), and everything after that comes from the live queue. When the read model is built elsewhere
(`casestream worker` processes), `Broadcaster.catch_up` waits until it holds that position before the replay reads it.

Each subscriber sees only the events of cases it may read (its ReadScope, projections/read_scope.py), live and
replayed alike: an entry names its case, and the case's definition comes from the events the Broadcaster saw
(CaseOpened, TaskCreated) or the `cases` read model.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import orjson

from domain.case import CaseOpened
from domain.events import Event, Positioned
from domain.task import TaskCreated
from projections.base import Doc
from projections.ports import DocumentStore, Query
from projections.read_scope import CaseDefinitions, ReadScope
from projections.timeline import TIMELINE, entry

QUEUE_SIZE = 10_000
REPLAY_PAGE = 500
CATCH_UP_TIMEOUT = 10.0
SCOPE_REFRESH_SECONDS = 2.0  # how long a stream reuses its reader's scope before asking again
log = logging.getLogger(__name__)
# (position, timeout seconds) -> True once the timeline read model includes position
CatchUp = Callable[[int, float], bool]
# the reader's current scope (blocking: may read the definitions read model and ask the policy); True: decided anew
ScopeOf = Callable[[bool], ReadScope]
NEW_DEFINITION_WAIT = 5.0  # how long a stream waits for the read model to hold a definition it has not seen yet
# (position, timeline entry, its case's definition key when the feed knew it)
Item = tuple[int, Doc, str | None]


class Subscription:
    """One connection's queue of (position, timeline entry, definition key) of its tenant."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tenant: str) -> None:
        self.loop = loop
        self.tenant = tenant
        self.queue: asyncio.Queue[Item] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False

    def offer(self, item: Item) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # A client this far behind is dropped; it reconnects with Last-Event-ID and catches up from the read model.
            self.overflowed = True


class Broadcaster:
    """Fans batches (in log order) out to the subscriptions of the matching tenant."""

    def __init__(self, catch_up: CatchUp | None = None) -> None:
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self.released = 0  # the highest position published so far
        self.catch_up = catch_up
        self.cases = CaseDefinitions()  # learned from the events published; the rest looked up by the streams

    def subscribe(self, tenant: str) -> Subscription:
        sub, _released = self.subscribe_at(tenant)
        return sub

    def subscribe_at(self, tenant: str) -> tuple[Subscription, int]:
        """Subscribe and return the position published before it: every later event reaches the subscription."""
        sub = Subscription(asyncio.get_running_loop(), tenant)
        with self._lock:
            self._subs.add(sub)
            return sub, self.released

    @property
    def subscribers(self) -> int:
        """How many connections are subscribed now."""
        with self._lock:
            return len(self._subs)

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def publish(self, batch: Sequence[Positioned]) -> None:
        """Called (on any thread) with each batch, in log order, once it is visible in the read models."""
        if not batch:
            return
        items = [(p.position, doc, self._definition_of(p.event, doc["case_id"]))
                 for p in batch if TIMELINE.handles(p.event) for doc in (entry(None, p.event),)]
        with self._lock:
            # under the lock, so a subscription sees either all of a batch live or none of it
            self.released = max(self.released, max(p.position for p in batch))
            subs = list(self._subs)
        for sub in subs:
            mine = [item for item in items if item[1]["tenant"] == sub.tenant]
            for item in mine:
                sub.loop.call_soon_threadsafe(sub.offer, item)


    def _definition_of(self, event: Event, case_id: str) -> str | None:
        """The definition of the event's case, when this event or an earlier one said it."""
        if isinstance(event, CaseOpened):
            self.cases.learn(case_id, event.definition_key)
            return event.definition_key
        if isinstance(event, TaskCreated) and event.definition_key:
            self.cases.learn(case_id, event.definition_key)
            return event.definition_key
        return self.cases.known(case_id)


async def _readable(items: Sequence[Item], scope: ReadScope, cases: CaseDefinitions,
                    documents: DocumentStore) -> list[tuple[int, Doc]]:
    """The items of cases the scope may read (a case whose definition cannot be found is not shown)."""
    if scope.definitions is None:
        return [(position, doc) for position, doc, _key in items]
    unknown = [doc["case_id"] for _position, doc, key in items if key is None]
    resolved = await asyncio.to_thread(cases.keys_of, unknown, documents) if unknown else {}
    return [(position, doc) for position, doc, key in items
            if scope.allows(key if key is not None else resolved.get(doc["case_id"]))]


class _Scope:
    """A stream's view of its reader's scope, asked again every SCOPE_REFRESH_SECONDS (off the event loop)."""

    def __init__(self, scope_of: ScopeOf, initial: ReadScope | None) -> None:
        self.scope_of = scope_of
        self.scope = initial
        self.at = time.monotonic()

    async def current(self) -> ReadScope:
        now = time.monotonic()
        if self.scope is None or now - self.at >= SCOPE_REFRESH_SECONDS:
            self.scope = await asyncio.to_thread(self.scope_of, False)
            self.at = now
        return self.scope

    async def covering(self, items: Sequence[Item]) -> ReadScope:
        """The scope, decided anew when an item's definition was published after it: the stream waits (at most
        NEW_DEFINITION_WAIT, polling) for the definitions read model to hold it rather than drop the events of a
        definition nobody has decided on yet (a reader subscribed before a definition existed would miss its first
        cases). Still unknown after that: those items are not shown (fail closed)."""
        scope = await self.current()
        keys = {key for _position, _doc, key in items if key is not None}
        if all(scope.decided(key) for key in keys):
            return scope
        deadline = time.monotonic() + NEW_DEFINITION_WAIT
        while True:
            scope = self.scope = await asyncio.to_thread(self.scope_of, True)
            self.at = time.monotonic()
            if all(scope.decided(key) for key in keys) or self.at >= deadline:
                return scope
            await asyncio.sleep(0.2)


def _message(position: int, doc: Doc) -> dict[str, Any]:
    body = {k: v for k, v in doc.items() if k != "tenant"}
    return {"id": str(position), "event": doc["type"], "data": orjson.dumps(body).decode()}


async def stream(
    broadcaster: Broadcaster, documents: DocumentStore, tenant: str, last_id: int | None, case_id: str | None,
    scope_of: ScopeOf | None = None, initial_scope: ReadScope | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """SSE messages: the missed ones (from the read model) then live ones, filtered by tenant, case and the
    reader's scope (scope_of None: every case of the tenant; initial_scope: the one the request was checked
    with, so a policy that cannot be asked fails the request before the stream starts)."""
    scope = _Scope(scope_of or (lambda _fresh: ReadScope.everything(tenant)), initial_scope)
    sub, upto = broadcaster.subscribe_at(tenant)
    try:
        sent = last_id if last_id is not None else None
        if last_id is not None and last_id < upto:
            if broadcaster.catch_up is not None and not await asyncio.to_thread(
                broadcaster.catch_up, upto, CATCH_UP_TIMEOUT
            ):
                # replaying from a read model that is still behind would skip events for good; end the stream
                # instead, so the client reconnects with the same Last-Event-ID once the read model caught up
                log.warning("timeline read model has not reached position %d; closing the replaying stream", upto)
                return
            filters = {"case_id": case_id} if case_id else {}
            after = last_id
            while True:
                query = Query("timeline", tenant, filters, sort="position", descending=False, limit=REPLAY_PAGE,
                              min_position=after)
                missed = await asyncio.to_thread(documents.find_positioned, query)
                shown = await _readable([(position, doc, None) for position, doc in missed], await scope.current(),
                                        broadcaster.cases, documents)
                for position, doc in shown:
                    if position > upto:  # newer ones come through the live queue
                        break
                    yield _message(position, doc)
                    sent = position
                if len(missed) < REPLAY_PAGE or missed[-1][0] >= upto:
                    break
                after = missed[-1][0]
            sent = upto
        while not sub.overflowed:
            item = await sub.queue.get()
            position, doc, _key = item
            if sent is not None and position <= sent:
                continue
            if case_id and doc["case_id"] != case_id:
                continue
            if not await _readable([item], await scope.covering([item]), broadcaster.cases, documents):
                continue
            yield _message(position, doc)
            sent = position
    finally:
        broadcaster.unsubscribe(sub)

