"""The operations API for process instances: list and read (variables, current elements), cancel, set variables,
retry a failed job. Admins only, of the cases whose definition they may read; reads from the `process_instances`
read model, changes go to the engine through the log (api/operations_access.py); GET
/api/process-operations/{id} tells what became of a change that was not answered in time."""

# No `from __future__ import annotations`: FastAPI reads the annotations at runtime.

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from api.deps import PlatformDep, Waited
from api.json_reply import JsonReply
from api.operations_access import (
    InstanceDep,
    OperatorDep,
    await_operation,
    operation_state,
    request_operation,
)
from api.read_scope import ReadScopeDep
from api.routes_incidents import PENDING_REPLY
from api.schemas.commands import CommandReply
from api.schemas.problem import command_responses, query_responses
from api.schemas.process_operations import (
    CancelBody,
    ProcessInstanceDetail,
    ProcessInstancePage,
    RetryJobBody,
    SetVariablesBody,
)
from api.schemas.process_requests import ProcessOperationState
from api.strict_json import StrictJsonRoute
from domain.errors import NotFound
from domain.process_operation import CANCEL_INSTANCE, RETRY_JOB, SET_VARIABLES
from projections import process_queries
from projections.operations_scope import readable_page
from projections.queries import MAX_LIMIT

router = APIRouter(prefix="/api", tags=["operations"], route_class=StrictJsonRoute)

ElementIdPath = Annotated[str, Path(max_length=200, description="The BPMN element id of the failed job.")]
RequestIdPath = Annotated[uuid.UUID, Path(description="The request id a 202 named in its Location.")]


@router.get("/process-instances", dependencies=[Waited], response_class=JsonReply,
            response_model=ProcessInstancePage, responses=query_responses(403))
def list_instances(
    actor: OperatorDep,
    platform: PlatformDep,
    scope: ReadScopeDep,
    process_id: Annotated[str | None, Query(max_length=200)] = None,
    case_id: Annotated[str | None, Query(max_length=64)] = None,
    state: Literal["running", "completed", "cancelled"] | None = None,
    has_incident: Annotated[bool | None, Query(description="Only instances with (true) or without (false) an "
                                                           "open incident.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> JsonReply:
    """The tenant's process instances of cases the reader may read, newest first, filtered by process, case, state
    and open incidents (a page may be short while `next_cursor` says more may follow)."""
    page = readable_page(platform.documents, scope, lambda size, after: process_queries.list_instances(
        platform.documents, actor.tenant, process_id=process_id, case_id=case_id, state=state,
        has_incident=has_incident, limit=size, cursor=after), "started_at", limit=limit, cursor=cursor)
    return JsonReply({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/process-instances/{instance_id}", dependencies=[Waited], response_class=JsonReply,
            response_model=ProcessInstanceDetail, responses=query_responses(403, 404))
def get_instance(instance: InstanceDep) -> JsonReply:
    """One process instance with its variables and the elements it is at."""
    return JsonReply(instance)


@router.post("/process-instances/{instance_id}/cancel", response_class=JsonReply, response_model=CommandReply,
             responses={**command_responses(), **PENDING_REPLY})
def cancel_instance(instance: InstanceDep, body: CancelBody, actor: OperatorDep,
                    platform: PlatformDep) -> JSONResponse:
    """Cancel a running instance: its open user tasks are cancelled and its open incidents end."""
    return request_operation(platform, actor, CANCEL_INSTANCE, instance["id"], reason=body.reason)


@router.post("/process-instances/{instance_id}/variables", response_class=JsonReply, response_model=CommandReply,
             responses={**command_responses(), **PENDING_REPLY})
def set_variables(instance: InstanceDep, body: SetVariablesBody, actor: OperatorDep,
                  platform: PlatformDep) -> JSONResponse:
    """Set variables of a running instance (what waits on them sees them at its next step)."""
    return request_operation(platform, actor, SET_VARIABLES, instance["id"], variables=body.variables)


@router.post("/process-instances/{instance_id}/jobs/{element_id}/retry", response_class=JsonReply,
             response_model=CommandReply, responses={**command_responses(), **PENDING_REPLY})
def retry_job(instance: InstanceDep, element_id: ElementIdPath, body: RetryJobBody, actor: OperatorDep,
              platform: PlatformDep) -> JSONResponse:
    """Retry the failed job of an element (its open incident) with `retries` tries."""
    return request_operation(platform, actor, RETRY_JOB, instance["id"], element_id=element_id,
                             retries=body.retries)


@router.get("/process-operations/{request_id}", response_class=JsonReply, response_model=ProcessOperationState,
            responses=query_responses(403, 404))
def get_operation(request_id: RequestIdPath, actor: OperatorDep, platform: PlatformDep) -> JsonReply:
    """What became of an operator's request (pending, done with the change's reply, or refused with its problem);
    read from the event store, where the engine records it (no read model holds requests)."""
    try:
        found = await_operation(platform.store, request_id, 0)
    except TypeError:  # the id names another kind of aggregate
        raise NotFound(f"process operation {request_id} not found") from None
    if found.request is None or found.tenant != actor.tenant:
        raise NotFound(f"process operation {request_id} not found")
    return JsonReply(operation_state(found))
