"""What open process instances wait for, keyed by instance: so each step touches only its own instance's entries.

The engine keeps this index for every open instance, loaded in memory or not: the user tasks it announced, the
messages it waits for, its key. A step looks up and rewrites only the entries of the instance it moves; nothing
here is ever scanned as a whole on a hot path (a cost that grows with open work is a defect, docs/STYLE).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

Subscription = tuple[str, str, str]  # (tenant, message name, correlation key)


@dataclass(frozen=True)
class UserTaskRef:
    """An announced user task: the instance it belongs to, its SpiffWorkflow task and its element."""

    instance_id: UUID
    spiff_id: UUID
    element_id: str


class WaitIndex:
    """Open instances with their user tasks and message subscriptions, each reachable from its instance."""

    def __init__(self) -> None:
        self.open: dict[UUID, tuple[str, str]] = {}  # instance id -> (instance key, tenant)
        self._by_key: dict[str, set[UUID]] = {}  # instance key -> instance ids (one per tenant using the key)
        self.tasks: dict[UUID, UserTaskRef] = {}  # task id -> its user task
        self._tasks_of: dict[UUID, set[UUID]] = {}  # instance id -> its task ids
        self._subscribers: dict[Subscription, dict[UUID, None]] = {}  # -> instance ids, the first waiting first
        self._subscriptions_of: dict[UUID, frozenset[Subscription]] = {}
        self.visited = 0  # entries a lookup went through (tests count it: it must not grow with open work)

    def __len__(self) -> int:
        return len(self.open)

    # ---------------------------------------------------------------------------------------- instances

    def add(self, instance_id: UUID, key: str, tenant: str) -> None:
        """An instance is open (started, or found unfinished after a restart)."""
        self.open[instance_id] = (key, tenant)
        self._by_key.setdefault(key, set()).add(instance_id)

    def drop(self, instance_id: UUID) -> None:
        """An instance finished (or cannot run here): forget it and everything it waited for."""
        opened = self.open.pop(instance_id, None)
        if opened is not None:
            ids = self._by_key.get(opened[0])
            if ids is not None:
                ids.discard(instance_id)
                if not ids:
                    del self._by_key[opened[0]]
        for task_id in self._tasks_of.pop(instance_id, set()):
            self.tasks.pop(task_id, None)
        self.subscribe(instance_id, frozenset())

    def by_key(self, key: str, tenant: str | None = None) -> UUID | None:
        """The open instance with this key (in this tenant, when given)."""
        for instance_id in self._by_key.get(key, ()):
            self.visited += 1
            if tenant is None or self.open[instance_id][1] == tenant:
                return instance_id
        return None

    # --------------------------------------------------------------------------------------- user tasks

    def add_task(self, task_id: UUID, ref: UserTaskRef) -> None:
        self.tasks[task_id] = ref
        self._tasks_of.setdefault(ref.instance_id, set()).add(task_id)

    def remove_task(self, task_id: UUID) -> None:
        ref = self.tasks.pop(task_id, None)
        if ref is not None:
            own = self._tasks_of.get(ref.instance_id)
            if own is not None:
                own.discard(task_id)
                if not own:
                    del self._tasks_of[ref.instance_id]

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
