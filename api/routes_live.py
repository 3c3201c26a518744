"""GET /api/events: the Server-Sent Events feed of case events for the token's tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse

from api.deps import ActorDep, PlatformDep
from api.live import Broadcaster, stream
from api.problems import ApiProblem
from api.read_scope import ReadScopeDep, read_scopes
from projections.read_scope import ReadScope

router = APIRouter(prefix="/api", tags=["live"])


@router.get("/events", response_class=EventSourceResponse)
async def events(
    request: Request,
    actor: ActorDep,
    platform: PlatformDep,
    scope: ReadScopeDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    resume_after: Annotated[int | None, Query(ge=0, alias="last_event_id")] = None,
    case_id: Annotated[str | None, Query(max_length=64)] = None,
) -> EventSourceResponse:
    """Events of the cases you may read as they become visible, resumable with Last-Event-ID (a log position)."""
    after = resume_after
    if last_event_id is not None:
        if not last_event_id.isdigit():
            raise ApiProblem(422, "validation-failed", "Last-Event-ID must be a log position (an integer)")
        after = int(last_event_id)
    broadcaster: Broadcaster = request.app.state.broadcaster
    scopes = read_scopes(request.app, platform)

    def scope_of() -> ReadScope:
        return scopes.of(actor.user, actor.tenant, actor.roles, actor.groups)

    return EventSourceResponse(
        stream(broadcaster, platform.documents, actor.tenant, after, case_id, scope_of, scope), ping=15,
        send_timeout=30,
    )
