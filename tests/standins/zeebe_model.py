"""The process semantics behind the Zeebe gateway STAND-IN (tests/standins/zeebe_gateway.py). Not Zeebe.

Just enough of Zeebe's behaviour to test our pyzeebe adapter, for this subset of BPMN:
none start event; service tasks (`zeebe:taskDefinition type/retries`, `zeebe:ioMapping` inputs and outputs,
`zeebe:taskHeaders`) -> jobs; exclusive gateways (FEEL conditions via processes.feel, default flow); message
intermediate catch events (`zeebe:subscription correlationKey`); error boundary events on service tasks (by
error code, or catch-all); none end events. Anything else is refused at deploy (naming the element), where
Zeebe would run it. Variables live in one process scope (no sub-process scopes). A failed job with retries
left is activatable again after its back-off; with none left, or an uncaught BPMN error, or a gateway with no
matching flow, the stand-in records an incident, as Zeebe does. Jobs whose activation timed out are activatable
again with unchanged retries. A published message with a TTL is buffered and correlates at most once per
process id; a `messageId` repeated while buffered is refused.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from processes.bpmn import BpmnRejected
from tests.standins.zeebe_bpmn import Definition, Element, parse_definition

ACTIVATABLE, ACTIVATED, FAILED = "activatable", "activated", "failed"


class GatewayError(Exception):
    """A refusal the gateway answers with a gRPC status (`status` names a grpc.StatusCode member)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Job:
    key: int
    type: str
    instance_key: int
    element_id: str
    retries: int
    headers: dict[str, str]
    local: dict[str, Any]
    tenant: str
    state: str = ACTIVATABLE
    available_at: float = 0.0
    deadline: float = 0.0
    worker: str = ""
    error_message: str = ""


@dataclass
class Instance:
    key: int
    definition: Definition
    variables: dict[str, Any]
    tenant: str
    tokens: dict[str, int] = field(default_factory=dict)  # element id -> active tokens there
    state: str = "active"


@dataclass
class Subscription:
    instance_key: int
    element_id: str
    name: str
    correlation_key: str
    tenant: str


@dataclass
class Message:
    key: int
    name: str
    correlation_key: str
    variables: dict[str, Any]
    expires_at: float
    message_id: str
    tenant: str
    correlated_processes: set[str] = field(default_factory=set)


