"""CachedPolicy: reuses a decision for an identical request for a few seconds (bounded LRU, thread-safe)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from commands.policy import Decision, Policy


class CachedPolicy:
    """Wraps any Policy; requests carry no row ids, so a busy user's requests repeat and mostly hit."""

    def __init__(
        self,
        inner: Policy,
        ttl_seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[float, Decision]] = OrderedDict()
        self._lock = threading.Lock()

    def decide(self, request: Mapping[str, Any]) -> Decision:
        """The cached decision for an identical request younger than the TTL, else the inner policy's."""
        if self._ttl <= 0:
            return self.inner.decide(request)
        key = orjson.dumps(request, option=orjson.OPT_SORT_KEYS)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now:
                self._entries.move_to_end(key)
                return entry[1]
        # asked outside the lock: a slow engine must not serialise every other request behind it; errors
        # (PolicyUnavailable) propagate and are never cached
        decision = self.inner.decide(request)
        with self._lock:
            self._entries[key] = (now + self._ttl, decision)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return decision

    def clear(self) -> None:
        """Forget every cached decision (e.g. after the policies changed)."""
        with self._lock:
            self._entries.clear()
