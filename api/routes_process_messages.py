"""POST /api/messages: publish a message for BPMN processes (docs/processes.md, "Messages").

The message is a command (`PublishProcessMessage`) stored as an event; then the engine's message buffer correlates
it to an instance waiting for that name and correlation key, or keeps it until a subscription opens or its time to
live passes. The e-mail routes live under /api/cases/{case_id}/messages and /api/mail/…, so this path is free.
"""

# No `from __future__ import annotations`: FastAPI reads the annotations at runtime.

import uuid

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import ActorDep, PlatformDep
from api.json_reply import JsonReply
from api.operations_access import engine_of
from api.routes_commands import body_model, command_of, reply_of, submit_command
from api.routes_processes import require
from api.schemas.problem import command_responses
from api.schemas.process_messages import PublishMessageReply
from api.strict_json import StrictJsonRoute
from commands.outcomes import Result
from commands.ports import EventStore
from commands.process_messages import PublishProcessMessage
from processes.engine import EmbeddedEngine
from processes.message_buffer import deliver_published

router = APIRouter(prefix="/api", tags=["processes"], route_class=StrictJsonRoute)
_Body = body_model(PublishProcessMessage)


@router.post("/messages", response_model=PublishMessageReply, status_code=201, responses=command_responses(),
             summary="Publish a message for processes (correlated now or buffered until its TTL)")
async def publish_message(request: Request, body: _Body, actor: ActorDep,  # type: ignore[valid-type]
                          platform: PlatformDep) -> JsonReply:
    """Publish a message: 201 with `correlated` and the instance it went to, or `buffered` while its time to live
    lasts; 409 when a message with the same name, correlation key and `message_id` is still alive; 200 with the
    first reply's state when `command_id` repeats a publish."""
    # the policy first (403 names why), then 503 before anything is stored when no engine runs here
    require(platform, actor, "PublishProcessMessage", {"kind": "process_message"})
    engine = engine_of(platform)
    command = command_of(PublishProcessMessage, body, request)
    result = await submit_command(request, command, actor)
    reply = await run_in_threadpool(_deliver, platform.store, engine, result)
    return JsonReply(reply, status_code=200 if result.repeated else 201)


def _deliver(store: EventStore, engine: EmbeddedEngine, result: Result) -> dict[str, object]:
    """Correlate the stored publication now or buffer it; the reply."""
    message_key = str(result.extra["message_key"])
    delivery = deliver_published(store, engine.messages, engine, uuid.UUID(message_key), repeated=result.repeated)
    return {**reply_of(result), "message_key": message_key, "expires_at": result.extra["expires_at"],
            "correlated": delivery.process_instance_key is not None,
            "process_instance_key": delivery.process_instance_key, "buffered": delivery.buffered}
