"""Coalescing: items submitted by concurrent threads are handled together, by whichever thread finds nobody doing it.

A thread that finds no group in progress leads: it takes every item queued so far (up to max_group) and hands the
list to `run`, which returns one outcome per item (a value, or the exception for that item). Items arriving
meanwhile queue up for the next leader: a lone item is handled at once (no added wait); under load, N items cost
one run. Used for shared transactions (adapters/group_commit.py) and shared command batches (CommandBus.submit).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Waiting(Generic[T]):
    item: T
    done: threading.Event = field(default_factory=threading.Event)
    outcome: object = None
    lead: bool = False


class Coalescer(Generic[T, R]):
    """Funnels concurrent `submit` calls into shared `run` calls of at most max_group items."""

    def __init__(self, run: Callable[[list[T]], Sequence[R | BaseException]], max_group: int = 128) -> None:
        self._run = run
        self._max_group = max_group
        self._lock = threading.Lock()
        self._queue: list[_Waiting[T]] = []
        self._leading = False
        self.groups = 0
        self.items = 0

    def submit(self, item: T) -> R:
        """Handle item (possibly together with others); its outcome, or raise its exception."""
        waiting: _Waiting[T] = _Waiting(item)
        with self._lock:
            self._queue.append(waiting)
            lead = not self._leading
            if lead:
                self._leading = True
        if not lead:
            waiting.done.wait()
            if waiting.lead:  # leadership was handed to us before our own item was handled
                waiting.done.clear()
                self._lead()
                waiting.done.wait()
        else:
            self._lead()
        if isinstance(waiting.outcome, BaseException):
            raise waiting.outcome
        return waiting.outcome  # type: ignore[return-value]

    def _lead(self) -> None:
        with self._lock:
            group = self._queue[: self._max_group]
            del self._queue[: self._max_group]
        try:
            self.groups += 1
            self.items += len(group)
            try:
                outcomes: Sequence[object] = self._run([w.item for w in group])
            except BaseException as exc:  # every item of the group gets it
                outcomes = [exc] * len(group)
            for waiting, outcome in zip(group, outcomes, strict=True):
                waiting.outcome = outcome
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.done.set()
                else:
                    self._leading = False
            for waiting in group:
                waiting.done.set()
