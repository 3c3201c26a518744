"""Processes in the platform: the embedded engine with the shipped BPMN deployed, and the process manager.

`Processes.build()` imports the engine (SpiffWorkflow), deploys every file in processes/definitions/ as events in the
shipped scope (so case definitions may name them; the same content makes no new version), teaches the engine every
deployment in the log (every tenant's, every version: processes/deployments.py) and subscribes the manager to the
runner. The manager learns later deployments before it handles what follows them in the log, so a deploy needs no
restart. `start()` builds if needed, recovers
unfinished instances from the event store (open user tasks, pending timers), then starts the engine's threads
and the manager. `casestream serve` calls `start_in_background()`, so the API answers (and `/readyz` is
ready) while SpiffWorkflow loads and the BPMN is checked; nothing is lost meanwhile, because the manager
resumes from its stored position.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.embedded_runner import EmbeddedRunner
from adapters.lag import process_lag
from adapters.log_marks import log_marks_for
from commands.bus import CommandBus
from commands.ports import EventStore
from domain.definition import DEPLOYED_PROCESSES
from domain.process_deployment import SHIPPED, ProcessDeployed
from processes.deployment_follower import DeploymentFollower
from processes.deployments import FileOutcome, deploy_shipped
from processes.manager import ProcessManager
from processes.request_follower import RequestFollower
from processes.saga_workers import register_task_lookup
from projections.ports import DocumentStore

if TYPE_CHECKING:  # the engine imports SpiffWorkflow: loaded in build(), not at import
    from processes.engine import EmbeddedEngine

log = logging.getLogger(__name__)
DEFINITIONS = Path(__file__).resolve().parent / "definitions"
STARTING, RUNNING, FAILED, STOPPED = "starting", "running", "failed", "stopped"


def shipped_files(folder: Path = DEFINITIONS) -> list[Path]:
    """The BPMN files shipped with casestream (deployed at start)."""
    return sorted(folder.glob("*.bpmn"))


def checkpoint_path(store: EventStore) -> Path | None:
    """Where the engine saves its open instances at a clean stop: beside a SQLite log file (None otherwise)."""
    sqlite = getattr(store, "sqlite_file", None)
    if sqlite is None or not Path(sqlite[0]).is_file():
        return None
    return Path(sqlite[0] + ".processes")


class NotReady(RuntimeError):
    """The processes are still starting (or failed to): the engine and manager are not there yet."""


class Processes:
    """The process side of a platform: engine, manager, what was deployed and recovered, and its state."""

    def __init__(
        self, bus: CommandBus, store: EventStore, documents: DocumentStore, runner: EmbeddedRunner,
        *, definitions: Path = DEFINITIONS,
    ) -> None:
        self.bus = bus
        self.store = store
        self.documents = documents
        self.runner = runner
        self.definitions = definitions
        self.shipped: list[FileOutcome] = []  # what became of each shipped file at the last build
        self.deployments: DeploymentFollower | None = None
        self.recovered: list[str] = []
        self.state = STARTING
        self.error: str | None = None
        self._engine: EmbeddedEngine | None = None
        self._manager: ProcessManager | None = None
        self._requests: RequestFollower | None = None  # operator requests and messages stored in the log
        self._unregister: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._starter: threading.Thread | None = None

    @property
    def engine(self) -> EmbeddedEngine:
        if self._engine is None:
            raise NotReady(f"the BPMN engine is not built yet ({self.state})")
        return self._engine

    @property
    def manager(self) -> ProcessManager:
        if self._manager is None:
            raise NotReady(f"the process manager is not built yet ({self.state})")
        return self._manager

    def build(self) -> None:
        """Create the engine and the manager and deploy the shipped BPMN (once)."""
        with self._lock:
            if self._engine is not None:
                return
            from processes.engine import EmbeddedEngine

            engine = EmbeddedEngine(self.bus, self.store, checkpoint=checkpoint_path(self.store))
            # messages published before a restart still wait for subscriptions; both followers start from their
            # marks beside the log, so a start reads what changed since the last one, not the whole log
            marks = log_marks_for(self.store)
            engine.messages.rebuild(self.store, marks=marks)
            self.shipped = deploy_shipped(self.bus, shipped_files(self.definitions))
            follower = DeploymentFollower(self.store, engine, marks=marks)
            follower.learn()  # every version of every tenant: the unfinished instances recovered next need theirs
            # before the manager's listener: the manager, woken by its window, then finds this one offered too
            self.runner.share_windows(frozenset({ProcessDeployed.type_name()}), follower.offer)
            manager = ProcessManager(engine, self.bus, self.store, self.documents, self._learned_up_to_runner)
            self.runner.share_windows(manager.types, manager.offer)
            # all at once: publishing checks process ids against the catalog as soon as it is not empty
            for learned in follower.learned:
                if learned.tenant == SHIPPED and learned.error is None:
                    DEPLOYED_PROCESSES.add(learned.process_id)
            follower.on_shipped = DEPLOYED_PROCESSES.add
            self.deployments, self._engine, self._manager = follower, engine, manager
            self._requests = RequestFollower(engine, self.bus, self.store, self.documents)
            self.runner.share_windows(self._requests.types, self._requests.offer)

    def _learned_up_to_runner(self) -> int:
        """The manager's read limit: the runner's position, once the engine knows every deployment up to it (so a
        case opened after a deploy starts the new version)."""
        limit = self.runner.position
        deployments = self.deployments
        return deployments.learn(limit) if deployments is not None else limit

    def learn(self) -> None:
        """Take the deployments stored so far now (after a deploy in this process: its next start uses them)."""
        if self.deployments is not None:
            self.deployments.learn()

    def start(self) -> None:
        """Build, recover unfinished instances, then start the engine's threads and the manager."""
        try:
            self.build()
            # lazily: the unfinished instances are known at once, each is folded and indexed on the engine's
            # recovery thread (or first, when something arrives for it), so a restart with many open instances
            # is ready in seconds
            self.recovered = self.engine.recover(lazily=True)
            if self.recovered:
                log.info("recovered %d unfinished process instances", len(self.recovered))
            self._unregister = register_task_lookup(self.engine.user_task_ids)
            self.engine.start_background()
            self.manager.start()
            if self._requests is not None:
                self._requests.start()
            self.state = RUNNING
        except Exception as exc:
            self.state, self.error = FAILED, repr(exc)
            log.exception("processes failed to start")
            raise
        finally:
            self._ready.set()

    def start_in_background(self) -> None:
        """Start on a thread, so the API serves while the engine loads; `wait_ready` waits for it."""
        def run() -> None:
            # a failure is recorded in state/error (and logged) for /readyz; the API keeps serving
            with contextlib.suppress(Exception):
                self.start()

        self._starter = threading.Thread(target=run, name="casestream-processes-start", daemon=True)
        self._starter.start()

    def wait_ready(self, timeout: float) -> bool:
        """Block until the processes run (True) or failed to start / timed out (False)."""
        return self._ready.wait(timeout) and self.state == RUNNING

    def position(self) -> int | None:
        """The last log position the process manager handled (None until it is built)."""
        manager = self._manager
        return manager.position if manager is not None else None

    def status(self) -> dict[str, Any]:
        """What /readyz reports: state, the manager's position and lag behind the log, the engine's open, loaded and
        still-recovering instances, and the last error (reads the log head: call it off the event loop)."""
        manager, engine = self._manager, self._engine
        lag = process_lag(self.store, manager.position) if manager is not None else None
        return {
            "state": self.state,
            "running": manager is not None and manager.running,
            "position": manager.position if manager is not None else None,
            "lag_events": lag.events if lag is not None else None,
            "lag_seconds": round(lag.seconds, 3) if lag is not None else None,
            "instances": None if engine is None else {
                "open": engine.open_instances(), "loaded": engine.loaded_instances(),
                "recovering": engine.recovering},
            "error": self.error or (manager.last_error if manager is not None else None)
            or (self._requests.last_error if self._requests is not None else None) or self._refused(),
        }

    def _refused(self) -> str | None:
        """A deployment the engine could not take (a shipped file refused, a stored version it cannot run)."""
        refused = [o.message() for o in self.shipped if o.status == "refused"]
        deployments = self.deployments
        refused += [f"{d.process_id} version {d.version}: {d.error}" for d in
                    (deployments.learned if deployments is not None else []) if d.error is not None]
        return "; ".join(refused) or None

    def _save_marks(self, engine: EmbeddedEngine) -> None:
        """At a stop, the followers' marks: the deployment follower's where the manager had it read to (near the head),
        the message buffer's at the head; the next start reads only the log after them."""
        try:
            if self.deployments is not None:
                self.deployments.save()
            engine.messages.save(self.store)
        except Exception:  # a mark only saves reading at the next start: never a reason to fail a stop
            log.exception("saving the process followers' marks failed")

    def stop(self) -> None:
        if self._starter is not None:
            self._starter.join(timeout=60)
            self._starter = None
        if self._requests is not None:
            self._requests.stop()
        if self._manager is not None:
            self._manager.stop()
        if self._engine is not None:
            self._engine.stop()
            self._save_marks(self._engine)
        if self._unregister is not None:
            self._unregister()
            self._unregister = None
        self.state = STOPPED
