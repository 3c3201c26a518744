"""The pyzeebe adapter against the Zeebe gateway STAND-IN (tests/standins/zeebe_gateway.py; no Zeebe may run here).

Cases live in a real CommandBus on a SQLite event store; the ZeebeWorker runs the same processes.workers
functions as the embedded engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import grpc
import pytest
from pyzeebe import create_insecure_channel
from pyzeebe.errors import ProcessDefinitionNotFoundError
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto.gateway_pb2_grpc import GatewayStub

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore, sqlite_event_store
from adapters.sqlite_documents import SqliteDocumentStore
from adapters.zeebe_engine import ZeebeConfig, ZeebeProcesses, build_worker
from commands import messages as m
from commands.bus import Actor, CommandBus
from domain.case import Case
from processes.bpmn import BpmnRejected
from projections.catalog import ALL
from projections.queries import case_timeline, get_case
from tests.flaky_store import LOST, FlakyStore
from tests.standins.zeebe_gateway import ZeebeGatewayStandIn, running_gateway
from tests.unit.conftest import TENANT, claim_definition
from tests.waiting import until

MODELS = Path(__file__).parent / "zeebe_models"
ALICE = Actor("alice", TENANT, ("caseworker",))
CONFIG = ZeebeConfig(tenant="no-such-tenant", request_timeout_ms=2_000, retry_backoff_ms=300, job_timeout_ms=5_000)


@dataclass
class Stack:
    gateway: ZeebeGatewayStandIn
    channel: grpc.aio.Channel
    processes: ZeebeProcesses
    store: RecorderEventStore
    bus: CommandBus

    def case(self, case_id: str) -> Case:
        return Case.replay(UUID(case_id), self.store.events_of(UUID(case_id)))

    def open_claim(self, amount: float) -> str:
        return self.bus.dispatch(m.OpenCase(definition_key="claim", title="Hail", data={"amount": amount}), ALICE).id

    def instance_state(self, key: int) -> str:
        return self.gateway.broker.instances[key].state

    def requests(self, rpc: str) -> list[dict[str, Any]]:
        return [body for name, body in self.gateway.broker.requests if name == rpc]


@asynccontextmanager
async def zeebe_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """The stand-in gateway, a pyzeebe channel to it, and a claim definition in a SQLite event store."""
    store = sqlite_event_store(tmp_path / "events.sqlite")  # where `casestream` with DATA_DIR=tmp_path looks
    bus = CommandBus(store)
    bus.dispatch(claim_definition(), ALICE)
    try:
        async with running_gateway() as gateway:
            channel = create_insecure_channel(grpc_address=gateway.address)
            try:
                yield Stack(gateway, channel, ZeebeProcesses(channel, CONFIG), store, bus)
            finally:
                await channel.close()
    finally:
        store.close()


@asynccontextmanager
async def working(stack: Stack, bus: CommandBus | None = None) -> AsyncIterator[None]:
    """A ZeebeWorker (one task per registered task type) polling the stand-in while the block runs."""
    worker = build_worker(stack.channel, bus or stack.bus, CONFIG)
    task = asyncio.create_task(worker.work())
    try:
        yield
    finally:
        await worker.stop()
        await asyncio.wait_for(task, 10)


async def test_a_deployed_process_drives_a_case_through_the_worker_and_a_correlated_message(tmp_path):
    async with zeebe_stack(tmp_path) as stack:
        keys = await stack.processes.deploy(MODELS / "claim_handling.bpmn")
        assert list(keys) == ["claim-handling"]
        case_id = stack.open_claim(5000)
        key = await stack.processes.start(
            "claim-handling", tenant=TENANT, case_id=case_id, variables={"amount": 5000, "reviewer": "carol"}
        )
        async with working(stack):
            await until(lambda: stack.gateway.broker.instances[key].tokens == {"Wait_reply": 1}, "the message wait")
            case = stack.case(case_id)
            assert (case.stage, case.assignee, case.queue, case.status) == ("review", "carol", "fraud", "open")
            # a message for another case does not correlate
            await stack.processes.publish_message("customer-replied", "another-case", {"reply": "wrong"}, ttl_ms=0)
            await asyncio.sleep(0.2)
            assert stack.instance_state(key) == "active"
            await stack.processes.publish_message("customer-replied", case_id, {"reply": "photos sent"}, ttl_ms=0)
            await until(lambda: stack.instance_state(key) == "completed", "the instance to complete")
        closed = stack.case(case_id)
        assert closed.status == "closed"
        events = stack.store.events_of(UUID(case_id))
        assert [type(e).__name__ for e in events] == [
            "CaseOpened", "CaseMovedToStage", "CaseAssigned", "CaseQueued", "CaseClosed",
        ]
        assert {e.meta.actor for e in events[1:]} == {"process:claim-handling"}
        assert {e.meta.correlation_id for e in events[1:]} == {str(key)}
        assert events[-1].reason == "customer replied: photos sent"  # type: ignore[attr-defined]
        assert events[-1].resolution == "approved"  # type: ignore[attr-defined]
        assert [body["key"] for body in stack.requests("CompleteJob")] == sorted(
            body["key"] for body in stack.requests("CompleteJob")
        )
        assert len(stack.requests("CompleteJob")) == 4
        assert stack.gateway.broker.variables_of(key)["assignee"] == "carol"  # the worker's output variable
        assert stack.requests("FailJob") == [] and stack.requests("ThrowError") == []
        documents = SqliteDocumentStore(tmp_path / "views.db", ALL)
        try:
            EmbeddedRunner(stack.store, documents, ALL).catch_up()
            view = get_case(documents, TENANT, case_id)
            assert (view["stage"], view["assignee"], view["queue"], view["status"]) == (
                "review", "carol", "fraud", "closed"
            )
            assert case_timeline(documents, TENANT, case_id)[1]["actor"] == "process:claim-handling"
        finally:
            documents.close()


async def test_a_small_claim_takes_the_default_flow_and_skips_the_fraud_queue(tmp_path):
    async with zeebe_stack(tmp_path) as stack:
        await stack.processes.deploy(MODELS / "claim_handling.bpmn")
        case_id = stack.open_claim(200)
        key = await stack.processes.start(
            "claim-handling", tenant=TENANT, case_id=case_id, variables={"amount": 200, "reviewer": "bob"}
        )
        async with working(stack):
            await until(lambda: stack.gateway.broker.instances[key].tokens == {"Wait_reply": 1}, "the message wait")
        case = stack.case(case_id)
        assert (case.stage, case.assignee, case.queue) == ("review", "bob", None)


async def test_a_domain_refusal_is_thrown_as_a_bpmn_error_and_caught_by_the_boundary_event(tmp_path):
    async with zeebe_stack(tmp_path) as stack:
        await stack.processes.deploy(MODELS / "refused_move.bpmn")
        case_id = stack.open_claim(100)
        key = await stack.processes.start("skip-to-done", tenant=TENANT, case_id=case_id)
        async with working(stack):
            await until(lambda: stack.instance_state(key) == "completed", "the instance to complete")
        thrown = stack.requests("ThrowError")
        assert [t["code"] for t in thrown] == ["stage-transition-not-allowed"]
        assert "new" in thrown[0]["message"] and "done" in thrown[0]["message"]
        case = stack.case(case_id)
        assert (case.stage, case.queue) == ("new", "fraud")  # the refused move stored nothing; the catch path ran
        assert stack.gateway.broker.incidents == []


async def test_a_technical_failure_fails_the_job_with_one_retry_less_and_the_retry_succeeds(tmp_path):
    async with zeebe_stack(tmp_path) as stack:
        await stack.processes.deploy(MODELS / "assign_once.bpmn")
        case_id = stack.open_claim(100)
        key = await stack.processes.start(
            "assign-once", tenant=TENANT, case_id=case_id, variables={"assignee": "carol"}
        )
        async with working(stack, CommandBus(FlakyStore(stack.store, failures=1))):
            await until(lambda: stack.instance_state(key) == "completed", "the instance to complete")
        failed = stack.requests("FailJob")
        assert len(failed) == 1
        # back-off = base * 2 ** (3 - retries left): 300 ms * 2 ** 2 with one retry left
        assert (failed[0]["retries"], failed[0]["backoff_ms"]) == (1, 1200)
        assert LOST in failed[0]["message"]
        assert [c["key"] for c in stack.requests("CompleteJob")] == [failed[0]["key"]]
        assert stack.case(case_id).assignee == "carol"
        assert stack.case(case_id).version == 2  # assigned once


async def test_a_job_out_of_retries_raises_an_incident_and_changes_nothing(tmp_path):
    async with zeebe_stack(tmp_path) as stack:
        await stack.processes.deploy(MODELS / "assign_once.bpmn")
        case_id = stack.open_claim(100)
        key = await stack.processes.start(
            "assign-once", tenant=TENANT, case_id=case_id, variables={"assignee": "carol"}
        )
        async with working(stack, CommandBus(FlakyStore(stack.store, failures=10))):
            await until(lambda: bool(stack.gateway.broker.incidents), "an incident")
        assert [f["retries"] for f in stack.requests("FailJob")] == [1, 0]
        assert stack.instance_state(key) == "active"
        assert stack.gateway.broker.incidents[0]["element_id"] == "Task_assign"
        assert stack.case(case_id).assignee is None


async def test_a_message_published_with_a_ttl_before_the_wait_correlates_when_the_wait_opens(tmp_path):
    async with zeebe_stack(tmp_path) as stack:
        await stack.processes.deploy(MODELS / "claim_handling.bpmn")
        case_id = stack.open_claim(200)
        await stack.processes.publish_message("customer-replied", case_id, {"reply": "early"}, ttl_ms=60_000)
        key = await stack.processes.start(
            "claim-handling", tenant=TENANT, case_id=case_id, variables={"amount": 200, "reviewer": "bob"}
        )
        async with working(stack):
            await until(lambda: stack.instance_state(key) == "completed", "the instance to complete")
        assert stack.case(case_id).status == "closed"
        assert stack.gateway.broker.variables_of(key)["reply"] == "early"


async def test_jobs_name_the_tenant_and_case_the_instance_runs_for(tmp_path):
    async with zeebe_stack(tmp_path) as stack:
        await stack.processes.deploy(MODELS / "assign_once.bpmn")
        case_id = stack.open_claim(100)
        await stack.processes.start("assign-once", tenant=TENANT, case_id=case_id, variables={"assignee": "x"})
        stub = GatewayStub(stack.channel)
        responses = [r async for r in stub.ActivateJobs(pb.ActivateJobsRequest(
            type="case.assign", worker="probe", timeout=1000, maxJobsToActivate=5, requestTimeout=1000,
        ))]
        jobs = [job for response in responses for job in response.jobs]
        assert len(jobs) == 1
        assert json.loads(jobs[0].variables) == {"tenant": TENANT, "caseId": case_id, "assignee": "x"}
        assert (jobs[0].retries, jobs[0].elementId, jobs[0].bpmnProcessId) == (2, "Task_assign", "assign-once")


# --- the stand-in refuses what Zeebe refuses, for our subset --------------------------------------------------------

async def test_starting_an_unknown_process_is_not_found(tmp_path):
    async with zeebe_stack(tmp_path) as stack:
        with pytest.raises(ProcessDefinitionNotFoundError):
            await stack.processes.start("no-such-process", tenant=TENANT)
        stub = GatewayStub(stack.channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.CreateProcessInstance(pb.CreateProcessInstanceRequest(bpmnProcessId="no-such-process"))
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_completing_failing_or_throwing_on_an_unknown_job_is_not_found(tmp_path):
    async with zeebe_stack(tmp_path) as stack:
        stub = GatewayStub(stack.channel)
        calls = [
            stub.CompleteJob(pb.CompleteJobRequest(jobKey=42, variables="{}")),
            stub.FailJob(pb.FailJobRequest(jobKey=42, retries=1, errorMessage="x")),
            stub.ThrowError(pb.ThrowErrorRequest(jobKey=42, errorCode="some-code")),
        ]
        for call in calls:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await call
            assert raised.value.code() == grpc.StatusCode.NOT_FOUND
            assert "42" in (raised.value.details() or "")


async def test_bad_requests_are_invalid_arguments(tmp_path):
    async with zeebe_stack(tmp_path) as stack:
        stub = GatewayStub(stack.channel)
        bad_bpmn = pb.Resource(name="bad.bpmn", content=b"<definitions>not bpmn")
        not_an_object = pb.CreateProcessInstanceRequest(bpmnProcessId="assign-once", variables="[1, 2]")
        await stack.processes.deploy(MODELS / "assign_once.bpmn")
        calls = [
            stub.DeployResource(pb.DeployResourceRequest(resources=[bad_bpmn])),
            stub.DeployResource(pb.DeployResourceRequest(resources=[])),
            stub.CreateProcessInstance(not_an_object),
        ]
        for call in calls:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await call
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            async for _response in stub.ActivateJobs(pb.ActivateJobsRequest(type="case.assign", timeout=1000)):
                pass
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "maxJobsToActivate" in (raised.value.details() or "")


async def test_a_repeated_message_id_is_already_exists_while_the_first_is_buffered(tmp_path):
    async with zeebe_stack(tmp_path) as stack:
        stub = GatewayStub(stack.channel)
        message = pb.PublishMessageRequest(name="customer-replied", correlationKey="c1", timeToLive=60_000,
                                           messageId="m-1", variables="{}")
        await stub.PublishMessage(message)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.PublishMessage(message)
        assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_the_adapter_refuses_bad_bpmn_before_zeebe_sees_it(tmp_path):
    source = (MODELS / "assign_once.bpmn").read_text().replace('type="case.assign"', 'type="case.teleport"')
    path = tmp_path / "teleport.bpmn"
    path.write_text(source)
    async with zeebe_stack(tmp_path) as stack:
        with pytest.raises(BpmnRejected) as raised:
            await stack.processes.deploy(path)
        assert "Task_assign" in str(raised.value) and "case.teleport" in str(raised.value)
        reserved = tmp_path / "reserved.bpmn"  # fine for Zeebe, but SpiffWorkflow reserves the id `End`
        reserved.write_text((MODELS / "assign_once.bpmn").read_text().replace('"End_event"', '"End"'))
        with pytest.raises(BpmnRejected, match="'End' is reserved"):
            await stack.processes.deploy(reserved)
        assert stack.gateway.broker.definitions == {}


async def test_topology_and_redeploying_an_unchanged_file_keeps_its_key(tmp_path):
    async with zeebe_stack(tmp_path) as stack:
        first = await stack.processes.deploy(MODELS / "assign_once.bpmn")
        again = await stack.processes.deploy(MODELS / "assign_once.bpmn")
        assert first == again
        topology = await stack.processes.client.topology()
        assert (topology.cluster_size, topology.partitions_count) == (1, 1)
        assert topology.brokers[0].port == int(stack.gateway.address.rsplit(":", 1)[1])


async def test_the_zeebe_worker_command_deploys_runs_jobs_and_stops_on_sigint(tmp_path):
    async with zeebe_stack(tmp_path) as stack:
        case_id = stack.open_claim(100)
        env = {
            **os.environ, "CASESTREAM_DATA_DIR": str(tmp_path), "CASESTREAM_ZEEBE_ADDRESS": stack.gateway.address,
            "CASESTREAM_ZEEBE_TENANT": TENANT, "CASESTREAM_ZEEBE_REQUEST_TIMEOUT_MS": "1000",
        }
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "casestream", "zeebe-worker", "--deploy", str(MODELS / "assign_once.bpmn"),
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await until(lambda: bool(stack.gateway.broker.definitions), "the worker's deployment", timeout=60)
            key = await stack.processes.start(
                "assign-once", tenant=TENANT, case_id=case_id, variables={"assignee": "carol"}
            )
            await until(lambda: stack.instance_state(key) == "completed", "the instance to complete")
            assert stack.case(case_id).assignee == "carol"
        finally:
            if worker.returncode is None:
                worker.send_signal(signal.SIGINT)
            output, _ = await asyncio.wait_for(worker.communicate(), 30)
        assert worker.returncode == 0, output.decode()
        text = output.decode()
        assert "deployed assign-once" in text and "case.move-stage" in text and "stopped" in text


# --- the stand-in's job activation semantics --------------------------------------------------------------------------

def _activate(job_type: str, *, max_jobs: int = 5, timeout_ms: int = 10_000, request_timeout_ms: int = -1,
              fetch: Sequence[str] = ()) -> pb.ActivateJobsRequest:
    return pb.ActivateJobsRequest(type=job_type, worker="probe", timeout=timeout_ms, maxJobsToActivate=max_jobs,
                                  requestTimeout=request_timeout_ms, fetchVariable=list(fetch))


async def _jobs(stub: GatewayStub, request: pb.ActivateJobsRequest) -> list[pb.ActivatedJob]:
    return [job async for response in stub.ActivateJobs(request) for job in response.jobs]


async def test_activate_jobs_long_polls_until_a_job_of_its_type_is_created(tmp_path):
    async with zeebe_stack(tmp_path) as stack:
        await stack.processes.deploy(MODELS / "assign_once.bpmn")
        stub = GatewayStub(stack.channel)
        waiting = asyncio.create_task(_jobs(stub, _activate("case.assign", request_timeout_ms=10_000)))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await stack.processes.start("assign-once", tenant=TENANT, variables={"assignee": "x"})
        jobs = await asyncio.wait_for(waiting, 20)
        assert [job.type for job in jobs] == ["case.assign"]  # a poll that merely timed out would hold no job


async def test_activation_respects_max_jobs_type_and_fetch_variables(tmp_path):
    async with zeebe_stack(tmp_path) as stack:
        await stack.processes.deploy(MODELS / "assign_once.bpmn")
        for n in range(3):
            await stack.processes.start("assign-once", tenant=TENANT, variables={"assignee": f"u{n}", "n": n})
        stub = GatewayStub(stack.channel)
        assert await _jobs(stub, _activate("case.close")) == []
        first = await _jobs(stub, _activate("case.assign", max_jobs=2, fetch=["n"]))
        assert [json.loads(job.variables) for job in first] == [{"n": 0}, {"n": 1}]
        rest = await _jobs(stub, _activate("case.assign", max_jobs=5))
        assert len(rest) == 1 and json.loads(rest[0].variables)["assignee"] == "u2"
        assert await _jobs(stub, _activate("case.assign")) == []  # all three are locked by their activations


async def test_a_job_not_finished_within_its_timeout_is_handed_out_again_with_its_retries(tmp_path):
    async with zeebe_stack(tmp_path) as stack:
        await stack.processes.deploy(MODELS / "assign_once.bpmn")
        await stack.processes.start("assign-once", tenant=TENANT, variables={"assignee": "x"})
        stub = GatewayStub(stack.channel)
        [first] = await _jobs(stub, _activate("case.assign", timeout_ms=1_500))
        assert await _jobs(stub, _activate("case.assign")) == []
        [again] = await _jobs(stub, _activate("case.assign", request_timeout_ms=5_000))
        assert (again.key, again.retries) == (first.key, first.retries)


async def test_a_failed_job_waits_out_its_back_off_before_it_is_activated_again(tmp_path):
    async with zeebe_stack(tmp_path) as stack:
        await stack.processes.deploy(MODELS / "assign_once.bpmn")
        await stack.processes.start("assign-once", tenant=TENANT, variables={"assignee": "x"})
        stub = GatewayStub(stack.channel)
        [job] = await _jobs(stub, _activate("case.assign"))
        await stub.FailJob(pb.FailJobRequest(jobKey=job.key, retries=1, errorMessage="boom", retryBackOff=1_500))
        assert await _jobs(stub, _activate("case.assign")) == []  # still backing off
        [again] = await _jobs(stub, _activate("case.assign", request_timeout_ms=5_000))
        assert (again.key, again.retries) == (job.key, 1)
