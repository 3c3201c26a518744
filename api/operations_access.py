"""Who may use the operations routes (incidents, process instances), the incident or instance a path names, and
asking the engine for a change through the log (docs/processes.md, "Operations and messages through the log").

Every mode takes the same path: the request is stored as a command (`RequestProcessOperation`, decided by the
policy as the operator's own); the process that runs the engine (this one in the embedded mode, `casestream
process-worker` in the distributed one) applies it and records the outcome on the request, which is read back here
for a bounded time: the change's reply, the problem it was refused with, or 202 with where to ask again.
"""

# No `from __future__ import annotations`: FastAPI reads the dependencies' annotations at runtime.

import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path
from fastapi.responses import JSONResponse

from api.deps import ActorDep, PlatformDep
from api.json_reply import JsonReply
from api.problems import MEDIA_TYPE, ApiProblem, problem_body
from api.read_scope import ReadScopeDep
from casestream.bootstrap import Platform
from commands.bus import Actor
from commands.ports import EventStore
from commands.process_requests import RequestProcessOperation
from domain.errors import Forbidden, NotFound
from domain.process_operation import DONE, PENDING, ProcessOperation
from projections import process_queries
from projections.base import Doc
from projections.operations_scope import readable

T = TypeVar("T")
ADMIN_ROLES = frozenset({"admin"})
ACTION = "read_process_operations"
OPERATIONS_PATH = "/api/process-operations"
FIRST_PAUSE, LONGEST_PAUSE = 0.002, 0.05  # seconds between reads of a pending request: soon, then less often

IncidentIdPath = Annotated[str, Path(max_length=64, description="The incident id.")]
InstanceIdPath = Annotated[str, Path(max_length=64, description="The process instance id.",
                                     json_schema_extra={"format": "uuid"})]


def require_operator(platform: Platform, actor: Actor) -> None:
    """The policy's `read_process_operations` decision; with no policy (policy_engine=none) the admin role."""
    policy = platform.bus.policy
    if policy is None:
        if not ADMIN_ROLES.intersection(actor.roles):
            raise Forbidden("process operations need the admin role", (f"{ACTION} needs the admin role",))
        return
    decision = policy.decide({
        "subject": {"user": actor.user, "tenant": actor.tenant, "roles": list(actor.roles),
                    "groups": list(actor.groups)},
        "action": ACTION,
        "resource": {"kind": "tenant"},
    })
    if not decision.allow:
        reasons = decision.reasons or (f"no rule allows {ACTION}",)
        raise Forbidden(f"process operations are not allowed: {'; '.join(reasons)}", tuple(reasons))


def operator(actor: ActorDep, platform: PlatformDep) -> Actor:
    """The actor, once the policy lets it use the operations routes (403 otherwise)."""
    require_operator(platform, actor)
    return actor


OperatorDep = Annotated[Actor, Depends(operator)]


def incident_of(incident_id: IncidentIdPath, actor: OperatorDep, platform: PlatformDep, scope: ReadScopeDep) -> Doc:
    """The incident the path names: an operator's, of the tenant, of a case the operator may read (404 otherwise)."""
    incident = process_queries.get_incident(platform.documents, actor.tenant, incident_id)
    if not readable(platform.documents, scope, [incident]):
        raise NotFound(f"incident {incident_id} not found")
    return incident


def instance_of(instance_id: InstanceIdPath, actor: OperatorDep, platform: PlatformDep, scope: ReadScopeDep) -> Doc:
    """The process instance the path names: an operator's, of the tenant, of a case the operator may read (404
    otherwise)."""
    instance = process_queries.get_instance(platform.documents, actor.tenant, instance_id)
    if not readable(platform.documents, scope, [instance]):
        raise NotFound(f"process instance {instance_id} not found")
    return instance


IncidentDep = Annotated[Doc, Depends(incident_of)]
InstanceDep = Annotated[Doc, Depends(instance_of)]


def require_processes(platform: Platform) -> None:
    """503 before anything is stored when this deployment runs no processes (CASESTREAM_PROCESSES=off)."""
    if platform.settings.processes != "on":
        raise ApiProblem(503, "processes-off", "no process engine runs in this server (CASESTREAM_PROCESSES=off)")


def request_operation(platform: Platform, actor: Actor, operation: str, instance_id: str,
                      **fields: Any) -> JSONResponse:
    """Store the operator's request, wait for the engine's outcome, and answer with it (or 202 while pending)."""
    require_processes(platform)
    request_id = uuid.uuid4()
    command = RequestProcessOperation(request_id=request_id, operation=operation,  # type: ignore[arg-type]
                                      instance_id=uuid.UUID(instance_id), **fields)
    platform.bus.submit(command, actor)
    found = await_operation(platform.store, request_id, platform.settings.wait_timeout_seconds)
    return operation_reply(found)


def read_until(read: Callable[[], T], done: Callable[[T], bool], timeout: float) -> T:
    """read() again, soon and then less often, until done() holds for what it read or `timeout` seconds passed; the
    last read (how the API waits for what the engine records about a request: read-your-writes on the event store)."""
    deadline = time.monotonic() + timeout
    pause = FIRST_PAUSE
    while True:
        found = read()
        remaining = deadline - time.monotonic()
        if done(found) or remaining <= 0:
            return found
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, LONGEST_PAUSE)


def await_operation(store: EventStore, request_id: uuid.UUID, timeout: float) -> ProcessOperation:
    """The request as the event store holds it once its outcome is stored, or when `timeout` seconds passed."""
    return read_until(lambda: ProcessOperation.replay(request_id, store.events_of(request_id)),
                      lambda found: found.state != PENDING, timeout)


def operation_reply(found: ProcessOperation) -> JSONResponse:
    """The answer to a request: the change's reply (200), its refusal (the problem), or 202 while pending."""
    if found.state == DONE:
        return JsonReply(found.reply)
    if found.problem is not None:
        problem = found.problem
        return JSONResponse(problem_body(problem["status"], problem["code"], problem["detail"],
                                         problem["errors"] or None),
                            status_code=problem["status"], media_type=MEDIA_TYPE)
    return JsonReply(operation_state(found), status_code=202,
                     headers={"Location": f"{OPERATIONS_PATH}/{found.id}"})


def operation_state(found: ProcessOperation) -> dict[str, Any]:
    """A request as GET /api/process-operations/{id} shows it (ProcessOperationState)."""
    request = found.request
    assert request is not None
    problem = None
    if found.problem is not None:
        problem = problem_body(found.problem["status"], found.problem["code"], found.problem["detail"],
                               found.problem["errors"] or None)
    return {"id": str(found.id), "operation": request.operation, "instance_id": request.instance_id,
            "state": found.state, "reply": found.reply, "problem": problem}
