"""Processes in the platform: the embedded engine with the shipped BPMN deployed, and the process manager.

`build_processes` deploys every file in processes/definitions/ (so case definitions may name them) and
subscribes the manager to the runner; `start()` recovers unfinished instances from the event store before the
engine's threads and the manager start, so a restarted server resumes open user tasks and pending timers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from adapters.embedded_runner import EmbeddedRunner
from commands.bus import CommandBus
from commands.ports import EventStore
from domain.definition import DEPLOYED_PROCESSES
from processes.bpmn import DeployedProcess
from processes.engine import EmbeddedEngine
from processes.manager import ProcessManager
from processes.saga_workers import register_task_lookup
from projections.ports import DocumentStore

log = logging.getLogger(__name__)
DEFINITIONS = Path(__file__).resolve().parent / "definitions"


def shipped_files(folder: Path = DEFINITIONS) -> list[Path]:
    """The BPMN files shipped with casestream (deployed at start)."""
    return sorted(folder.glob("*.bpmn"))


@dataclass
class Processes:
    """The running process side of a platform: engine, manager and what was deployed."""

    engine: EmbeddedEngine
    manager: ProcessManager
    deployed: list[DeployedProcess] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    _unregister: Callable[[], None] | None = None

    def deploy(self, xml: bytes, filename: str) -> DeployedProcess:
        """Deploy one BPMN file (checked; idempotent by content) and let definitions name its process."""
        deployed = self.engine.deploy(xml, filename)
        DEPLOYED_PROCESSES.add(deployed.process_id)
        self.deployed.append(deployed)
        return deployed

    def start(self) -> None:
        """Recover unfinished instances, then start the engine's threads and the manager."""
        self.recovered = self.engine.recover()
        if self.recovered:
            log.info("recovered %d unfinished process instances", len(self.recovered))
        self._unregister = register_task_lookup(self.engine.open_user_tasks)
        self.engine.start_background()
        self.manager.start()

    def stop(self) -> None:
        self.manager.stop()
        self.engine.stop()
        if self._unregister is not None:
            self._unregister()
            self._unregister = None


def build_processes(
    bus: CommandBus, store: EventStore, documents: DocumentStore, runner: EmbeddedRunner,
    *, definitions: Path = DEFINITIONS,
) -> Processes:
    """An engine with the shipped BPMN deployed and a manager following the runner (not started yet)."""
    engine = EmbeddedEngine(bus, store)
    manager = ProcessManager(engine, bus, store, documents, lambda: runner.position)
    processes = Processes(engine, manager)
    for path in shipped_files(definitions):
        processes.deploy(path.read_bytes(), path.name)
    runner.subscribe(manager.notify)
    return processes
