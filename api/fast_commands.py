"""The command routes of `command_route` (POST /api/cases and the others) answered without FastAPI's routing.

Per create, FastAPI's middleware layers, routing, body handling and dependency solving cost more CPU than the rest
of the event loop's share of the request. Here a POST whose route is a command route is answered straight from
the ASGI scope, doing what the layers it skips would do: the request limits (api/request_limits.py), backpressure,
the bearer token (only one verified before: api/deps.py), the strict JSON body, the route's body model, the bus,
the reply and the security headers. Anything unusual about the request (a refused head, no Content-Length or
another content type, a token not verified before, backpressure, JSON or a body the models refuse) hands it,
with its body, to the FastAPI app: every error reply stays what the routes and problems.py make of it, and the
OpenAPI is the routes'. Refusals of the bus are answered through the app's own exception handlers.
tests/integration/api/test_fast_commands.py compares both paths' replies, headers included.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from re import Pattern
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import ValidationError
from starlette.convertors import Convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from api import strict_json
from api.backpressure import Gate
from api.request_limits import RequestLimits, replay
from api.routes_commands import COMMAND_ROUTES, CommandRoute, command_from, submit_envelope
from api.security_headers import SecurityHeaders, secured
from commands.bus import Envelope
from domain.errors import DomainError

JSON = "application/json"  # exactly: other spellings and parameters go the long way
_WANTED = frozenset((b"content-length", b"content-type", b"authorization", b"x-correlation-id", b"x-causation-id"))


@dataclass(frozen=True)
class FastRoute:
    """A command route as the app routes it: its path pattern, and the earlier routes that could take its paths."""

    route: CommandRoute
    pattern: Pattern[str]
    convertors: Mapping[str, Convertor[Any]]
    earlier: tuple[RouteContext, ...]


class FastCommands:
    """The fast path of one app: `match` finds a command route, `handle` answers or hands over to the app."""

    def __init__(self, app: FastAPI, limits: RequestLimits, security: SecurityHeaders) -> None:
        self.app = app
        self.limits = limits
        self.security = security
        self._static: dict[str, FastRoute] | None = None  # built on first use: routes are added after this
        self._dynamic: list[FastRoute] = []
        self._gate: Gate | None = None  # backpressure.install sets it after this, if at all
        app.router.lifespan_context = self._warming(app.router.lifespan_context)

    def _warming(self, inner: Callable[[Any], AbstractAsyncContextManager[Any]],
                 ) -> Callable[[Any], AbstractAsyncContextManager[Any]]:
        """The app's lifespan, building the routes first: FastAPI works out each included route's context on the
        first walk (~0.4 s of CPU), which would stall the event loop at a process's first command POST (under
        load: every `serve --workers` follower's first seconds)."""

        @asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[Any]:
            self._ready()
            async with inner(app) as state:
                yield state

        return lifespan

    @property
    def ready(self) -> bool:
        """Whether the command routes were worked out (at the app's start-up, else at the first command POST)."""
        return self._static is not None

    def _ready(self) -> dict[str, FastRoute]:
        """The static routes, built on first use (after every route was added)."""
        if self._static is None:
            self._static = self._build()
            self._gate = getattr(self.app.state, "gate", None)
        return self._static

    def match(self, scope: Scope) -> tuple[FastRoute, dict[str, Any]] | None:
        """The command route a POST's scope goes to and its path parameters; None when the app routes it elsewhere."""
        static = self._ready()
        if scope.get("root_path"):
            return None
        path: str = scope["path"]
        route = static.get(path)
        if route is not None:
            return route, {}
        for candidate in self._dynamic:
            found = candidate.pattern.match(path)
            if found is None:
                continue
            if any(earlier.matches(scope)[0] is Match.FULL for earlier in candidate.earlier):
                return None
            params = {key: candidate.convertors[key].convert(value) for key, value in found.groupdict().items()}
            return candidate, params
        return None

    def _build(self) -> dict[str, FastRoute]:
        """The command routes of the app in its routing order; a static path's route decided here once."""
        static: dict[str, FastRoute] = {}
        routes = list(iter_route_contexts(self.app.router.routes))  # included routers flattened, in matching order
        for index, context in enumerate(routes):
            route = context.original_route
            if not (isinstance(route, APIRoute) and route.endpoint in COMMAND_ROUTES and route.methods == {"POST"}):
                continue
            # routes before this one that take POSTs (or any method) win a path both match
            earlier = tuple(r for r in routes[:index] if "POST" in (r.methods or {"POST"})
                            and _may_overlap(r.path_format, context.path_format))
            fast = FastRoute(COMMAND_ROUTES[route.endpoint], context.path_regex, context.param_convertors, earlier)
            if context.param_convertors:
                self._dynamic.append(fast)
                continue
            path = context.path
            if path is None:
                continue
            probe = {"type": "http", "method": "POST", "path": path, "root_path": ""}
            winner = next(r for r in routes if r.matches(probe)[0] is Match.FULL)
            if winner is context:
                static.setdefault(path, fast)
        return static

    async def handle(self, matched: tuple[FastRoute, dict[str, Any]], scope: Scope, receive: Receive, send: Send,
                     app: ASGIApp) -> None:
        """Answer the command POST scope, or hand it (with its body once read) to app."""
        fast, params = matched
        wanted: dict[bytes, str] = {}
        for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get
            if name in _WANTED and name not in wanted:
                wanted[name] = value.decode("latin-1")
        length, authorization = wanted.get(b"content-length"), wanted.get(b"authorization")
        platform = self.app.state.platform
        actor = None
        if authorization is not None and authorization[:7].lower() == "bearer ":  # as get_authorization_scheme_param
            actor = platform.verifier.known(authorization[7:])
        gate = self._gate
        if (actor is None or wanted.get(b"content-type") != JSON or length is None
                or not (length.isascii() and length.isdigit())
                or not 0 < int(length) <= self.limits.max_bytes or self.limits.check_head(scope["headers"])
                or (gate is not None and not gate.decision().admit)):
            await app(scope, receive, send)
            return
        body = await self.limits.read_body(receive)
        if isinstance(body, Response):
            await self._reply(body, scope, receive, send)
            return
        route = fast.route
        try:
            command = command_from(route.command_type, route.body_type.model_validate(strict_json.loads(body)),
                                   params)
        except (ValueError, TypeError, ValidationError):  # StrictJsonError is a ValueError: the app answers it
            await app(scope, replay(body, receive), send)
            return
        envelope = Envelope(command, actor, wanted.get(b"x-correlation-id"), wanted.get(b"x-causation-id"))
        try:
            result = await submit_envelope(self.app.state, envelope)
        except Exception as exc:
            await self._refusal(exc, scope, receive, send)
            if not isinstance(exc, DomainError):
                raise  # as Starlette's ServerErrorMiddleware does, after its reply: the server logs it
            return
        await self._reply(route.reply(result), scope, receive, send)

    async def _refusal(self, exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        """The reply the app's exception handlers give exc (its class's, else Exception's: a 500)."""
        handlers = self.app.exception_handlers
        handler = next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
        if handler is None:
            raise exc
        response = handler(Request(scope, receive), exc)  # problems.py's handlers are all async
        await self._reply(await response if inspect.isawaitable(response) else response, scope, receive, send)

    async def _reply(self, response: Response, scope: Scope, receive: Receive, send: Send) -> None:
        """Send response with the security headers SecurityHeaders would add."""
        headers = secured(response.raw_headers, self.security.policy_for(scope["path"]))
        if response.background is not None:  # none of problems.py's replies nor JsonReply has one; kept correct
            response.raw_headers[:] = headers
            await response(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

def _may_overlap(one: str | None, other: str | None) -> bool:
    """Whether some path could match both path formats: False only when a segment tells them apart (both have as
    many segments, each a literal or a whole-segment parameter, and some literal differs), else True."""
    if one is None or other is None:
        return True
    a, b = one.split("/"), other.split("/")
    if any(":" in part or ("{" in part and not _whole(part)) for part in (*a, *b)):
        return True  # a typed or partial parameter (`{p:path}` spans segments): not told apart here
    if len(a) != len(b):
        return False
    return all(_whole(x) or _whole(y) or x == y for x, y in zip(a, b, strict=True))


def _whole(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}") and segment.count("{") == 1
