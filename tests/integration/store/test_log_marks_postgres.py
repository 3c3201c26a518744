"""Follower marks on PostgreSQL (the distributed process worker's store): the deployment follower's mark is kept in
the event store's database, and a restart reads only the log after it."""

from __future__ import annotations

from adapters.log_marks import PostgresLogMarks, log_marks_for
from commands.bus import Actor, CommandBus
from domain.process_deployment import SHIPPED
from infra.server import Server
from processes.deployment_follower import DeploymentFollower
from processes.deployments import Resource, deploy_files
from processes.engine import EmbeddedEngine
from tests.postgres_store import postgres_store, scratch_database
from tests.unit.conftest import open_claim, publish_claim
from tests.unit.engine_models import one_task
from tests.unit.test_follower_marks import CountingStore

V1 = one_task("pay", "test.record")
V2 = V1.replace(b'name="pay"', b'name="pay v2"')
TYPES = frozenset({"test.record"})


def test_a_restart_on_postgres_reads_only_the_log_after_the_mark(postgres_server: Server) -> None:
    with scratch_database(postgres_server, "marks") as dbname:
        writer, reader = postgres_store(postgres_server, dbname), postgres_store(postgres_server, dbname)
        try:
            bus = CommandBus(writer)
            deploy_files(bus, Actor("casestream", SHIPPED, ("process",)), [Resource("pay.bpmn", V1)],
                         task_types=TYPES)
            deploy_files(bus, Actor("root", "acme", ("admin",)), [Resource("pay.bpmn", V2)], task_types=TYPES)
            marks = log_marks_for(reader)
            assert isinstance(marks, PostgresLogMarks)
            running = DeploymentFollower(reader, EmbeddedEngine(CommandBus(reader), reader, task_types=TYPES),
                                         marks=marks)
            running.learn()
            alice = Actor("alice", "acme", ("caseworker",))
            publish_claim(bus, alice)
            for n in range(40):
                open_claim(bus, alice, title=f"case {n}")
            running.learn()
            running.save()
            head = reader.max_position()

            counting = CountingStore(reader)
            engine = EmbeddedEngine(CommandBus(reader), counting, task_types=TYPES)
            restarted = DeploymentFollower(counting, engine, marks=log_marks_for(reader))
            assert restarted.learn() == head
            assert counting.lowest_read() == head and counting.by_aggregate == 2
            acme, globex = engine.deployed("pay", "acme"), engine.deployed("pay", "globex")
            assert acme is not None and globex is not None and acme.content_hash != globex.content_hash
        finally:
            writer.close()
            reader.close()
