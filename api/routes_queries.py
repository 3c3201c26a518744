"""Query endpoints: read models only (history folds a case's own events, for analysts).

Every one is filtered by the reader's ReadScope (api/read_scope.py): cases, tasks and their timelines, history
and counts of definitions it may not read are absent (404 by id, never 403: their existence does not leak);
reference data (queues, record types, records, the definitions list) needs "read_reference" (403 otherwise).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from api.deps import ActorDep, PlatformDep, Waited
from api.json_reply import JsonReply
from api.read_scope import ReadScopeDep
from api.schemas.cases import Case, CaseAsOf, CaseCounts, CaseDiff, CasePage, Kanban, TimelineEntry
from api.schemas.params import CaseIdPath, DefinitionKeyPath, TypeKeyPath
from api.schemas.platform import Me
from api.schemas.problem import query_responses
from api.schemas.reference import Definition, Queue, RecordType, ReferenceRecord
from domain.case import CaseOpened
from domain.errors import FieldError, NotFound, ValidationFailed
from projections import history, queries
from projections.read_scope import ReadScope

MAX_POSITION = 2**63 - 1  # versions and positions are stored as 64-bit integers
router = APIRouter(prefix="/api", tags=["queries"], dependencies=[Waited])


@router.get("/me", response_class=JsonReply, response_model=Me, responses=query_responses())
def me(actor: ActorDep) -> JsonReply:
    """Who the token says you are."""
    return JsonReply({"user": actor.user, "tenant": actor.tenant, "roles": list(actor.roles)})


@router.get("/cases", response_class=JsonReply, response_model=CasePage, responses=query_responses())
def list_cases(
    actor: ActorDep,
    platform: PlatformDep,
    scope: ReadScopeDep,
    definition_key: str | None = None,
    status: str | None = None,
    stage: str | None = None,
    queue: str | None = None,
    assignee: str | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Text search in number, title and data.")] = None,
    sort: Literal["updated_at", "opened_at", "number", "title"] = "updated_at",
    order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> JsonReply:
    """Cases, filtered, searched, sorted, with cursor pagination."""
    page = queries.list_cases(
        platform.documents, actor.tenant,
        filters={"definition_key": definition_key, "status": status, "stage": stage, "queue": queue,
                 "assignee": assignee},
        text=q, sort=sort, descending=order == "desc", limit=limit, cursor=cursor, scope=scope,
    )
    return JsonReply({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/cases/{case_id}", response_class=JsonReply, response_model=Case, responses=query_responses(404))
def get_case(case_id: CaseIdPath, actor: ActorDep, platform: PlatformDep, scope: ReadScopeDep) -> JsonReply:
    """One case with its data and comment threads."""
    return JsonReply(queries.get_case(platform.documents, actor.tenant, case_id, scope))


@router.get("/cases/{case_id}/timeline", response_class=JsonReply, response_model=list[TimelineEntry],
            responses=query_responses(404))
def timeline(case_id: CaseIdPath, actor: ActorDep, platform: PlatformDep, scope: ReadScopeDep) -> JsonReply:
    """Every event of a case, in order, in words."""
    return JsonReply(queries.case_timeline(platform.documents, actor.tenant, case_id, scope))


def _case_events(platform: PlatformDep, actor: ActorDep, case_id: str, scope: ReadScope) -> list[Any]:
    """The events of a case the reader may see (its CaseOpened names the definition), else NotFound."""
    try:
        uid = UUID(case_id)
    except ValueError:
        raise NotFound(f"case {case_id} not found") from None
    events = platform.store.events_of(uid)
    if (not events or events[0].tenant != actor.tenant or not isinstance(events[0], CaseOpened)
            or not scope.allows(events[0].definition_key)):
        raise NotFound(f"case {case_id} not found")
    return events


@router.get("/cases/{case_id}/history", response_class=JsonReply, response_model=CaseAsOf,
            responses=query_responses(404))
async def case_history(
    case_id: CaseIdPath, actor: ActorDep, platform: PlatformDep, scope: ReadScopeDep,
    version: Annotated[int | None, Query(ge=1, le=MAX_POSITION)] = None,
    as_of: Annotated[datetime | None, Query(description="ISO-8601 moment, with a time zone.")] = None,
) -> JsonReply:
    """The case as it was at a version or a moment (replayed from its events)."""
    if (version is None) == (as_of is None):
        raise ValidationFailed("give exactly one of version or as_of", [FieldError("version", "or as_of")])
    if as_of is not None and as_of.tzinfo is None:
        raise ValidationFailed("as_of needs a time zone", [FieldError("as_of", "e.g. 2026-01-31T12:00:00Z")])
    events = await run_in_threadpool(_case_events, platform, actor, case_id, scope)
    return JsonReply(history.as_of(events, version=version, at=as_of))


@router.get("/cases/{case_id}/diff", response_class=JsonReply, response_model=CaseDiff,
            responses=query_responses(404))
async def case_diff(
    case_id: CaseIdPath, actor: ActorDep, platform: PlatformDep, scope: ReadScopeDep,
    from_: Annotated[int, Query(alias="from", ge=1, le=MAX_POSITION)],
    to: Annotated[int, Query(ge=1, le=MAX_POSITION)],
) -> JsonReply:
    """What changed between two versions of a case."""
    events = await run_in_threadpool(_case_events, platform, actor, case_id, scope)
    return JsonReply(history.compare(events, from_, to))


@router.get("/kanban/{definition_key}", response_class=JsonReply, response_model=Kanban,
            responses=query_responses(404))
def kanban(
    definition_key: DefinitionKeyPath, actor: ActorDep, platform: PlatformDep, scope: ReadScopeDep,
    per_column: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JsonReply:
    """The board of a definition: a column per stage with its open cases."""
    return JsonReply(queries.kanban(platform.documents, actor.tenant, definition_key, per_column, scope))


@router.get("/counts", response_class=JsonReply, response_model=CaseCounts, responses=query_responses())
def counts(
    actor: ActorDep, platform: PlatformDep, scope: ReadScopeDep, definition_key: str | None = None,
) -> JsonReply:
    """Case counts per status, stage, queue, definition and assignee."""
    return JsonReply(queries.case_counts(platform.documents, actor.tenant, definition_key, scope))


@router.get("/definitions", response_class=JsonReply, response_model=list[Definition],
            responses=query_responses(403))
def definitions(actor: ActorDep, platform: PlatformDep, scope: ReadScopeDep) -> JsonReply:
    """The definitions whose cases the reader may see."""
    return JsonReply(queries.list_collection(platform.documents, "definitions", actor.tenant, scope))


@router.get("/definitions/{key}", response_class=JsonReply, response_model=Definition,
            responses=query_responses(403, 404))
def definition(key: DefinitionKeyPath, actor: ActorDep, platform: PlatformDep, scope: ReadScopeDep) -> JsonReply:
    """One definition (its latest version and every earlier one), if the reader may see its cases."""
    scope.require_reference()
    return JsonReply(queries.get_definition(platform.documents, actor.tenant, key, scope))


@router.get("/queues", response_class=JsonReply, response_model=list[Queue], responses=query_responses(403))
def queues(actor: ActorDep, platform: PlatformDep, scope: ReadScopeDep) -> JsonReply:
    """The work queues of the tenant (reference data)."""
    return JsonReply(queries.list_collection(platform.documents, "queues", actor.tenant, scope))


@router.get("/record-types", response_class=JsonReply, response_model=list[RecordType],
            responses=query_responses(403))
def record_types(actor: ActorDep, platform: PlatformDep, scope: ReadScopeDep) -> JsonReply:
    """The record types of the tenant and their schemas (reference data)."""
    return JsonReply(queries.list_collection(platform.documents, "record_types", actor.tenant, scope))


@router.get("/record-types/{type_key}/records", response_class=JsonReply, response_model=list[ReferenceRecord],
            responses=query_responses(403))
def records(type_key: TypeKeyPath, actor: ActorDep, platform: PlatformDep, scope: ReadScopeDep) -> JsonReply:
    """The records of one record type (reference data)."""
    return JsonReply(queries.list_collection(platform.documents, "records", actor.tenant, scope, type_key=type_key))
