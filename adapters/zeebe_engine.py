"""Zeebe adapter (pyzeebe): deploy and start processes, publish messages, and run our task types as job workers.

The job workers run THE SAME worker functions as the embedded engine (processes.workers, through
`processes.jobs.run_job`): a pyzeebe job becomes a `Job`, the outcome becomes CompleteJob, FailJob (retries - 1,
exponential back-off) or ThrowError (the BPMN error code the model catches). BPMN files are checked as the
embedded engine checks them before Zeebe sees them, so a bad file is refused naming the element.
"""

# No `from __future__ import annotations` here: pyzeebe finds the job parameter of a task function by comparing
# its runtime annotation with `pyzeebe.Job`, which a postponed (string) annotation would not match.

import asyncio
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from pyzeebe import Job as ZeebeJob
from pyzeebe import JobController, ZeebeClient, ZeebeWorker, create_insecure_channel
from pyzeebe.grpc_internals.types import DeployResourceResponse

from commands.bus import CommandBus
from processes.jobs import Completed, Failed, Job, Thrown, known_task_types, run_job
from processes.model import prepare_model

ZEEBE_DEFAULT_TENANT = "<default>"  # the tenant id Zeebe reports when multi-tenancy is off


@dataclass(frozen=True)
class ZeebeConfig:
    """How the adapter reaches Zeebe and how its job workers behave (from Settings: CASESTREAM_ZEEBE_*)."""

    address: str = "127.0.0.1:26500"
    tenant: str = "acme"  # the casestream tenant of jobs that name none (no `tenant` variable, no Zeebe tenant)
    worker_name: str = "casestream"
    job_timeout_ms: int = 30_000
    request_timeout_ms: int = 10_000
    max_jobs: int = 8
    retry_backoff_ms: int = 1_000
    max_backoff_ms: int = 60_000
    initial_retries: int = 3


class ThrowBpmnError(Exception):
    """Raised inside a task handler: answer the job with ThrowError."""

    def __init__(self, outcome: Thrown) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


class FailZeebeJob(Exception):
    """Raised inside a task handler: answer the job with FailJob (retries - 1, after a back-off)."""

    def __init__(self, outcome: Failed, backoff_ms: int) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome
        self.backoff_ms = backoff_ms


def job_tenant(job: ZeebeJob, default_tenant: str) -> str:
    """The casestream tenant of a Zeebe job: Zeebe's own tenant id, else the `tenant` variable, else the default."""
    if job.tenant_id and job.tenant_id != ZEEBE_DEFAULT_TENANT:
        return job.tenant_id
    variable = job.variables.get("tenant")
    return variable if isinstance(variable, str) and variable else default_tenant


def to_job(job: ZeebeJob, default_tenant: str) -> Job:
    """Our engine-neutral Job from pyzeebe's."""
    return Job(
        key=str(job.key),
        type=job.type,
        process_instance_key=str(job.process_instance_key),
        element_id=job.element_id,
        tenant=job_tenant(job, default_tenant),
        variables=dict(job.variables),
        headers={str(k): str(v) for k, v in job.custom_headers.items()},
        retries=job.retries,
        process_id=job.bpmn_process_id,
    )


def backoff_ms(retries_left: int, config: ZeebeConfig) -> int:
    """Exponential back-off by retries left, counted from Zeebe's default of 3: base * 2 ** (3 - left), capped."""
    failures = max(config.initial_retries - retries_left, 0)
    return int(min(config.retry_backoff_ms * 2**failures, config.max_backoff_ms))


async def report_outcome(error: Exception, job: ZeebeJob, controller: JobController) -> None:
    """pyzeebe exception handler: a thrown BPMN error or a failed job goes back to Zeebe as such."""
    if isinstance(error, ThrowBpmnError):
        thrown = error.outcome
        await controller.set_error_status(thrown.message, error_code=thrown.code, variables=dict(thrown.variables))
    elif isinstance(error, FailZeebeJob):
        await controller.set_failure_status(error.outcome.message, retry_back_off_ms=error.backoff_ms)
    else:  # the handler itself broke (e.g. the event store is unreachable): technical, so retry
        await controller.set_failure_status(f"{type(error).__name__}: {error}", retry_back_off_ms=0)


