"""Teaching an engine every deployment in the log: the follower, each tenant's view of its models.

`DeploymentFollower` reads `ProcessDeployed` events in log order and deploys each into an engine (a DMN file's
decisions into the engine's decision registry, in the tenant's scope; a form into processes/form_registry.py; of a
BPMN process every version stays, keyed by its content hash, so a running instance keeps the version it started
on); the process manager asks it to catch up to the position it is about to handle, so a case opened after a deploy
starts the new version (processes/platform.py). A model this process checked before storing it is not parsed again
(processes/deployments.py PREPARED). With a mark store (adapters/log_marks.py) a start reads only the deployment
aggregates its mark names and the log after the mark, not the whole log (processes/checkpoint.py `LogMark`).
Given the runner's decoded windows (`offer`, EmbeddedRunner.share_windows), a catch-up to a position they cover
takes its deployments from them and reads nothing: the manager asks on every pass, and a read of the PostgreSQL
log is two round trips (its head, then the window).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from commands.ports import EventStore
from domain.events import Positioned
from domain.process_deployment import SHIPPED, ProcessDeployed
from processes.bpmn import BpmnRejected
from processes.checkpoint import MarkStore, load_mark, save_mark
from processes.deployments import PREPARED
from processes.form_registry import FORMS
from processes.offered_windows import OfferedWindows

if TYPE_CHECKING:  # the engine and model import SpiffWorkflow: loaded on first use, not at import
    from processes.engine import EmbeddedEngine
    from processes.model import ProcessModel

log = logging.getLogger(__name__)
MARK = "deployment-follower"  # its LogMark's name (processes/checkpoint.py)


class TenantModels(Mapping[str, "ProcessModel"]):
    """The newest model of each process id as one tenant sees it (its own, else the shared one), live: what a call
    activity of that tenant's deployment resolves its called process in, when the call starts."""

    def __init__(self, own: Mapping[tuple[str, str], ProcessModel], shared: Mapping[str, ProcessModel],
                 tenant: str) -> None:
        self._own, self._shared, self._tenant = own, shared, tenant

    def __getitem__(self, process_id: str) -> ProcessModel:
        found = self._own.get((self._tenant, process_id))
        return found if found is not None else self._shared[process_id]

    def __iter__(self) -> Iterator[str]:
        mine = [pid for tenant, pid in list(self._own) if tenant == self._tenant]
        return iter([*mine, *(pid for pid in list(self._shared) if pid not in mine)])

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True)
class Learned:
    """A deployment the engine took (or refused: `error` says why)."""

    tenant: str
    process_id: str
    version: int
    content_hash: str
    error: str | None = None


