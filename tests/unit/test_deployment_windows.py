"""The deployment follower takes deployments from the runner's decoded windows (`offer`) and reads the log only for
what no offered window covers (reads counted through a wrapper of the real SQLite store)."""

from __future__ import annotations

from adapters.event_store import RecorderEventStore
from commands.bus import CommandBus
from domain.process_deployment import xml_hash
from processes.deployment_follower import DeploymentFollower
from processes.deployments import Resource, deploy_files
from processes.engine import EmbeddedEngine
from tests.unit.test_follower_marks import ADMIN, CountingStore
from tests.unit.test_process_deployments import SHIPPER, V1, V2

TYPES = frozenset({"test.record"})


def follower_reading(store: RecorderEventStore, bus: CommandBus) -> tuple[DeploymentFollower, CountingStore]:
    """A follower whose store reads are counted."""
    counting = CountingStore(store)
    return DeploymentFollower(counting, EmbeddedEngine(bus, store, task_types=TYPES)), counting


def test_offered_windows_are_taken_without_reading_the_log(store: RecorderEventStore, bus: CommandBus) -> None:
    follower, counting = follower_reading(store, bus)
    start = store.max_position()
    deploy_files(bus, SHIPPER, [Resource("pay.bpmn", V1.encode())], task_types=TYPES)
    at_v1 = store.max_position()
    deploy_files(bus, ADMIN, [Resource("pay.bpmn", V2.encode())], task_types=TYPES)
    head = store.max_position()
    for after, last in ((start, at_v1), (at_v1, head)):  # the runner's windows, as it decoded them
        follower.offer(after, last, store.read_batch(after, last - after)[0])
    assert follower.learn(at_v1 - 1) == at_v1 - 1  # a limit inside a window: the rest of it stays offered
    assert follower.learn(head) == head
    assert counting.windows == [] and follower.reads == 0
    deployed = follower.engine.deployed("pay", ADMIN.tenant)
    assert deployed is not None and deployed.content_hash == xml_hash(V2)
    assert [d.process_id for d in follower.learned] == ["pay", "pay"]


def test_a_gap_before_the_offered_windows_is_read_from_the_log(store: RecorderEventStore, bus: CommandBus) -> None:
    follower, counting = follower_reading(store, bus)
    deploy_files(bus, SHIPPER, [Resource("pay.bpmn", V1.encode())], task_types=TYPES)
    missed = store.max_position()  # stored before the follower was offered windows: not in any
    deploy_files(bus, ADMIN, [Resource("pay.bpmn", V2.encode())], task_types=TYPES)
    head = store.max_position()
    follower.offer(missed, head, store.read_batch(missed, head - missed)[0])
    assert follower.learn(head) == head
    assert [after for after, _last in counting.windows] == [0]  # one read from the start (to the head it found)
    assert [d.content_hash for d in follower.learned] == [xml_hash(V1), xml_hash(V2)]
