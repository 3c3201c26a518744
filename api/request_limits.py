"""Limits every request meets before any route sees it (pure ASGI: no task or thread per request).

- the request head: at most max_header_bytes in all (431); the id headers copied onto every stored event
  (X-Correlation-ID, X-Causation-ID) at most ID_MAX characters of a plain id alphabet, and Last-Event-ID a
  position of at most 18 ASCII digits (400 naming the header);
- the body: at most max_bytes (413), and all of it within body_timeout seconds of the request (408): a client that
  announces a body and never sends it no longer holds its connection forever.
"""

from __future__ import annotations

import asyncio
import re

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems

ID_MAX = 200
_ID = re.compile(rb"[A-Za-z0-9._:@/+=~-]{1," + str(ID_MAX).encode() + rb"}")
_POSITION = re.compile(rb"[0-9]{1,18}")
_ID_HEADERS = (b"x-correlation-id", b"x-causation-id")
# Document uploads through the local storage's signed URLs stream to disk under their own size limit
# (api/routes_documents.py, `document_upload_max_bytes`): only their body is neither read whole here nor timed.
STREAMED_UPLOAD = ("PUT", "/storage/")


class RequestLimits:
    """Refuses requests over the limits above with problem+json; hands the rest on with their body read."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_header_bytes: int = 16_384,
                 body_timeout: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_header_bytes = max_header_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.check_head(scope["headers"])
        if refusal is not None:
            await problems.problem(*refusal)(scope, receive, send)
            return
        if scope["method"] == STREAMED_UPLOAD[0] and scope["path"].startswith(STREAMED_UPLOAD[1]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await problems.problem(400, "bad-request", "Content-Length is not a number")(scope, receive, send)
                return
            if int(length) > self.max_bytes:
                await self.too_big()(scope, receive, send)
                return
            if int(length) == 0:
                await self.app(scope, receive, send)
                return
        elif b"transfer-encoding" not in headers:  # no body announced
            await self.app(scope, receive, send)
            return
        body = await self.read_body(receive)
        if isinstance(body, Response):
            await body(scope, receive, send)
            return
        await self.app(scope, replay(body, receive), send)

    def check_head(self, raw: list[tuple[bytes, bytes]]) -> tuple[int, str, str] | None:
        """(status, code, detail) of the request head's refusal, or None when it is within the limits."""
        size = 0
        refusal = None
        for name, value in raw:  # one pass: this runs on every request
            size += len(name) + len(value) + 4
            if refusal is not None:
                continue
            if name in _ID_HEADERS and not _ID.fullmatch(value):
                refusal = (400, "invalid-header", f"{name.decode()} must be 1-{ID_MAX} characters of letters, "
                           "digits and ._:@/+=~-")
            elif name == b"last-event-id" and not _POSITION.fullmatch(value):
                refusal = 400, "invalid-header", "last-event-id must be a log position: 1-18 ASCII digits"
        if size > self.max_header_bytes:
            return 431, "headers-too-large", f"request headers are limited to {self.max_header_bytes} bytes"
        return refusal

    async def read_body(self, receive: Receive) -> bytes | Response:
        """The whole body, or the refusal to answer: 413 once it passes max_bytes, 408 once body_timeout passed."""
        # a timer that cancels this task, as asyncio.timeout does, without its context manager's cost (~3 against
        # ~11 µs a request; wait_for would add a task per request)
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("read_body runs in a task")
        cancelling = task.cancelling()
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = asyncio.get_running_loop().call_later(self.body_timeout, expire)
        try:
            body = await self._read(receive)
        except asyncio.CancelledError:
            if not expired or task.uncancel() > cancelling:  # cancelled by someone else (too)
                raise
            detail = f"the request body did not arrive within {self.body_timeout:g}s"
            return problems.problem(408, "body-timeout", detail, headers={"Connection": "close"})
        finally:
            timer.cancel()
        return self.too_big() if body is None else body

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes max_bytes."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return None
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    def too_big(self) -> Response:
        return problems.problem(413, "body-too-large", f"request bodies are limited to {self.max_bytes} bytes")


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the already read body first, then whatever the connection sends next."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
