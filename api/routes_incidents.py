"""Incidents (like Camunda Operate): list and read them, retry after fixing data, or cancel the instance. Admins,
and of the cases whose definition they may read; the changes go to the engine through the log
(api/operations_access.py)."""

# No `from __future__ import annotations`: FastAPI reads the annotations at runtime.

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import PlatformDep, Waited
from api.json_reply import JsonReply
from api.operations_access import IncidentDep, OperatorDep, request_operation
from api.read_scope import ReadScopeDep
from api.schemas.commands import CommandReply
from api.schemas.problem import command_responses, query_responses
from api.schemas.process_operations import CancelBody, Incident, IncidentPage, RetryIncidentBody
from api.schemas.process_requests import ProcessOperationState
from api.strict_json import StrictJsonRoute
from domain.process_operation import CANCEL_INCIDENT, RETRY_INCIDENT
from projections import process_queries
from projections.operations_scope import readable_page
from projections.queries import MAX_LIMIT

router = APIRouter(prefix="/api", tags=["operations"], route_class=StrictJsonRoute)
PENDING_REPLY: dict[int | str, dict[str, Any]] = {202: {"model": ProcessOperationState,
                       "description": "The engine has not answered in time: ask the Location again."}}


@router.get("/incidents", dependencies=[Waited], response_class=JsonReply, response_model=IncidentPage,
            responses=query_responses(403))
def list_incidents(
    actor: OperatorDep,
    platform: PlatformDep,
    scope: ReadScopeDep,
    state: Literal["open", "resolved"] | None = None,
    process_id: Annotated[str | None, Query(max_length=200)] = None,
    case_id: Annotated[str | None, Query(max_length=64)] = None,
    instance_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> JsonReply:
    """The tenant's incidents of cases the reader may read, newest first, filtered by state, process, case and
    instance (a page may be short while `next_cursor` says more may follow)."""
    page = readable_page(platform.documents, scope, lambda size, after: process_queries.list_incidents(
        platform.documents, actor.tenant, state=state, process_id=process_id, case_id=case_id,
        instance_id=instance_id, limit=size, cursor=after), "created_at", limit=limit, cursor=cursor)
    return JsonReply({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/incidents/{incident_id}", dependencies=[Waited], response_class=JsonReply, response_model=Incident,
            responses=query_responses(403, 404))
def get_incident(incident: IncidentDep) -> JsonReply:
    """One incident."""
    return JsonReply(incident)


@router.post("/incidents/{incident_id}/retry", response_class=JsonReply, response_model=CommandReply,
             responses={**command_responses(), **PENDING_REPLY})
def retry_incident(incident: IncidentDep, body: RetryIncidentBody, actor: OperatorDep,
                   platform: PlatformDep) -> JSONResponse:
    """Run again what the incident stopped (a failed job, a gateway, a message key), after setting `variables`."""
    return request_operation(platform, actor, RETRY_INCIDENT, incident["instance_id"], incident_id=incident["id"],
                             variables=body.variables, retries=body.retries, note=body.note)


@router.post("/incidents/{incident_id}/cancel", response_class=JsonReply, response_model=CommandReply,
             responses={**command_responses(), **PENDING_REPLY})
def cancel_incident(incident: IncidentDep, body: CancelBody, actor: OperatorDep,
                    platform: PlatformDep) -> JSONResponse:
    """Cancel the process instance the incident stopped (its open user tasks are cancelled too)."""
    return request_operation(platform, actor, CANCEL_INCIDENT, incident["instance_id"], incident_id=incident["id"],
                             reason=body.reason)
