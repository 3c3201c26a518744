"""The instances the engine holds in memory: those with work in flight, and a bounded LRU of resting ones.

An instance at rest (waiting on a user task, a timer or a message) is fully described by its stored events, so
it may be evicted and loaded again when something arrives for it; memory then stays flat however many instances
are open. An instance with a job in flight stays loaded until the job's outcome is applied (its in-flight marks
live only here, and reloading it must not offer the same job twice).
"""

from __future__ import annotations

from collections import OrderedDict
from uuid import UUID

from processes.instance import Instance


class InstanceCache:
    """Loaded instances: busy ones kept, resting ones least-recently-used first, at most `capacity` of them."""

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = max(1, capacity)
        self._resting: OrderedDict[UUID, Instance] = OrderedDict()
        self._busy: dict[UUID, Instance] = {}
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._resting) + len(self._busy)

    def __contains__(self, instance_id: object) -> bool:
        return instance_id in self._resting or instance_id in self._busy

    def get(self, instance_id: UUID) -> Instance | None:
        """The loaded instance (marked as just used), or None."""
        found = self._busy.get(instance_id)
        if found is not None:
            return found
        found = self._resting.get(instance_id)
        if found is not None:
            self._resting.move_to_end(instance_id)
        return found

    def put(self, instance: Instance) -> None:
        """Hold an instance (just started or loaded); resting ones beyond the capacity are evicted."""
        self.settle(instance)

    def settle(self, instance: Instance) -> None:
        """Re-file an instance after a step: busy while jobs are in flight, else the newest resting one."""
        if instance.in_flight:
            self._resting.pop(instance.id, None)
            self._busy[instance.id] = instance
        else:
            self._busy.pop(instance.id, None)
            self._resting[instance.id] = instance
            self._resting.move_to_end(instance.id)
        self._trim()

    def _trim(self) -> None:
        while len(self._resting) > self.capacity:
            instance_id, oldest = self._resting.popitem(last=False)
            if oldest.in_flight:  # a job was offered without a step (a retry's back-off ended): keep it
                self._busy[instance_id] = oldest
            else:
                self.evicted += 1

    def busy(self) -> list[UUID]:
        """The instances with work in flight."""
        return list(self._busy)

    def drop(self, instance_id: UUID) -> None:
        """Forget an instance (finished, or its memory is ahead of the store after a failed save)."""
        self._resting.pop(instance_id, None)
        self._busy.pop(instance_id, None)
