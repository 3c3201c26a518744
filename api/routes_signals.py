"""POST /api/signals: broadcast a signal for BPMN processes (docs/processes.md, "Signals"), as Zeebe's broadcast.

The signal is a command (`BroadcastSignal`) stored as an event; the process that runs the engine (this one in the
embedded mode, `casestream process-worker` in the distributed one) takes it from the log, starts the processes
whose start event is the signal's and delivers it to every waiting catch of its name in the tenant, then records
where it went (processes/request_follower.py). The reply waits a bounded time for that record.
"""

# No `from __future__ import annotations`: FastAPI reads the annotations at runtime.

import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import ActorDep, PlatformDep
from api.json_reply import JsonReply
from api.operations_access import FIRST_PAUSE, LONGEST_PAUSE, require_processes
from api.routes_commands import body_model, command_of, reply_of, submit_command
from api.routes_processes import require
from api.schemas.problem import command_responses
from api.schemas.process_signals import BroadcastSignalReply
from api.strict_json import StrictJsonRoute
from commands.ports import EventStore
from commands.process_signals import BroadcastSignal
from domain.process_signal import ProcessSignalDelivered

router = APIRouter(prefix="/api", tags=["processes"], route_class=StrictJsonRoute)
_Body = body_model(BroadcastSignal)
SIGNALS = {"kind": "process_signal"}


@router.post("/signals", response_model=BroadcastSignalReply, status_code=201, responses=command_responses(),
             summary="Broadcast a signal to the tenant's processes")
async def broadcast_signal(request: Request, body: _Body, actor: ActorDep,  # type: ignore[valid-type]
                           platform: PlatformDep) -> JsonReply:
    """Broadcast a signal: 201 with the instances it started and reached (`taken` false when the engine did not
    take it in time); 200 with the first reply when `command_id` repeats a broadcast."""
    # the policy first (403 names why), then 503 before anything is stored when no engine runs anywhere
    require(platform, actor, "BroadcastSignal", SIGNALS)
    require_processes(platform)
    command = command_of(BroadcastSignal, body, request)
    result = await submit_command(request, command, actor)
    key = uuid.UUID(str(result.extra["signal_key"]))
    state = await run_in_threadpool(await_signal, platform.store, key, platform.settings.wait_timeout_seconds)
    return JsonReply({**reply_of(result), **state}, status_code=200 if result.repeated else 201)


def await_signal(store: EventStore, key: uuid.UUID, timeout: float) -> dict[str, Any]:
    """Where a broadcast went, once the engine recorded it or when `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    pause = FIRST_PAUSE
    while True:
        delivered = next((e for e in store.events_of(key) if isinstance(e, ProcessSignalDelivered)), None)
        remaining = deadline - time.monotonic()
        if delivered is not None or remaining <= 0:
            break
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, LONGEST_PAUSE)
    return {"signal_key": str(key), "taken": delivered is not None,
            "started": list(delivered.started) if delivered else [],
            "delivered": list(delivered.delivered) if delivered else []}