def parse_variables(text: str, what: str) -> dict[str, Any]:
    """A request's variables: empty, or a JSON object (anything else is INVALID_ARGUMENT, as in Zeebe)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise GatewayError("INVALID_ARGUMENT", f"{what}: variables are not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise GatewayError("INVALID_ARGUMENT", f"{what}: variables must be a JSON object, not {type(value).__name__}")
    return value


class Broker:
    """Deployed processes, running instances, jobs and messages: the state machine behind the stand-in."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._keys = itertools.count(2251799813685249)  # Zeebe-like 64-bit keys (partition 1)
        self.definitions: dict[int, Definition] = {}
        self.latest: dict[tuple[str, str], Definition] = {}  # (tenant, process id) -> newest version
        self.instances: dict[int, Instance] = {}
        self.jobs: dict[int, Job] = {}
        self.subscriptions: list[Subscription] = []
        self.messages: list[Message] = []
        self.incidents: list[dict[str, Any]] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []  # (rpc, what it asked) for tests to inspect
        self._sources: dict[tuple[str, str], bytes] = {}

    def next_key(self) -> int:
        return next(self._keys)

    # -- deploy and start --------------------------------------------------------------------------

    def deploy(self, resources: list[tuple[str, bytes]], tenant: str) -> list[Definition]:
        if not resources:
            raise GatewayError("INVALID_ARGUMENT", "expected to deploy at least one resource, but none given")
        deployed = []
        for name, content in resources:
            if not name.endswith(".bpmn"):
                raise GatewayError("INVALID_ARGUMENT", f"'{name}': the Zeebe stand-in deploys only .bpmn resources")
            try:
                probe = parse_definition(content, 0, 0, name, tenant)
            except BpmnRejected as exc:
                raise GatewayError("INVALID_ARGUMENT", f"'{name}': {exc}") from None
            previous = self.latest.get((tenant, probe.process_id))
            if previous is not None and self._sources[(tenant, probe.process_id)] == content:
                deployed.append(previous)  # Zeebe deduplicates an unchanged resource: same key and version
                continue
            version = previous.version + 1 if previous else 1
            definition = parse_definition(content, self.next_key(), version, name, tenant)
            self.definitions[definition.key] = definition
            self.latest[(tenant, definition.process_id)] = definition
            self._sources[(tenant, definition.process_id)] = content
            deployed.append(definition)
        return deployed

    def create_instance(
        self, process_id: str, definition_key: int, version: int, variables: dict[str, Any], tenant: str,
    ) -> Instance:
        definition = self._find_definition(process_id, definition_key, version, tenant)
        instance = Instance(self.next_key(), definition, dict(variables), tenant)
        self.instances[instance.key] = instance
        self._enter(instance, definition.start)
        return instance

    def _find_definition(self, process_id: str, definition_key: int, version: int, tenant: str) -> Definition:
        if definition_key:
            found = self.definitions.get(definition_key)
            if found is None or found.tenant != tenant:
                raise GatewayError("NOT_FOUND", f"Expected to find process definition with key '{definition_key}', "
                                                "but none found")
            return found
        latest = self.latest.get((tenant, process_id))
        if latest is None:
            raise GatewayError("NOT_FOUND", f"Expected to find process definition with process ID '{process_id}', "
                                            "but none found")
        if version in (-1, 0, latest.version):
            return latest
        for candidate in self.definitions.values():
            if (candidate.tenant, candidate.process_id, candidate.version) == (tenant, process_id, version):
                return candidate
        raise GatewayError("NOT_FOUND", f"Expected to find process definition with process ID '{process_id}' and "
                                        f"version '{version}', but none found")

    # -- walking the graph -------------------------------------------------------------------------

    def _enter(self, instance: Instance, element_id: str) -> None:
        if instance.state != "active":
            return
        element = instance.definition.elements[element_id]
        if element.kind == "serviceTask":
            try:
                local = {target: expr.evaluate(instance.variables) for expr, target in element.inputs}
            except (ValueError, TypeError) as exc:  # Zeebe raises an incident when a mapping fails to evaluate
                instance.tokens[element.id] = instance.tokens.get(element.id, 0) + 1
                self._incident(instance, element.id, f"failed to evaluate an input mapping: {exc}")
                return
            job = Job(self.next_key(), element.job_type, instance.key, element.id, element.retries,
                      dict(element.headers), local, instance.tenant)
            self.jobs[job.key] = job
            instance.tokens[element.id] = instance.tokens.get(element.id, 0) + 1
        elif element.kind == "exclusiveGateway":
            self._take_gateway(instance, element)
        elif element.kind == "intermediateCatchEvent":
            assert element.correlation_key is not None
            key = element.correlation_key.evaluate(instance.variables)
            if not isinstance(key, str | int) or isinstance(key, bool):
                self._incident(instance, element.id, f"correlation key of {element.message_name!r} is {key!r}: "
                                                     "expected a string or a number")
                return
            instance.tokens[element.id] = instance.tokens.get(element.id, 0) + 1
            self.subscriptions.append(
                Subscription(instance.key, element.id, element.message_name, str(key), instance.tenant)
            )
            self._correlate_buffered(instance.tenant)
        elif element.kind == "endEvent":
            self._finish_if_done(instance)
        else:  # start event, a caught boundary event: pass straight through
            self._leave(instance, element)

    def _leave(self, instance: Instance, element: Element) -> None:
        for flow_id in element.outgoing:
            self._enter(instance, instance.definition.flows[flow_id].target)
        if not element.outgoing:
            self._finish_if_done(instance)

    def _take_gateway(self, instance: Instance, gateway: Element) -> None:
        flows = instance.definition.flows
        for flow_id in gateway.outgoing:
            condition = flows[flow_id].condition
            if flow_id != gateway.default_flow and condition is not None and condition.test(instance.variables):
                self._enter(instance, flows[flow_id].target)
                return
        if gateway.default_flow is not None:
            self._enter(instance, flows[gateway.default_flow].target)
        elif len(gateway.outgoing) == 1 and flows[gateway.outgoing[0]].condition is None:
            self._enter(instance, flows[gateway.outgoing[0]].target)
        else:
            self._incident(instance, gateway.id, "Expected at least one condition to evaluate to true, or to have a "
                                                 "default flow")

    def _consume_token(self, instance: Instance, element_id: str) -> None:
        left = instance.tokens.get(element_id, 0) - 1
        if left > 0:
            instance.tokens[element_id] = left
        else:
            instance.tokens.pop(element_id, None)

    def _finish_if_done(self, instance: Instance) -> None:
        if instance.state == "active" and not instance.tokens:
            instance.state = "completed"

    def _incident(self, instance: Instance, element_id: str, message: str, job_key: int | None = None) -> None:
        self.incidents.append(
            {"key": self.next_key(), "instance_key": instance.key, "element_id": element_id, "message": message,
             "job_key": job_key}
        )

    # -- jobs --------------------------------------------------------------------------------------

    def activatable(self, job_type: str, tenants: Set[str], now: float) -> Iterator[Job]:
        for job in self.jobs.values():
            if job.type != job_type or job.tenant not in tenants:
                continue
            ready = job.state == ACTIVATABLE and job.available_at <= now
            timed_out = job.state == ACTIVATED and job.deadline <= now  # the worker's time ran out: hand it out again
            if ready or timed_out:
                yield job

    def next_change(self, now: float) -> float | None:
        """When a job not yet activatable becomes so (back-off ends, activation times out)."""
        times = [j.available_at for j in self.jobs.values() if j.state == ACTIVATABLE and j.available_at > now]
        times += [j.deadline for j in self.jobs.values() if j.state == ACTIVATED and j.deadline > now]
        return min(times) if times else None

    def variables_for(self, job: Job, fetch: list[str]) -> dict[str, Any]:
        instance = self.instances[job.instance_key]
        visible = {**instance.variables, **job.local}
        return {k: v for k, v in visible.items() if k in fetch} if fetch else visible

    def _job(self, key: int, verb: str) -> Job:
        job = self.jobs.get(key)
        if job is None:
            raise GatewayError("NOT_FOUND", f"Command '{verb}' rejected with code 'NOT_FOUND': Expected to "
                                            f"{verb.lower()} job with key '{key}', but no such job was found")
        if job.state == FAILED:
            raise GatewayError("FAILED_PRECONDITION", f"Command '{verb}' rejected with code 'INVALID_STATE': Expected "
                                                      f"to {verb.lower()} job with key '{key}', but it is failed")
        return job

    def complete_job(self, key: int, variables: dict[str, Any]) -> None:
        job = self._job(key, "COMPLETE")
        instance = self.instances[job.instance_key]
        element = instance.definition.elements[job.element_id]
        del self.jobs[key]
        if element.outputs:
            scope = {**instance.variables, **job.local, **variables}
            for expr, target in element.outputs:
                instance.variables[target] = expr.evaluate(scope)
        else:
            instance.variables.update(variables)
        self._consume_token(instance, element.id)
        self._leave(instance, element)

    def fail_job(self, key: int, retries: int, message: str, backoff_ms: int) -> None:
        job = self._job(key, "FAIL")
        job.retries, job.error_message, job.worker = retries, message, ""
        if retries > 0:
            job.state, job.available_at = ACTIVATABLE, self.clock() + backoff_ms / 1000
            return
        job.state = FAILED
        self._incident(self.instances[job.instance_key], job.element_id, message or "No more retries left.", key)

    def throw_error(self, key: int, code: str, message: str, variables: dict[str, Any]) -> None:
        job = self._job(key, "THROW_ERROR")
        instance = self.instances[job.instance_key]
        boundary = next(
            (e for e in instance.definition.elements.values()
             if e.kind == "boundaryEvent" and e.attached_to == job.element_id and e.error_code in (code, None)),
            None,
        )
        if boundary is None:
            job.state = FAILED
            self._incident(instance, job.element_id, f"Expected to throw an error event with the code '{code}' with "
                                                     f"message '{message}', but it was not caught.", key)
            return
        del self.jobs[key]
        instance.variables.update(variables)
        self._consume_token(instance, job.element_id)
        self._leave(instance, boundary)

    # -- messages ----------------------------------------------------------------------------------

    def publish(
        self, name: str, correlation_key: str, ttl_ms: int, message_id: str, variables: dict[str, Any], tenant: str,
    ) -> Message:
        now = self.clock()
        if not name:
            raise GatewayError("INVALID_ARGUMENT", "Expected non-empty field 'name'")
        self.messages = [m for m in self.messages if m.expires_at > now]
        if message_id and any(
            (m.tenant, m.name, m.correlation_key, m.message_id) == (tenant, name, correlation_key, message_id)
            for m in self.messages
        ):
            raise GatewayError("ALREADY_EXISTS", f"Expected to publish a new message with id '{message_id}', but a "
                                                 "message with that id was already published")
        message = Message(self.next_key(), name, correlation_key, variables, now + ttl_ms / 1000, message_id, tenant)
        self._deliver(message)
        if ttl_ms > 0:
            self.messages.append(message)
        return message

    def _deliver(self, message: Message) -> None:
        for sub in list(self.subscriptions):
            if (sub.tenant, sub.name, sub.correlation_key) != (message.tenant, message.name, message.correlation_key):
                continue
            instance = self.instances[sub.instance_key]
            if instance.definition.process_id in message.correlated_processes:
                continue
            message.correlated_processes.add(instance.definition.process_id)
            self.subscriptions.remove(sub)
            instance.variables.update(message.variables)
            self._consume_token(instance, sub.element_id)
            self._leave(instance, instance.definition.elements[sub.element_id])

    def _correlate_buffered(self, tenant: str) -> None:
        now = self.clock()
        for message in self.messages:
            if message.tenant == tenant and message.expires_at > now:
                self._deliver(message)

    def variables_of(self, instance_key: int) -> Mapping[str, Any]:
        """An instance's process variables (for tests)."""
        return self.instances[instance_key].variables
