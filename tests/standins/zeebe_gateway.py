"""A Zeebe gateway STAND-IN: a gRPC server speaking the subset of the Zeebe gateway protocol our adapter uses.

The Zeebe engine's licence keeps it off this machine, so the pyzeebe adapter (adapters/zeebe_engine.py) is tested
against this stand-in. It is NOT Zeebe. It serves the gateway protocol from the stubs that ship with pyzeebe
(`pyzeebe.proto.gateway_pb2_grpc.GatewayServicer`) on 127.0.0.1, for these RPCs:

- Topology: one broker, one partition;
- DeployResource: each .bpmn resource is checked with processes.bpmn (any job type allowed, as in Zeebe) and
  must stay inside the subset tests/standins/zeebe_model.py runs; an unchanged resource keeps its key/version;
- CreateProcessInstance: by process id (latest or a given version) or definition key, with JSON variables;
- ActivateJobs (server streaming): jobs of `type` in the requested tenants, at most `maxJobsToActivate`, each
  locked for `timeout` ms; with none ready it long-polls up to `requestTimeout` ms (0: 10 s, negative: no wait);
- CompleteJob, FailJob (retries, retryBackOff), ThrowError (caught by an error boundary event, else an
  incident), PublishMessage (correlation key, TTL, messageId).

Refusals use Zeebe's status codes: INVALID_ARGUMENT for bad requests and bad BPMN, NOT_FOUND for an unknown
process or job, FAILED_PRECONDITION for a job in an incident, ALREADY_EXISTS for a repeated messageId. Every
other RPC answers UNIMPLEMENTED. `broker` holds the state; `broker.requests` records the job commands received.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import grpc
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto.gateway_pb2_grpc import GatewayServicer, add_GatewayServicer_to_server

from tests.standins.zeebe_model import ACTIVATED, Broker, GatewayError, Job, parse_variables

DEFAULT_TENANT = "<default>"
DEFAULT_REQUEST_TIMEOUT_MS = 10_000
GATEWAY_VERSION = "8.6.0-casestream-standin"


def _tenant(value: str) -> str:
    return value or DEFAULT_TENANT


class ZeebeGatewayStandIn(GatewayServicer):
    """The gRPC servicer: translates requests into Broker calls and Broker refusals into gRPC statuses."""

    def __init__(self, broker: Broker | None = None) -> None:
        self.broker = broker or Broker(time.monotonic)
        self.address = ""
        self._changed = asyncio.Event()

    async def _notify(self) -> None:
        """Wake every long poll: set the event they hold and hand out a fresh one for the next wait."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    @staticmethod
    async def _refuse(context: grpc.aio.ServicerContext, error: GatewayError) -> None:
        await context.abort(getattr(grpc.StatusCode, error.status), error.message)

    # -- cluster and deployment ---------------------------------------------------------------------

    async def Topology(self, request: pb.TopologyRequest, context: Any) -> pb.TopologyResponse:
        host, _, port = self.address.rpartition(":")
        partition = pb.Partition(partitionId=1, role=pb.Partition.LEADER, health=pb.Partition.HEALTHY)
        broker = pb.BrokerInfo(nodeId=0, host=host, port=int(port or 0), partitions=[partition],
                               version=GATEWAY_VERSION)
        return pb.TopologyResponse(brokers=[broker], clusterSize=1, partitionsCount=1, replicationFactor=1,
                                   gatewayVersion=GATEWAY_VERSION)

    async def DeployResource(self, request: pb.DeployResourceRequest, context: Any) -> pb.DeployResourceResponse:
        tenant = _tenant(request.tenantId)
        try:
            definitions = self.broker.deploy([(r.name, bytes(r.content)) for r in request.resources], tenant)
        except GatewayError as error:
            await self._refuse(context, error)
            raise
        deployments = [
            pb.Deployment(process=pb.ProcessMetadata(
                bpmnProcessId=d.process_id, version=d.version, processDefinitionKey=d.key,
                resourceName=d.resource_name, tenantId=d.tenant,
            ))
            for d in definitions
        ]
        return pb.DeployResourceResponse(key=self.broker.next_key(), deployments=deployments, tenantId=tenant)

    async def CreateProcessInstance(
        self, request: pb.CreateProcessInstanceRequest, context: Any
    ) -> pb.CreateProcessInstanceResponse:
        try:
            variables = parse_variables(request.variables, "CreateProcessInstance")
            instance = self.broker.create_instance(
                request.bpmnProcessId, request.processDefinitionKey, request.version, variables,
                _tenant(request.tenantId),
            )
        except GatewayError as error:
            await self._refuse(context, error)
            raise
        await self._notify()
        definition = instance.definition
        return pb.CreateProcessInstanceResponse(
            processDefinitionKey=definition.key, bpmnProcessId=definition.process_id, version=definition.version,
            processInstanceKey=instance.key, tenantId=instance.tenant,
        )

    # -- jobs ---------------------------------------------------------------------------------------

    @staticmethod
    def _check_activation(request: pb.ActivateJobsRequest) -> None:
        if not request.type:
            raise GatewayError("INVALID_ARGUMENT", "Expected to activate jobs of a type, but no type was given")
        if request.maxJobsToActivate < 1:
            raise GatewayError("INVALID_ARGUMENT", f"Expected to activate at least 1 job, but "
                                                   f"maxJobsToActivate was {request.maxJobsToActivate}")
        if request.timeout < 1:
            raise GatewayError("INVALID_ARGUMENT", f"Expected a job timeout of at least 1 ms, but it was "
                                                   f"{request.timeout}")

    def _activated(self, job: Job, request: pb.ActivateJobsRequest) -> pb.ActivatedJob:
        job.state, job.worker = ACTIVATED, request.worker
        job.deadline = time.monotonic() + request.timeout / 1000
        instance = self.broker.instances[job.instance_key]
        return pb.ActivatedJob(
            key=job.key, type=job.type, processInstanceKey=job.instance_key,
            bpmnProcessId=instance.definition.process_id, processDefinitionVersion=instance.definition.version,
            processDefinitionKey=instance.definition.key, elementId=job.element_id, elementInstanceKey=job.key,
            customHeaders=json.dumps(job.headers), worker=request.worker, retries=job.retries,
            deadline=int(time.time() * 1000) + request.timeout,
            variables=json.dumps(self.broker.variables_for(job, list(request.fetchVariable))),
            tenantId=job.tenant,
        )

    async def ActivateJobs(
        self, request: pb.ActivateJobsRequest, context: Any
    ) -> AsyncIterator[pb.ActivateJobsResponse]:
        try:
            self._check_activation(request)
        except GatewayError as error:
            await self._refuse(context, error)
            raise
        tenants = set(request.tenantIds) or {DEFAULT_TENANT}
        poll_ms = request.requestTimeout or DEFAULT_REQUEST_TIMEOUT_MS
        give_up = time.monotonic() + max(poll_ms, 0) / 1000
        while True:
            # taken before the check (no await in between), so a change made after the check wakes this poll
            changed = self._changed
            now = time.monotonic()
            ready = list(self.broker.activatable(request.type, tenants, now))[: request.maxJobsToActivate]
            if ready:
                yield pb.ActivateJobsResponse(jobs=[self._activated(job, request) for job in ready])
                return
            if now >= give_up:
                return  # long poll over with nothing to hand out: the stream ends without a response
            wake = self.broker.next_change(now)
            wait = min(give_up, wake if wake is not None else give_up) - now
            with suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=max(wait, 0.001))

    async def CompleteJob(self, request: pb.CompleteJobRequest, context: Any) -> pb.CompleteJobResponse:
        try:
            variables = parse_variables(request.variables, "CompleteJob")
            self.broker.requests.append(("CompleteJob", {"key": request.jobKey, "variables": variables}))
            self.broker.complete_job(request.jobKey, variables)
        except GatewayError as error:
            await self._refuse(context, error)
            raise
        await self._notify()
        return pb.CompleteJobResponse()

    async def FailJob(self, request: pb.FailJobRequest, context: Any) -> pb.FailJobResponse:
        try:
            self.broker.requests.append(("FailJob", {
                "key": request.jobKey, "retries": request.retries, "message": request.errorMessage,
                "backoff_ms": request.retryBackOff,
            }))
            self.broker.fail_job(request.jobKey, request.retries, request.errorMessage, request.retryBackOff)
        except GatewayError as error:
            await self._refuse(context, error)
            raise
        await self._notify()
        return pb.FailJobResponse()

    async def ThrowError(self, request: pb.ThrowErrorRequest, context: Any) -> pb.ThrowErrorResponse:
        try:
            if not request.errorCode:
                raise GatewayError("INVALID_ARGUMENT", "Expected an error code, but none was given")
            variables = parse_variables(request.variables, "ThrowError")
            self.broker.requests.append(("ThrowError", {
                "key": request.jobKey, "code": request.errorCode, "message": request.errorMessage,
                "variables": variables,
            }))
            self.broker.throw_error(request.jobKey, request.errorCode, request.errorMessage, variables)
        except GatewayError as error:
            await self._refuse(context, error)
            raise
        await self._notify()
        return pb.ThrowErrorResponse()

    # -- messages -----------------------------------------------------------------------------------

    async def PublishMessage(self, request: pb.PublishMessageRequest, context: Any) -> pb.PublishMessageResponse:
        try:
            variables = parse_variables(request.variables, "PublishMessage")
            message = self.broker.publish(
                request.name, request.correlationKey, request.timeToLive, request.messageId, variables,
                _tenant(request.tenantId),
            )
        except GatewayError as error:
            await self._refuse(context, error)
            raise
        await self._notify()
        return pb.PublishMessageResponse(key=message.key, tenantId=message.tenant)


@asynccontextmanager
async def running_gateway(broker: Broker | None = None) -> AsyncIterator[ZeebeGatewayStandIn]:
    """Serve the stand-in on 127.0.0.1 (a free port) in the running event loop; `.address` is host:port."""
    # the stubs declare every RPC abstract; at run time the base class answers the ones we leave out UNIMPLEMENTED
    servicer = ZeebeGatewayStandIn(broker)  # type: ignore[abstract]
    server = grpc.aio.server()
    add_GatewayServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    servicer.address = f"127.0.0.1:{port}"
    await server.start()
    try:
        yield servicer
    finally:
        await server.stop(grace=None)
