"""Incidents (like Camunda Operate): list and read them, retry after fixing data, or cancel the instance. Admins."""

# No `from __future__ import annotations`: FastAPI reads the annotations at runtime.

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.deps import ActorDep, PlatformDep, Waited
from api.json_reply import JsonReply
from api.operations_access import engine_of, instance_uuid, require_operator
from api.routes_commands import reply_of
from api.schemas.commands import CommandReply
from api.schemas.problem import command_responses, query_responses
from api.schemas.process_operations import CancelBody, Incident, IncidentPage, RetryIncidentBody
from api.strict_json import StrictJsonRoute
from processes import operations
from projections import process_queries
from projections.queries import MAX_LIMIT

router = APIRouter(prefix="/api", tags=["operations"], route_class=StrictJsonRoute)

IncidentIdPath = Annotated[str, Path(max_length=64, description="The incident id.")]


@router.get("/incidents", dependencies=[Waited], response_class=JsonReply, response_model=IncidentPage,
            responses=query_responses(403))
def list_incidents(
    actor: ActorDep,
    platform: PlatformDep,
    state: Literal["open", "resolved"] | None = None,
    process_id: Annotated[str | None, Query(max_length=200)] = None,
    case_id: Annotated[str | None, Query(max_length=64)] = None,
    instance_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> JsonReply:
    """The tenant's incidents, newest first, filtered by state, process, case and instance."""
    require_operator(platform, actor)
    page = process_queries.list_incidents(platform.documents, actor.tenant, state=state, process_id=process_id,
                                          case_id=case_id, instance_id=instance_id, limit=limit, cursor=cursor)
    return JsonReply({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/incidents/{incident_id}", dependencies=[Waited], response_class=JsonReply, response_model=Incident,
            responses=query_responses(403, 404))
def get_incident(incident_id: IncidentIdPath, actor: ActorDep, platform: PlatformDep) -> JsonReply:
    """One incident."""
    require_operator(platform, actor)
    return JsonReply(process_queries.get_incident(platform.documents, actor.tenant, incident_id))


@router.post("/incidents/{incident_id}/retry", response_class=JsonReply, response_model=CommandReply,
             responses=command_responses())
def retry_incident(incident_id: IncidentIdPath, body: RetryIncidentBody, actor: ActorDep,
                   platform: PlatformDep) -> JsonReply:
    """Run again what the incident stopped (a failed job, a gateway, a message key), after setting `variables`."""
    require_operator(platform, actor)
    incident = process_queries.get_incident(platform.documents, actor.tenant, incident_id)
    result = operations.retry_incident(engine_of(platform), actor.tenant, instance_uuid(incident["instance_id"]),
                                       incident_id, actor, variables=body.variables, retries=body.retries,
                                       note=body.note)
    return JsonReply(reply_of(result))


@router.post("/incidents/{incident_id}/cancel", response_class=JsonReply, response_model=CommandReply,
             responses=command_responses())
def cancel_incident(incident_id: IncidentIdPath, body: CancelBody, actor: ActorDep, platform: PlatformDep) -> JsonReply:
    """Cancel the process instance the incident stopped (its open user tasks are cancelled too)."""
    require_operator(platform, actor)
    incident = process_queries.get_incident(platform.documents, actor.tenant, incident_id)
    result = operations.cancel_instance(engine_of(platform), actor.tenant, instance_uuid(incident["instance_id"]),
                                        actor, body.reason, incident_id=incident_id)
    return JsonReply(reply_of(result))
