"""Sending one trigger to Novu with novu-py, and what can come of it (the publisher decides about retries)."""

from __future__ import annotations

from typing import Literal, Protocol

import httpx
import novu_py
from novu_py.models import NovuError

from adapters.novu_mapping import Trigger

Outcome = Literal["sent", "duplicate"]


class TriggerFailed(Exception):
    """A trigger Novu did not accept; `retriable` says whether trying again may help."""

    def __init__(self, message: str, *, status: int | None, retriable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retriable = retriable


class TriggerSender(Protocol):
    """Delivers one trigger: returns how it went or raises TriggerFailed."""

    async def send(self, trigger: Trigger) -> Outcome: ...


class NovuTriggers:
    """Sends triggers with novu-py (its own retries off: the publisher's backoff and dead-letter decide)."""

    def __init__(self, url: str, api_key: str, timeout_seconds: float = 10.0) -> None:
        if not api_key:
            raise ValueError("novu_api_key: empty (set CASESTREAM_NOVU_API_KEY)")
        self.client = novu_py.Novu(secret_key=api_key, server_url=url.rstrip("/"))
        self.timeout_ms = int(timeout_seconds * 1000)

    async def send(self, trigger: Trigger) -> Outcome:
        request: novu_py.TriggerEventRequestDtoTypedDict = {
            "workflow_id": trigger.workflow,
            "to": [{"subscriber_id": r} for r in trigger.recipients],
            "payload": trigger.payload,
            "transaction_id": trigger.transaction_id,
            "tenant": trigger.tenant,
            "actor": trigger.actor,
        }
        try:
            reply = await self.client.trigger_async(
                trigger_event_request_dto=request, idempotency_key=trigger.transaction_id, retries=None,
                timeout_ms=self.timeout_ms,
            )
        except NovuError as exc:
            if exc.status_code in (400, 409) and "transactionId" in exc.body and "not unique" in exc.body:
                return "duplicate"  # delivered before (a redelivered record, or a retry after a lost reply)
            retriable = exc.status_code >= 500 or exc.status_code in (408, 429)
            raise TriggerFailed(f"Novu answered {exc.status_code}: {exc.body[:500]}", status=exc.status_code,
                                retriable=retriable) from exc
        except httpx.HTTPError as exc:
            raise TriggerFailed(f"network error: {exc!r}", status=None, retriable=True) from exc
        result = reply.result
        if not result.acknowledged or result.status != novu_py.TriggerEventResponseDtoStatus.PROCESSED:
            raise TriggerFailed(f"Novu did not process the trigger: status {result.status.value}, "
                                f"errors {result.error}", status=201, retriable=False)
        return "sent"
