"""POST /api/messages: publish a message for BPMN processes (docs/processes.md, "Messages").

The message is a command (`PublishProcessMessage`) stored as an event; the process that runs the engine (this one
in the embedded mode, `casestream process-worker` in the distributed one) takes it from the log, correlates it to
an instance waiting for that name and correlation key or keeps it until a subscription opens or its time to live
passes, and records which (processes/request_follower.py). The reply waits a bounded time for that record; 202
with the message's Location when it did not come. The e-mail routes live under /api/cases/{case_id}/messages and
/api/mail/…, so this path is free.
"""

# No `from __future__ import annotations`: FastAPI reads the annotations at runtime.

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool

from api.deps import ActorDep, PlatformDep
from api.json_reply import JsonReply
from api.operations_access import read_until, require_processes
from api.routes_commands import body_model, command_of, reply_of, submit_command
from api.routes_processes import require
from api.schemas.problem import command_responses, query_responses
from api.schemas.process_messages import PublishMessageReply
from api.schemas.process_requests import MessageState
from api.strict_json import StrictJsonRoute
from commands.ports import EventStore
from commands.process_messages import PublishProcessMessage
from domain.errors import NotFound
from domain.process_message import ProcessMessage, ProcessMessagePublished, fate_of

router = APIRouter(prefix="/api", tags=["processes"], route_class=StrictJsonRoute)
_Body = body_model(PublishProcessMessage)
MESSAGES_PATH = "/api/messages"
PUBLISHED = {"kind": "process_message"}


@router.post("/messages", response_model=PublishMessageReply, status_code=201,
             responses={**command_responses(), 202: {
                 "model": MessageState, "description": "The engine has not taken the message in time: ask the "
                                                       "Location again."}},
             summary="Publish a message for processes (correlated now or buffered until its TTL)")
async def publish_message(request: Request, body: _Body, actor: ActorDep,  # type: ignore[valid-type]
                          platform: PlatformDep) -> JsonReply:
    """Publish a message: 201 with `correlated` and the instance it went to, or `buffered` while its time to live
    lasts; 409 when a message with the same name, correlation key and `message_id` is still alive; 200 with the
    first reply's state when `command_id` repeats a publish; 202 when the engine did not take it in time."""
    # the policy first (403 names why), then 503 before anything is stored when no engine runs anywhere
    require(platform, actor, "PublishProcessMessage", PUBLISHED)
    require_processes(platform)
    command = command_of(PublishProcessMessage, body, request)
    result = await submit_command(request, command, actor)
    key = uuid.UUID(str(result.extra["message_key"]))
    publication = int(str(result.extra["publication"]))
    state = await run_in_threadpool(await_message, platform.store, key, publication,
                                    platform.settings.wait_timeout_seconds)
    if not state["taken"]:
        return JsonReply(state, status_code=202, headers={"Location": f"{MESSAGES_PATH}/{key}"})
    reply = {**reply_of(result), "message_key": str(key), "expires_at": result.extra["expires_at"],
             "correlated": state["correlated"], "process_instance_key": state["process_instance_key"],
             "buffered": state["buffered"]}
    return JsonReply(reply, status_code=200 if result.repeated else 201)


@router.get(f"{MESSAGES_PATH.removeprefix('/api')}/{{message_key}}", response_model=MessageState,
            responses=query_responses(403, 404), summary="What became of a published message")
def get_message(message_key: Annotated[uuid.UUID, Path(description="The message key a publish answered.")],
                actor: ActorDep, platform: PlatformDep) -> JsonReply:
    """The latest publication of a message and what became of it when the engine took it (those who may publish
    may ask; read from the event store, where the engine records it)."""
    require(platform, actor, "PublishProcessMessage", PUBLISHED)
    try:
        message = ProcessMessage.replay(message_key, platform.store.events_of(message_key))
    except TypeError:  # the key names another kind of aggregate
        message = ProcessMessage(message_key)
    if not message.publications or message.tenant != actor.tenant:
        raise NotFound(f"process message {message_key} not found")
    return JsonReply(await_message(platform.store, message_key, message.publications, 0))


def await_message(store: EventStore, key: uuid.UUID, publication: int, timeout: float) -> dict[str, Any]:
    """What became of the message's `publication`-th publication (MessageState), once the engine took it or when
    `timeout` seconds passed."""
    events = read_until(lambda: store.events_of(key), lambda found: fate_of(found, publication) is not None, timeout)
    fate = fate_of(events, publication)
    published = [e for e in events if isinstance(e, ProcessMessagePublished)][publication - 1]
    instance, buffered = fate if fate is not None else (None, False)
    return {"message_key": str(key), "expires_at": published.expires_at, "taken": fate is not None,
            "correlated": instance is not None, "process_instance_key": instance, "buffered": buffered}
