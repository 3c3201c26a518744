"""Process deployments on PostgreSQL (the distributed mode's store, what `casestream process-worker` reads): versions
stored by one writer, learned in log order by an engine elsewhere, each tenant its own."""

from __future__ import annotations

from commands.bus import Actor, CommandBus
from domain.process_deployment import SHIPPED, xml_hash
from infra.server import Server
from processes.deployment_follower import DeploymentFollower
from processes.deployments import Resource, deploy_files
from processes.engine import EmbeddedEngine
from tests.postgres_store import postgres_store, scratch_database
from tests.unit.engine_models import one_task

V1 = one_task("pay", "test.record")
V2 = V1.replace(b'name="pay"', b'name="pay v2"')
TYPES = frozenset({"test.record"})


def test_an_engine_learns_every_version_from_the_postgres_log(postgres_server: Server) -> None:
    with scratch_database(postgres_server, "deploy") as dbname:
        writer, reader = postgres_store(postgres_server, dbname), postgres_store(postgres_server, dbname)
        try:
            bus = CommandBus(writer)
            shipped = deploy_files(bus, Actor("casestream", SHIPPED, ("process",)), [Resource("pay.bpmn", V1)],
                                   task_types=TYPES)
            own = deploy_files(bus, Actor("root", "acme", ("admin",)), [Resource("pay.bpmn", V2)], task_types=TYPES)
            again = deploy_files(bus, Actor("root", "acme", ("admin",)), [Resource("pay.bpmn", V2)], task_types=TYPES)
            assert [(o.status, o.version) for o in (*shipped, *own, *again)] == [
                ("deployed", 1), ("deployed", 1), ("unchanged", 1)]
            engine = EmbeddedEngine(CommandBus(reader), reader, task_types=TYPES)
            follower = DeploymentFollower(reader, engine)
            assert follower.learn() == reader.max_position()
            acme, globex = engine.deployed("pay", "acme"), engine.deployed("pay", "globex")
            assert acme is not None and acme.content_hash == xml_hash(V2.decode())
            assert globex is not None and globex.content_hash == xml_hash(V1.decode())
        finally:
            writer.close()
            reader.close()
