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
        refusal = self._check_head(scope["headers"])
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
                await self._too_big(scope, receive, send)
                return
            if int(length) == 0:
                await self.app(scope, receive, send)
                return
        elif b"transfer-encoding" not in headers:  # no body announced
            await self.app(scope, receive, send)
            return
        try:
            body = await asyncio.wait_for(self._read(receive), self.body_timeout)
        except TimeoutError:
            detail = f"the request body did not arrive within {self.body_timeout:g}s"
            await problems.problem(408, "body-timeout", detail, headers={"Connection": "close"})(scope, receive, send)
            return
        if body is None:
            await self._too_big(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _check_head(self, raw: list[tuple[bytes, bytes]]) -> tuple[int, str, str] | None:
        size = sum(len(name) + len(value) + 4 for name, value in raw)
        if size > self.max_header_bytes:
            return 431, "headers-too-large", f"request headers are limited to {self.max_header_bytes} bytes"
        for name, value in raw:
            if name in _ID_HEADERS and not _ID.fullmatch(value):
                return (400, "invalid-header", f"{name.decode()} must be 1-{ID_MAX} characters of letters, digits "
                        "and ._:@/+=~-")
            if name == b"last-event-id" and not _POSITION.fullmatch(value):
                return 400, "invalid-header", "last-event-id must be a log position: 1-18 ASCII digits"
        return None

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

    async def _too_big(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request bodies are limited to {self.max_bytes} bytes"
        await problems.problem(413, "body-too-large", detail)(scope, receive, send)
