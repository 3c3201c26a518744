"""Command endpoints: each translates one POST into one command and hands it to the bus."""

# No `from __future__ import annotations` here: the generated endpoints' annotations must be real classes.

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, create_model
from starlette.concurrency import run_in_threadpool

from api.deps import DESIGNER_ROLES, WRITER_ROLES, ActorDep, PlatformDep, require_role
from commands import messages as m

router = APIRouter(prefix="/api", tags=["commands"])


class CommandReply(BaseModel):
    """What every command returns: the aggregate id, its new version and the log position to wait for."""

    model_config = ConfigDict(extra="allow")
    id: str
    version: int
    position: int


def body_model(command_type: type[m.Command]) -> type[BaseModel]:
    """The request body of a command: its fields less the ones taken from the path."""
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in command_type.model_fields.items()
        if name not in command_type.target_fields
    }
    config = ConfigDict(extra="forbid", populate_by_name=True, str_max_length=20_000)
    return create_model(f"{command_type.__name__}Body", __config__=config, **fields)


def command_route(path: str, command_type: type[m.Command], *, status: int = 200, designer: bool = False) -> None:
    """Register POST path for command_type."""
    body_type = body_model(command_type)
    allowed = DESIGNER_ROLES if designer else WRITER_ROLES

    async def endpoint(request: Request, body: body_type, actor: ActorDep, platform: PlatformDep) -> JSONResponse:  # type: ignore[valid-type]
        require_role(actor, allowed, command_type.__name__)
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


command_route("/definitions", m.PublishCaseDefinition, designer=True)
command_route("/queues", m.DefineQueue, designer=True)
command_route("/record-types", m.DefineRecordType, designer=True)
command_route("/record-types/{type_key}/records", m.SaveRecord, designer=True)
command_route("/record-types/{type_key}/records/{key}/remove", m.RemoveRecord, designer=True)
command_route("/cases", m.OpenCase, status=201)
command_route("/cases/{case_id}/data", m.UpdateCaseData)
command_route("/cases/{case_id}/title", m.RetitleCase)
command_route("/cases/{case_id}/stage", m.MoveCaseToStage)
command_route("/cases/{case_id}/assign", m.AssignCase)
command_route("/cases/{case_id}/unassign", m.UnassignCase)
command_route("/cases/{case_id}/queue", m.QueueCase)
command_route("/cases/{case_id}/comments", m.AddComment)
command_route("/cases/{case_id}/comments/{comment_id}/edit", m.EditComment)
command_route("/cases/{case_id}/comments/{comment_id}/delete", m.DeleteComment)
command_route("/cases/{case_id}/close", m.CloseCase)
command_route("/cases/{case_id}/reopen", m.ReopenCase)
command_route("/cases/{case_id}/archive", m.ArchiveCase)