class DeploymentFollower:
    """Deploys every `ProcessDeployed` of the log into an engine, in log order, up to the position asked for."""

    def __init__(self, store: EventStore, engine: EmbeddedEngine, *, batch: int = 10_000,
                 marks: MarkStore | None = None) -> None:
        self.store = store
        self.engine = engine
        self.batch = batch
        self.position = 0
        self.learned: list[Learned] = []
        self.on_shipped: Callable[[str], None] | None = None  # told each shipped process id
        self.marks = marks  # where the follower keeps its mark, so a start reads only what changed after it
        self._lock = threading.Lock()
        self._types = frozenset({ProcessDeployed.type_name()})
        self._taken: dict[UUID, int] = {}  # deployments aggregate id -> the version taken (what a mark names)
        self._resumed = False
        self._marked = 0  # the position of the last mark saved
        self._offered = OfferedWindows()  # the runner's decoded windows
        self.reads = 0  # windows read from the store (the rest came from the runner)

    def offer(self, after: int, last: int, batch: Sequence[Positioned]) -> None:
        """Runner window listener: the decoded events of (after, last], kept until a catch-up reaches them."""
        self._offered.offer(after, last, batch)

    def _offered_window(self, limit: int) -> tuple[list[Positioned], int] | None:
        """The deployments of the offered window that covers the position reached, and where it ends (at most
        `limit`); None when no offered window starts at or before the position reached (the store is read)."""
        taken = self._offered.take(self.position, limit)
        if taken is None:
            return None
        events, last = taken
        return [p for p in events if isinstance(p.event, ProcessDeployed)], last

    def learn(self, up_to: int | None = None) -> int:
        """Take every deployment at or before `up_to` (the log's head when None); the position reached. The first
        call starts from the stored mark, if any; a call that took deployments (and the first) stores a new one."""
        with self._lock:
            if not self._resumed:
                self._resume()
            taken = len(self.learned)
            limit = self.store.max_position() if up_to is None else up_to
            while self.position < limit:
                offered = self._offered_window(limit)
                if offered is None:
                    self.reads += 1
                    offered = self.store.read_batch(self.position, self.batch, self._types)
                items, last = offered
                for item in items:
                    if item.position > limit:
                        break
                    event = item.event
                    assert isinstance(event, ProcessDeployed)
                    self._take_logged(event)
                if last <= self.position:  # the log ends before the limit
                    break
                self.position = min(last, limit)
            if self._marked == 0 or len(self.learned) > taken:  # deployments are rare: a mark each is cheap
                self._save()
            return self.position

    def save(self) -> None:
        """Store the mark at the position reached (at a stop: the next start reads only the log after it)."""
        with self._lock:
            self._save()

    def _save(self) -> None:
        """Lock held."""
        if self.marks is not None and self.position > 0 and self.position != self._marked:
            save_mark(self.marks, MARK, self.store, self.position, self._taken)
            self._marked = self.position

    def _resume(self) -> None:
        """Take the deployments the stored mark names, from their aggregates, and go on after its position. Lock held.

        Each scope's versions are taken in order; the scopes need none among themselves (each tenant's models and the
        shared ones are kept apart, and a call activity finds its called process when the call starts)."""
        self._resumed = True
        mark = load_mark(self.marks, MARK, self.store) if self.marks is not None else None
        if mark is None:
            return
        found = self.store.events_of_many(list(mark.versions))
        for aggregate_id, version in mark.versions.items():
            for event in found.get(aggregate_id, []):
                if event.version <= version and isinstance(event, ProcessDeployed):
                    self._take_logged(event)
        self.position = self._marked = mark.position

    def _take_logged(self, event: ProcessDeployed) -> None:
        self._take(event)
        self._taken[event.aggregate_id] = event.version

    def _take(self, event: ProcessDeployed) -> None:
        tenant = event.tenant
        if event.kind == "form":  # a form deployed on its own: user tasks linking its id find it (form_registry)
            FORMS.put_version(tenant, event.process_id, json.loads(event.xml))
            self.learned.append(Learned(tenant, event.process_id, event.process_version, event.content_hash))
            return
        data = event.xml.encode("utf-8")
        try:
            if event.kind == "dmn":  # decisions: the tenant's business-rule tasks see them before the shipped ones
                self.engine.deploy_dmn(data, None if tenant == SHIPPED else tenant)
            else:
                self.engine.deploy(data, event.filename, tenant=None if tenant == SHIPPED else tenant,
                                   model=PREPARED.take(event.content_hash))
        except BpmnRejected as exc:  # stored, but this engine cannot run it (e.g. a job type no longer registered)
            log.error("deployment of %s version %d (tenant %s) not taken: %s", event.process_id,
                      event.process_version, tenant, exc)
            self.learned.append(Learned(tenant, event.process_id, event.process_version, event.content_hash,
                                        str(exc)))
            return
        if event.forms:
            FORMS.put(tenant, event.content_hash, event.forms)
        self.learned.append(Learned(tenant, event.process_id, event.process_version, event.content_hash))
        if tenant == SHIPPED and self.on_shipped is not None and event.kind != "dmn":
            self.on_shipped(event.process_id)
