"""POST /api/commands: many commands in one request, decided in order and stored together.

Each command is decided as if sent on its own endpoint, one after the other (commands/batch.py). The request is
checked as a whole first: an unknown command type or a malformed command refuses the whole request (422, nothing
stored). After that every command has its own answer, in `results`: what its own endpoint would have answered, the
`status` included; a command the policy refuses (403) or the domain refuses (an illegal transition, a stale
expected_version, ...) gets its problem document and the others are stored.
"""

# No `from __future__ import annotations` here: the endpoint's annotations must be real classes.

import asyncio
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.deps import BearerActorDep
from api.json_reply import JsonReply
from api.problems import domain_problem_body
from api.routes_commands import BATCHABLE, BUS_THREADS, Batchable, reply_of
from api.schemas.commands import BatchReply
from api.schemas.problem import command_responses
from api.strict_json import StrictJsonRoute
from casestream.bootstrap import Platform
from commands import messages as m
from domain.errors import DomainError

router = APIRouter(prefix="/api", tags=["commands"], route_class=StrictJsonRoute)
MAX_COMMANDS = 500


class CommandBatch(BaseModel):
    """Commands to handle in order; each names its command `type` and has the fields of that command."""

    model_config = ConfigDict(extra="forbid")
    commands: list[dict[str, Any]] = Field(
        min_length=1, max_length=MAX_COMMANDS,
        description="Each: {\"type\": \"AddComment\", \"case_id\": \"...\", \"body\": \"...\"}: the command's name "
                    "and its fields, the ones its own endpoint takes from the path included.",
    )


def parse(batch: CommandBatch) -> list[tuple[m.Command, Batchable]]:
    """The commands of the batch, or one error naming every malformed one (`commands[i].field`)."""
    errors: list[dict[str, Any]] = []
    parsed: list[tuple[m.Command, Batchable]] = []
    for index, item in enumerate(batch.commands):
        where = ("body", "commands", index)
        name = item.get("type")
        spec = BATCHABLE.get(name) if isinstance(name, str) else None
        if spec is None:
            errors.append({"loc": (*where, "type"), "type": "value_error",
                           "msg": f"unknown command type {name!r}; one of: {', '.join(sorted(BATCHABLE))}"})
            continue
        fields = {key: value for key, value in item.items() if key != "type"}
        for key in sorted(spec.omit & fields.keys()):
            errors.append({"loc": (*where, key), "type": "extra_forbidden",
                           "msg": f"{name} does not take {key} from a request"})
        try:
            parsed.append((spec.command_type.model_validate(fields), spec))
        except ValidationError as exc:
            errors.extend({**e, "loc": (*where, *e["loc"])} for e in exc.errors(include_url=False))
    if errors:
        raise RequestValidationError(errors)
    return parsed


@router.post("/commands", response_model=BatchReply, summary="Send many commands at once",
             responses=command_responses())
async def send_commands(request: Request, batch: CommandBatch, actor: BearerActorDep) -> Response:
    parsed = parse(batch)
    platform: Platform = request.app.state.platform
    headers = request.headers
    outcomes = await asyncio.get_running_loop().run_in_executor(BUS_THREADS, partial(
        platform.bus.submit_many, [command for command, _ in parsed], actor,
        correlation_id=headers.get("x-correlation-id"), causation_id=headers.get("x-causation-id"),
    ))
    results: list[dict[str, Any]] = []
    position = 0
    for (_command, spec), outcome in zip(parsed, outcomes, strict=True):
        if isinstance(outcome, DomainError):
            results.append(domain_problem_body(outcome))
            continue
        results.append({"status": 200 if outcome.repeated else spec.status, **reply_of(outcome)})
        position = max(position, outcome.position)
    return JsonReply({"position": position, "results": results})
