"""Command endpoints: each translates one POST into one command and hands it to the bus."""

# No `from __future__ import annotations` here: the generated endpoints' annotations must be real classes.

import inspect
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import MaxLen
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, create_model

from api.command_intake import intake_of
from api.deps import BearerActorDep
from api.json_reply import JsonReply
from api.schemas.commands import CommandReply
from api.schemas.problem import command_responses
from api.strict_json import StrictJsonRoute
from commands import messages as m
from commands.bus import Actor, Envelope
from commands.outcomes import Result

router = APIRouter(prefix="/api", tags=["commands"], route_class=StrictJsonRoute)

# The bus blocks on the event store; its calls run on a pool of their own. Concurrent commands are handled together
# (CommandBus.submit): one thread leads a batch while the others wait for their answers, so waiting threads are
# cheap and 32 lets 32 concurrent requests share one batch.
BUS_THREADS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="casestream-bus")


@dataclass(frozen=True)
class Batchable:
    """A command that POST /api/commands accepts: what only its own endpoint may not set, and its status. Who may
    send it is the policy's decision, per command (commands/authorization.py)."""

    command_type: type[m.Command]
    omit: frozenset[str]
    status: int


BATCHABLE: dict[str, Batchable] = {}


def batchable(command_type: type[m.Command], status: int, omit: frozenset[str] = frozenset()) -> None:
    """Let the batch endpoint accept command_type, with the rules of its own endpoint."""
    BATCHABLE[command_type.__name__] = Batchable(command_type, omit, status)


def body_model(command_type: type[m.Command], omit: frozenset[str] = frozenset()) -> type[BaseModel]:
    """The request body of a command: its fields less the ones taken from the path and those omitted."""
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in command_type.model_fields.items()
        if name not in command_type.target_fields and name not in omit
    }
    config = ConfigDict(extra="forbid", populate_by_name=True, str_max_length=20_000)
    return create_model(f"{command_type.__name__}Body", __config__=config, **fields)


def command_of(command_type: type[m.Command], body: BaseModel, request: Request) -> m.Command:
    """The command a POST asks for: the fields its body set, plus the target ids from its path."""
    return command_from(command_type, body, request.path_params)


def command_from(command_type: type[m.Command], body: BaseModel, path_params: Mapping[str, Any]) -> m.Command:
    """command_of for the path parameters as matched (the fast path has no Request)."""
    values = body.model_dump(by_alias=True, exclude_unset=True)
    values.update({name: path_params[name] for name in command_type.target_fields})
    return command_type.model_validate(values)


def reply_of(result: Result) -> dict[str, Any]:
    """A command's reply body (CommandReply)."""
    return {"id": result.id, "version": result.version, "position": result.position, **result.extra}


def path_parameters(command_type: type[m.Command]) -> list[inspect.Parameter]:
    """The command's target fields as path parameters, with the command field's type and length limit."""
    parameters = []
    for name in command_type.target_fields:
        info = command_type.model_fields[name]
        limit = next((c.max_length for c in info.metadata if isinstance(c, MaxLen)), None)
        path = Path(max_length=limit, description=info.description or f"The {name.replace('_', ' ')}.")
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                            annotation=Annotated[info.annotation, path]))
    return parameters


def add_command_route(
    router: APIRouter, path: str, endpoint: Callable[..., Awaitable[Response]], command_type: type[m.Command],
    status: int,
) -> None:
    """Register endpoint as POST path, named and summarised after command_type, its path parameters declared (the
    endpoint takes them as **path; FastAPI validates and documents them from the signature set here)."""
    endpoint.__name__ = command_type.__name__
    own = [p for p in inspect.signature(endpoint).parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    endpoint.__signature__ = inspect.Signature([*own, *path_parameters(command_type)])  # type: ignore[attr-defined]
    router.add_api_route(
        path, endpoint, methods=["POST"], response_model=CommandReply, status_code=status,
        summary=(command_type.__doc__ or command_type.__name__).strip().splitlines()[0],
        name=command_type.__name__, responses=command_responses(),
    )


async def submit_command(request: Request, command: m.Command, actor: Actor) -> Result:
    """Hand one command to the bus through the app's intake, with the request's correlation and causation ids."""
    headers = request.headers
    envelope = Envelope(command, actor, headers.get("x-correlation-id"), headers.get("x-causation-id"))
    return await submit_envelope(request.app.state, envelope)


async def submit_envelope(state: Any, envelope: Envelope) -> Result:
    """Hand one command to the bus through the intake of the app whose state this is."""
    return await intake_of(state, state.platform.bus, BUS_THREADS).submit(envelope)


@dataclass(frozen=True)
class CommandRoute:
    """A route of command_route: what api/fast_commands.py needs to answer it without FastAPI's routing."""

    command_type: type[m.Command]
    body_type: type[BaseModel]
    status: int

    def reply(self, result: Result) -> JsonReply:
        """The route's reply to result."""
        return JsonReply(reply_of(result), status_code=self.status if not result.repeated else 200)


# the endpoints of command_route, each with its route (the fast path finds them among the app's routes)
COMMAND_ROUTES: dict[Callable[..., Awaitable[Response]], CommandRoute] = {}


def command_route(path: str, command_type: type[m.Command], *, status: int = 200) -> None:
    """Register POST path for command_type (the bus's policy decides who may send it)."""
    body_type = body_model(command_type)
    route = CommandRoute(command_type, body_type, status)

    async def endpoint(request: Request, body: body_type, actor: BearerActorDep, **_path: Any) -> Response:  # type: ignore[valid-type]
        return route.reply(await submit_command(request, command_of(command_type, body, request), actor))

    add_command_route(router, path, endpoint, command_type, status)
    batchable(command_type, status)
    COMMAND_ROUTES[endpoint] = route


command_route("/definitions", m.PublishCaseDefinition)
command_route("/queues", m.DefineQueue)
command_route("/record-types", m.DefineRecordType)
command_route("/record-types/{type_key}/records", m.SaveRecord)
command_route("/record-types/{type_key}/records/{key}/remove", m.RemoveRecord)
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
