"""The operations API for process instances: list and read (variables, current elements), cancel, set variables,
retry a failed job. Admins only; reads from the `process_instances` read model, writes through the engine."""

# No `from __future__ import annotations`: FastAPI reads the annotations at runtime.

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.deps import ActorDep, PlatformDep, Waited
from api.json_reply import JsonReply
from api.operations_access import engine_of, instance_uuid, require_operator
from api.routes_commands import reply_of
from api.schemas.commands import CommandReply
from api.schemas.problem import command_responses, query_responses
from api.schemas.process_operations import (
    CancelBody,
    ProcessInstanceDetail,
    ProcessInstancePage,
    RetryJobBody,
    SetVariablesBody,
)
from api.strict_json import StrictJsonRoute
from processes import operations
from projections import process_queries
from projections.queries import MAX_LIMIT

router = APIRouter(prefix="/api", tags=["operations"], route_class=StrictJsonRoute)

InstanceIdPath = Annotated[str, Path(max_length=64, description="The process instance id.",
                                     json_schema_extra={"format": "uuid"})]
ElementIdPath = Annotated[str, Path(max_length=200, description="The BPMN element id of the failed job.")]


@router.get("/process-instances", dependencies=[Waited], response_class=JsonReply,
            response_model=ProcessInstancePage, responses=query_responses(403))
def list_instances(
    actor: ActorDep,
    platform: PlatformDep,
    process_id: Annotated[str | None, Query(max_length=200)] = None,
    case_id: Annotated[str | None, Query(max_length=64)] = None,
    state: Literal["running", "completed", "cancelled"] | None = None,
    has_incident: Annotated[bool | None, Query(description="Only instances with (true) or without (false) an "
                                                           "open incident.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> JsonReply:
    """The tenant's process instances, newest first, filtered by process, case, state and open incidents."""
    require_operator(platform, actor)
    page = process_queries.list_instances(platform.documents, actor.tenant, process_id=process_id, case_id=case_id,
                                          state=state, has_incident=has_incident, limit=limit, cursor=cursor)
    return JsonReply({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/process-instances/{instance_id}", dependencies=[Waited], response_class=JsonReply,
            response_model=ProcessInstanceDetail, responses=query_responses(403, 404))
def get_instance(instance_id: InstanceIdPath, actor: ActorDep, platform: PlatformDep) -> JsonReply:
    """One process instance with its variables and the elements it is at."""
    require_operator(platform, actor)
    return JsonReply(process_queries.get_instance(platform.documents, actor.tenant, instance_id))


@router.post("/process-instances/{instance_id}/cancel", response_class=JsonReply, response_model=CommandReply,
             responses=command_responses())
def cancel_instance(instance_id: InstanceIdPath, body: CancelBody, actor: ActorDep,
                    platform: PlatformDep) -> JsonReply:
    """Cancel a running instance: its open user tasks are cancelled and its open incidents end."""
    require_operator(platform, actor)
    process_queries.get_instance(platform.documents, actor.tenant, instance_id)  # 404 unless the tenant's
    result = operations.cancel_instance(engine_of(platform), actor.tenant, instance_uuid(instance_id), actor,
                                        body.reason)
    return JsonReply(reply_of(result))


@router.post("/process-instances/{instance_id}/variables", response_class=JsonReply, response_model=CommandReply,
             responses=command_responses())
def set_variables(instance_id: InstanceIdPath, body: SetVariablesBody, actor: ActorDep,
                  platform: PlatformDep) -> JsonReply:
    """Set variables of a running instance (what waits on them sees them at its next step)."""
    require_operator(platform, actor)
    process_queries.get_instance(platform.documents, actor.tenant, instance_id)  # 404 unless the tenant's
    result = operations.set_variables(engine_of(platform), actor.tenant, instance_uuid(instance_id), actor,
                                      body.variables)
    return JsonReply(reply_of(result))


@router.post("/process-instances/{instance_id}/jobs/{element_id}/retry", response_class=JsonReply,
             response_model=CommandReply, responses=command_responses())
def retry_job(instance_id: InstanceIdPath, element_id: ElementIdPath, body: RetryJobBody, actor: ActorDep,
              platform: PlatformDep) -> JsonReply:
    """Retry the failed job of an element (its open incident) with `retries` tries."""
    require_operator(platform, actor)
    process_queries.get_instance(platform.documents, actor.tenant, instance_id)  # 404 unless the tenant's
    result = operations.retry_job(engine_of(platform), actor.tenant, instance_uuid(instance_id), element_id, actor,
                                  retries=body.retries)
    return JsonReply(reply_of(result))
