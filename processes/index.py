"""What open process instances wait for, keyed by instance: so each step touches only its own instance's entries.

The engine keeps this index for every open instance, loaded in memory or not: the user tasks it announced, the
messages it waits for, its key. A step looks up and rewrites only the entries of the instance it moves; nothing
here is ever scanned as a whole on a hot path (a cost that grows with open work is a defect, docs/STYLE). Entries
are small (ids, the key, a tuple per instance's tasks): with tens of thousands of open instances this index is
what stays in memory of each, so it holds no more than a lookup needs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from uuid import UUID

from domain.process import process_instance_id

Subscription = tuple[str, str, str]  # (tenant, message name, correlation key)


@dataclass(frozen=True, slots=True)
class UserTaskRef:
    """An announced user task: the instance it belongs to, its SpiffWorkflow task and its element."""

    instance_id: UUID
    spiff_id: UUID
    element_id: str


class WaitIndex:
    """Open instances with their user tasks and message subscriptions, each reachable from its instance."""

    def __init__(self) -> None:
        self.open: dict[UUID, tuple[str, str]] = {}  # instance id -> (instance key, tenant: one shared string each)
        # instance key -> its instance id (a tuple of them in the rare case that tenants share a key)
        self._by_key: dict[str, UUID | tuple[UUID, ...]] = {}
        self.tasks: dict[UUID, UserTaskRef] = {}  # task id -> its user task
        self._tasks_of: dict[UUID, tuple[UUID, ...]] = {}  # instance id -> its task ids (mostly one)
        self._subscribers: dict[Subscription, dict[UUID, None]] = {}  # -> instance ids, the first waiting first
        self._subscriptions_of: dict[UUID, frozenset[Subscription]] = {}
        self.visited = 0  # entries a lookup went through (tests count it: it must not grow with open work)

    def __len__(self) -> int:
        return len(self.open)

    # ---------------------------------------------------------------------------------------- instances

    def add(self, instance_id: UUID, key: str, tenant: str) -> None:
        """An instance is open (started, or found unfinished after a restart); its id is that of (tenant, key)."""
        self.open[instance_id] = (key, sys.intern(tenant))
        known = self._by_key.get(key)
        if known is None or known == instance_id:
            self._by_key[key] = instance_id
        else:
            ids = known if isinstance(known, tuple) else (known,)
            self._by_key[key] = ids if instance_id in ids else (*ids, instance_id)

    def drop(self, instance_id: UUID) -> None:
        """An instance finished (or cannot run here): forget it and everything it waited for."""
        opened = self.open.pop(instance_id, None)
        if opened is not None:
            key = opened[0]
            known = self._by_key.get(key)
            if known == instance_id:
                del self._by_key[key]
            elif isinstance(known, tuple):
                rest = tuple(i for i in known if i != instance_id)
                self._by_key[key] = rest[0] if len(rest) == 1 else rest
        for task_id in self._tasks_of.pop(instance_id, ()):
            self.tasks.pop(task_id, None)
        self.subscribe(instance_id, frozenset())

    def by_key(self, key: str, tenant: str | None = None) -> UUID | None:
        """The open instance with this key (in this tenant, when given)."""
        if tenant is not None:
            self.visited += 1
            instance_id = process_instance_id(tenant, key)
            return instance_id if instance_id in self.open else None
        known = self._by_key.get(key)
        self.visited += 1
        return known[0] if isinstance(known, tuple) else known

    # --------------------------------------------------------------------------------------- user tasks

    def add_task(self, task_id: UUID, ref: UserTaskRef) -> None:
        self.tasks[task_id] = ref
        own = self._tasks_of.get(ref.instance_id, ())
        if task_id not in own:
            self._tasks_of[ref.instance_id] = (*own, task_id)

    def remove_task(self, task_id: UUID) -> None:
        ref = self.tasks.pop(task_id, None)
        if ref is not None:
            rest = tuple(t for t in self._tasks_of.get(ref.instance_id, ()) if t != task_id)
            if rest:
                self._tasks_of[ref.instance_id] = rest
            else:
                self._tasks_of.pop(ref.instance_id, None)

    def subscriptions_of(self, instance_id: UUID) -> frozenset[Subscription]:
        """The messages one instance waits for."""
        return self._subscriptions_of.get(instance_id, frozenset())

    def tasks_of(self, instance_id: UUID) -> dict[UUID, UserTaskRef]:
        """The announced user tasks of one instance."""
        own = self._tasks_of.get(instance_id, ())
        self.visited += len(own)
        return {task_id: self.tasks[task_id] for task_id in own}

    # ----------------------------------------------------------------------------------------- messages

    def subscribe(self, instance_id: UUID, subscriptions: frozenset[Subscription]) -> None:
        """Replace the messages an instance waits for (after each of its steps)."""
        before = self._subscriptions_of.get(instance_id, frozenset())
        if before == subscriptions:
            return
        self.visited += len(before) + len(subscriptions)
        for gone in before - subscriptions:
            waiting = self._subscribers.get(gone)
            if waiting is not None:
                waiting.pop(instance_id, None)
                if not waiting:
                    del self._subscribers[gone]
        for new in subscriptions - before:
            self._subscribers.setdefault(new, {})[instance_id] = None
        if subscriptions:
            self._subscriptions_of[instance_id] = subscriptions
        else:
            self._subscriptions_of.pop(instance_id, None)

    def subscribers(self, subscription: Subscription) -> list[UUID]:
        """Instances waiting for this message, the first to wait first."""
        waiting = list(self._subscribers.get(subscription, ()))
        self.visited += len(waiting)
        return waiting
