"""`casestream demo --if-empty` loads into a store that holds only the shipped processes' deployments (every start
with processes on stores them, a stack's process worker possibly before the demo is loaded), and into no other."""

from __future__ import annotations

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore
from adapters.sqlite_documents import SqliteDocumentStore
from casestream.demo import holds_work
from commands.bus import Actor, CommandBus
from commands.messages import DefineRecordType
from processes.platform import Processes
from tests.unit.conftest import TENANT


def test_only_the_shipped_deployments_is_no_work_and_one_command_more_is(
        store: RecorderEventStore, bus: CommandBus, documents: SqliteDocumentStore, runner: EmbeddedRunner) -> None:
    assert not holds_work(store)
    processes = Processes(bus, store, documents, runner)
    try:
        processes.build()
    finally:
        processes.stop()
    assert store.max_position() > 0  # the shipped files were deployed as events
    assert not holds_work(store)
    bus.dispatch(DefineRecordType(key="bench", name="Bench", schema={"type": "object"}),
                 Actor("admin", TENANT, ("admin",)))
    assert holds_work(store)
