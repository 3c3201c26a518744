"""The FastAPI application: command and query routes, the live feed, identity, health, and the UI."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from adapters.embedded_runner import EmbeddedRunner
from adapters.read_model_follower import TrackingFollower
from api import (
    backpressure,
    openapi,
    problems,
    routes_audit,
    routes_auth,
    routes_batch,
    routes_commands,
    routes_documents,
    routes_incidents,
    routes_live,
    routes_messages,
    routes_process_instances,
    routes_process_messages,
    routes_processes,
    routes_queries,
    routes_signals,
    routes_signin,
    routes_tasks,
)
from api.fast_commands import FastCommands
from api.live import Broadcaster
from api.request_limits import RequestLimits
from api.schemas.platform import Health, Readiness
from api.schemas.problem import public_responses
from api.security_headers import SecurityHeaders, portal_csp
from casestream.bootstrap import Platform

log = logging.getLogger(__name__)
UI_DIR = Path(__file__).resolve().parent.parent / "ui" / "static"


def _public(error: str | None) -> str | None:
    """What an unauthenticated health probe may learn of an internal error: that there is one."""
    return None if error is None else "failing; the server log has the details"


class CasestreamApi(FastAPI):
    """The FastAPI app with the command routes' fast path in front of it (api/fast_commands.py)."""

    fast_commands: FastCommands | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_commands
        if fast is not None and scope["type"] == "http" and scope["method"] == "POST":
            matched = fast.match(scope)
            if matched is not None:
                scope["app"] = self
                await fast.handle(matched, scope, receive, send, super().__call__)
                return
        await super().__call__(scope, receive, send)


def create_app(platform: Platform, *, fast_commands: bool = True) -> CasestreamApi:
    """Build the app around an already bootstrapped platform (fast_commands=False: every request through FastAPI's
    routing, as tests/integration/api/test_fast_commands.py compares)."""
    app = CasestreamApi(
        title="casestream",
        version="1.0",
        description="Event-sourced case management: commands in, read models out. See docs/api.md.",
    )
    app.state.platform = platform
    # a Last-Event-ID replay first waits until the read models hold what the feed has published (distributed:
    # the workers' MongoDB; embedded: already there, since the runner publishes after folding)
    broadcaster = Broadcaster(catch_up=platform.runner.wait)
    app.state.broadcaster = broadcaster
    # distributed: the feed comes from Kafka; a follower (serve --workers) passes on what the runner process folded
    if isinstance(platform.runner, EmbeddedRunner | TrackingFollower):
        platform.runner.subscribe(broadcaster.publish)
    settings = platform.settings
    app.add_middleware(RequestLimits, max_bytes=settings.max_body_bytes, max_header_bytes=settings.max_header_bytes,
                       body_timeout=settings.body_timeout_seconds)
    uploads = [platform.storage.browser_origin] if platform.storage is not None else []
    policy = portal_csp(platform.settings.oidc_issuers, uploads)
    app.add_middleware(SecurityHeaders, portal_policy=policy)
    if fast_commands:  # the middlewares' checks, made by the fast path itself (their `app` is never called there)
        limits = RequestLimits(app, settings.max_body_bytes, settings.max_header_bytes, settings.body_timeout_seconds)
        app.fast_commands = FastCommands(app, limits, SecurityHeaders(app, policy))
    problems.install(app)
    backpressure.install(app, platform)  # lag measured in the lifespan, /metrics, 429 on commands above the limits
    app.include_router(routes_auth.router)
    app.include_router(routes_signin.router)
    app.include_router(routes_commands.router)
    app.include_router(routes_queries.router)
    app.include_router(routes_live.router)
    app.include_router(routes_tasks.router)
    app.include_router(routes_batch.router)
    app.include_router(routes_audit.router)
    app.include_router(routes_documents.router)
    app.include_router(routes_documents.storage_router)
    app.include_router(routes_messages.router)
    app.include_router(routes_incidents.router)
    app.include_router(routes_process_instances.router)
    app.include_router(routes_processes.router)
    app.include_router(routes_process_messages.router)
    app.include_router(routes_signals.router)
    openapi.install(app)

    @app.get("/healthz", tags=["health"], response_model=Health, responses=public_responses())
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], response_model=Readiness, responses={
        **public_responses(), 503: {"description": "Not ready: what does not answer (no internal error text).",
                                    "model": Readiness}})
    async def readyz() -> JSONResponse:
        """The event store and read models answer and the runner is running."""
        report: dict[str, Any] = {}
        try:
            head = await run_in_threadpool(platform.store.max_position)
            report["event_store"] = {"position": head}
            position = platform.runner.position
            report["read_models"] = {"position": position, "lag_events": max(0, head - position)}
        except Exception:  # readiness reports failures, it does not raise them (nor show their text: it is public)
            log.exception("readiness check failed")
            return JSONResponse({"status": "unavailable", "error": "the event store or read models did not answer; "
                                 "see the server log"}, status_code=503)
        runner_ok = platform.runner.running and platform.runner.last_error is None
        report["runner"] = {"running": platform.runner.running, "error": _public(platform.runner.last_error),
                            "role": "follower" if isinstance(platform.runner, TrackingFollower) else "runner"}
        if platform.lag is not None:
            report["lag"] = platform.lag.report.as_json()
        if platform.processes is not None:  # reported, not gating: cases can be worked by hand while it starts
            status = await run_in_threadpool(platform.processes.status)
            report["processes"] = {**status, "error": _public(status.get("error"))}
        report["status"] = "ready" if runner_ok else "unavailable"
        return JSONResponse(report, status_code=200 if runner_ok else 503)

    if UI_DIR.exists():
        app.mount("/ui", StaticFiles(directory=UI_DIR), name="ui")

        @app.get("/", include_in_schema=False)
        def index() -> FileResponse:
            return FileResponse(UI_DIR / "index.html")

    return app
