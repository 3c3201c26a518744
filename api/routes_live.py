"""GET /api/events: the Server-Sent Events feed of case events for the token's tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from api.deps import ActorDep, PlatformDep
from api.live import Broadcaster, stream
from api.problems import ApiProblem
from api.read_scope import ReadScopeDep, read_scopes
from api.schemas.problem import problem_responses
from domain.errors import FieldError, ValidationFailed
from projections.read_scope import ReadScope

router = APIRouter(prefix="/api", tags=["live"])


@router.get(
    "/events", response_class=EventSourceResponse,
    responses={200: {"description": "Server-Sent Events: `id` a log position, `event` the event type, `data` a "
                                    "timeline entry (JSON); a comment line every 15 s keeps it open.",
                     "content": {"text/event-stream": {"schema": {"type": "string"}}}},
               **problem_responses(401, 422, 503)},
)
async def events(
    request: Request,
    actor: ActorDep,
    platform: PlatformDep,
    scope: ReadScopeDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", pattern=r"^[0-9]{1,18}$",
                                                description="Resume after this log position.")] = None,
    resume_after: Annotated[int | None, Query(ge=0, le=2**63 - 1, alias="last_event_id")] = None,
    case_id: Annotated[str | None, Query(max_length=64)] = None,
) -> EventSourceResponse:
    """Events of the cases you may read as they become visible, resumable with Last-Event-ID (a log position)."""
    after = resume_after
    if last_event_id is not None:
        if not (last_event_id.isascii() and last_event_id.isdigit() and len(last_event_id) <= 18):
            raise ApiProblem(422, "validation-failed", "Last-Event-ID must be a log position (an integer)")
        after = int(last_event_id)
    if after is not None and after > (head := await run_in_threadpool(platform.store.max_position)):
        # a stream resumed past the log's end would wait for positions that are not coming (or are another log's)
        raise ValidationFailed(f"position {after} is beyond the log (its last position is {head})",
                               [FieldError("Last-Event-ID" if last_event_id is not None else "last_event_id",
                                           f"at most {head}")])
    broadcaster: Broadcaster = request.app.state.broadcaster
    scopes = read_scopes(request.app, platform)

    def scope_of(fresh: bool) -> ReadScope:
        return scopes.of(actor.user, actor.tenant, actor.roles, actor.groups, fresh=fresh)

    return EventSourceResponse(
        stream(broadcaster, platform.documents, actor.tenant, after, case_id, scope_of, scope), ping=15,
        send_timeout=30,
    )