def _handler(bus: CommandBus, config: ZeebeConfig) -> Any:
    async def run(job: ZeebeJob) -> dict[str, Any]:
        ours = to_job(job, config.tenant)
        # the bus and event store are synchronous: run the worker off the event loop
        outcome = await asyncio.to_thread(run_job, ours, bus)
        if isinstance(outcome, Completed):
            return dict(outcome.variables)
        if isinstance(outcome, Thrown):
            raise ThrowBpmnError(outcome)
        raise FailZeebeJob(outcome, backoff_ms(outcome.retries, config))

    return run


def build_worker(
    channel: grpc.aio.Channel, bus: CommandBus, config: ZeebeConfig, task_types: Iterable[str] | None = None,
) -> ZeebeWorker:
    """A pyzeebe worker with one task per registered task type, each running `run_job` against the bus."""
    worker = ZeebeWorker(
        channel, name=config.worker_name, request_timeout=config.request_timeout_ms,
        exception_handler=report_outcome, poll_retry_delay=1,
    )
    handler = _handler(bus, config)
    for task_type in sorted(task_types if task_types is not None else known_task_types()):
        worker.task(
            task_type, variables_to_fetch=[], timeout_ms=config.job_timeout_ms,
            max_jobs_to_activate=config.max_jobs, max_running_jobs=config.max_jobs,
        )(handler)
    return worker


class ZeebeProcesses:
    """Deploy, start and message processes on Zeebe (the client side of the adapter)."""

    def __init__(self, channel: grpc.aio.Channel, config: ZeebeConfig, zeebe_tenant: str | None = None) -> None:
        self.client = ZeebeClient(channel)
        self.config = config
        self.zeebe_tenant = zeebe_tenant  # Zeebe's tenant id, only when Zeebe runs with multi-tenancy

    async def deploy(self, *paths: str | Path) -> dict[str, int]:
        """Check each BPMN file as the embedded engine would, then deploy them: process id -> process key."""
        for path in paths:
            # raises BpmnRejected naming the element: Zeebe never runs a file the embedded engine would refuse,
            # so every deployed model keeps running on both engines
            xml = await asyncio.to_thread(Path(path).read_bytes)
            prepare_model(xml, known_task_types(), str(path))
        response = await self.client.deploy_resource(*paths, tenant_id=self.zeebe_tenant)
        return {
            d.bpmn_process_id: d.process_definition_key
            for d in response.deployments if isinstance(d, DeployResourceResponse.ProcessMetadata)
        }

    async def start(
        self, process_id: str, *, tenant: str, variables: Mapping[str, Any] | None = None, case_id: str | None = None,
    ) -> int:
        """Start an instance (latest version); `caseId` and `tenant` are set as variables. Returns its key."""
        values = {**dict(variables or {}), "tenant": tenant}
        if case_id is not None:
            values["caseId"] = case_id
        json.dumps(values)  # refuse unserialisable variables here, with Python's message, not the gateway's
        response = await self.client.run_process(process_id, values, tenant_id=self.zeebe_tenant)
        return int(response.process_instance_key)

    async def publish_message(
        self, name: str, correlation_key: str, variables: Mapping[str, Any] | None = None, *,
        ttl_ms: int = 60_000, message_id: str | None = None,
    ) -> int:
        """Publish a message; it correlates to an instance waiting on (name, correlation key) within its TTL."""
        response = await self.client.publish_message(
            name, correlation_key, dict(variables or {}), time_to_live_in_milliseconds=ttl_ms,
            message_id=message_id, tenant_id=self.zeebe_tenant,
        )
        return int(response.key)


def channel_for(config: ZeebeConfig) -> grpc.aio.Channel:
    """A plaintext gRPC channel to the gateway (TLS/OAuth deployments pass their own channel)."""
    return create_insecure_channel(grpc_address=config.address)
