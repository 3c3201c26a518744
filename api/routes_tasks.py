"""Task endpoints: ad-hoc tasks on a case, claim / unclaim / complete / cancel / priority / assign, the inbox."""

# No `from __future__ import annotations` here: the generated endpoints' annotations must be real classes.

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, create_model
from starlette.concurrency import run_in_threadpool

from api.deps import WRITER_ROLES, ActorDep, PlatformDep, Waited, require_role
from api.routes_commands import CommandReply
from commands import messages as m
from projections import task_queries
from projections.queries import MAX_LIMIT

router = APIRouter(prefix="/api", tags=["tasks"])

# what only a process sets: a person's ad-hoc task gets a new id and belongs to no process instance
PROCESS_FIELDS = frozenset({"task_id", "process_instance_key", "element_id"})


def _body_model(command_type: type[m.Command], omit: frozenset[str]) -> type[BaseModel]:
    """The request body of a command: its fields less those from the path and those omitted."""
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in command_type.model_fields.items()
        if name not in command_type.target_fields and name not in omit
    }
    config = ConfigDict(extra="forbid", populate_by_name=True, str_max_length=20_000)
    return create_model(f"{command_type.__name__}Body", __config__=config, **fields)


def task_route(
    path: str, command_type: type[m.Command], *, status: int = 200, omit: frozenset[str] = frozenset(),
    writers_only: bool = False,
) -> None:
    """Register POST path for command_type; who may do what on a task is the aggregate's decision."""
    body_type = _body_model(command_type, omit)

    async def endpoint(request: Request, body: body_type, actor: ActorDep, platform: PlatformDep) -> JSONResponse:  # type: ignore[valid-type]
        if writers_only:
            require_role(actor, WRITER_ROLES, command_type.__name__)
        values = body.model_dump(by_alias=True, exclude_unset=True)  # type: ignore[attr-defined]
        values.update({name: request.path_params[name] for name in command_type.target_fields})
        command = command_type.model_validate(values)
        result = await run_in_threadpool(
            platform.bus.dispatch, command, actor,
            correlation_id=request.headers.get("x-correlation-id"),
            causation_id=request.headers.get("x-causation-id"),
        )
        reply = {"id": result.id, "version": result.version, "position": result.position, **result.extra}
        return JSONResponse(reply, status_code=status if not result.repeated else 200)

    endpoint.__name__ = command_type.__name__
    router.add_api_route(
        path, endpoint, methods=["POST"], response_model=CommandReply, status_code=status,
        summary=(command_type.__doc__ or command_type.__name__).strip().splitlines()[0],
        name=command_type.__name__,
    )


task_route("/cases/{case_id}/tasks", m.CreateTask, status=201, omit=PROCESS_FIELDS, writers_only=True)
task_route("/tasks/{task_id}/claim", m.ClaimTask)
task_route("/tasks/{task_id}/unclaim", m.UnclaimTask)
task_route("/tasks/{task_id}/complete", m.CompleteTask)
task_route("/tasks/{task_id}/cancel", m.CancelTask)
task_route("/tasks/{task_id}/priority", m.ChangeTaskPriority)
task_route("/tasks/{task_id}/assign", m.AssignTask)


@router.get("/tasks", dependencies=[Waited])
def list_tasks(
    actor: ActorDep,
    platform: PlatformDep,
    view: Annotated[
        Literal["mine", "groups", "unassigned", "all"],
        Query(description="mine: held by or assigned to me; groups: unclaimed, for one of my roles; "
                          "unassigned: open and for nobody in particular; all: every task of the tenant."),
    ] = "mine",
    case_id: Annotated[str | None, Query(max_length=100)] = None,
    status: Literal["open", "claimed", "completed", "cancelled"] | None = None,
    sort: Literal["due_at", "priority", "created_at"] = "due_at",
    order: Annotated[
        Literal["asc", "desc"] | None,
        Query(description="Default: due_at ascending (no due date last), priority and created_at descending."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> dict[str, Any]:
    """An inbox view of tasks, filtered by case and status, sorted, with cursor pagination."""
    page = task_queries.list_tasks(
        platform.documents, actor.tenant, actor.user, actor.roles, view=view, case_id=case_id, status=status,
        sort=sort, descending=None if order is None else order == "desc", limit=limit, cursor=cursor,
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/tasks/{task_id}", dependencies=[Waited])
def get_task(task_id: str, actor: ActorDep, platform: PlatformDep) -> dict[str, Any]:
    """One task with its form schema and, once completed, its data."""
    return task_queries.get_task(platform.documents, actor.tenant, task_id)
