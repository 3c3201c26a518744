"""Task endpoints: ad-hoc tasks on a case, claim / unclaim / complete / cancel / priority / assign, the inbox."""

# No `from __future__ import annotations` here: the generated endpoints' annotations must be real classes.

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api.deps import ActorDep, PlatformDep, Waited
from api.json_reply import JsonReply
from api.read_scope import ReadScopeDep
from api.routes_commands import add_command_route, batchable, body_model, command_of, reply_of, submit_command
from api.schemas.params import TaskIdPath
from api.schemas.problem import query_responses
from api.schemas.tasks import Task, TaskPage
from api.strict_json import StrictJsonRoute
from commands import messages as m
from projections import task_queries
from projections.queries import MAX_LIMIT

router = APIRouter(prefix="/api", tags=["tasks"], route_class=StrictJsonRoute)

# what only a process sets: a person's ad-hoc task gets a new id and belongs to no process instance
PROCESS_FIELDS = frozenset({"task_id", "process_instance_key", "element_id"})


def task_route(
    path: str, command_type: type[m.Command], *, status: int = 200, omit: frozenset[str] = frozenset()
) -> None:
    """Register POST path for command_type; who may do what on a task is the policy's decision, then the task's."""
    body_type = body_model(command_type, omit)

    async def endpoint(
        request: Request, body: body_type, actor: ActorDep, platform: PlatformDep, **_path: Any,  # type: ignore[valid-type]
    ) -> JSONResponse:
        result = await submit_command(request, command_of(command_type, body, request), actor)
        return JSONResponse(reply_of(result), status_code=status if not result.repeated else 200)

    add_command_route(router, path, endpoint, command_type, status)
    batchable(command_type, status, omit)


task_route("/cases/{case_id}/tasks", m.CreateTask, status=201, omit=PROCESS_FIELDS)
task_route("/tasks/{task_id}/claim", m.ClaimTask)
task_route("/tasks/{task_id}/unclaim", m.UnclaimTask)
task_route("/tasks/{task_id}/complete", m.CompleteTask)
task_route("/tasks/{task_id}/cancel", m.CancelTask)
task_route("/tasks/{task_id}/priority", m.ChangeTaskPriority)
task_route("/tasks/{task_id}/assign", m.AssignTask)


@router.get("/tasks", dependencies=[Waited], response_class=JsonReply, response_model=TaskPage,
            responses=query_responses())
def list_tasks(
    actor: ActorDep,
    platform: PlatformDep,
    scope: ReadScopeDep,
    view: Annotated[
        Literal["mine", "groups", "unassigned", "all"],
        Query(description="mine: held by or assigned to me; groups: unclaimed, for one of my roles or groups; "
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
) -> JsonReply:
    """An inbox view of tasks, filtered by case and status, sorted, with cursor pagination."""
    page = task_queries.list_tasks(
        platform.documents, actor.tenant, actor.user, (*actor.roles, *actor.groups), view=view, case_id=case_id,
        status=status, sort=sort, descending=None if order is None else order == "desc", limit=limit, cursor=cursor,
        scope=scope,
    )
    return JsonReply({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/tasks/{task_id}", dependencies=[Waited], response_class=JsonReply, response_model=Task,
            responses=query_responses(404))
def get_task(task_id: TaskIdPath, actor: ActorDep, platform: PlatformDep, scope: ReadScopeDep) -> JsonReply:
    """One task with its form schema and, once completed, its data."""
    return JsonReply(task_queries.get_task(platform.documents, actor.tenant, task_id, scope))
