"""The FastAPI application: command and query routes, the live feed, identity, health, and the UI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.types import ASGIApp

from api import problems, routes_auth, routes_commands, routes_live, routes_queries
from api.live import Broadcaster
from casestream.bootstrap import Platform

UI_DIR = Path(__file__).resolve().parent.parent / "ui" / "static"


class BodyLimit(BaseHTTPMiddleware):
    """Refuse bodies above the configured size before reading them whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        too_big = problems.problem(413, "body-too-large", f"request bodies are limited to {self.max_bytes} bytes")
        if length is not None:
            if not length.isdigit():
                return problems.problem(400, "bad-request", "Content-Length is not a number")
            if int(length) > self.max_bytes:
                return too_big
        elif request.method in ("POST", "PUT", "PATCH"):
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > self.max_bytes:
                    return too_big
        return await call_next(request)


def create_app(platform: Platform) -> FastAPI:
    """Build the app around an already bootstrapped platform."""
    app = FastAPI(
        title="casestream",
        version="1.0",
        description="Event-sourced case management: commands in, read models out. See docs/api.md.",
    )
    app.state.platform = platform
    broadcaster = Broadcaster()
    app.state.broadcaster = broadcaster
    platform.runner.subscribe(broadcaster.publish)
    app.add_middleware(BodyLimit, max_bytes=platform.settings.max_body_bytes)
    problems.install(app)
    app.include_router(routes_auth.router)
    app.include_router(routes_commands.router)
    app.include_router(routes_queries.router)
    app.include_router(routes_live.router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """The event store and read models answer and the runner is running."""
        report: dict[str, Any] = {}
        try:
            head = await run_in_threadpool(platform.store.max_position)
            report["event_store"] = {"position": head}
            position = platform.runner.position
            report["read_models"] = {"position": position, "lag_events": max(0, head - position)}
        except Exception as exc:  # readiness reports failures, it does not raise them
            return JSONResponse({"status": "unavailable", "error": repr(exc)}, status_code=503)
        runner_ok = platform.runner.running and platform.runner.last_error is None
        report["runner"] = {"running": platform.runner.running, "error": platform.runner.last_error}
        report["status"] = "ready" if runner_ok else "unavailable"
        return JSONResponse(report, status_code=200 if runner_ok else 503)

    if UI_DIR.exists():
        app.mount("/ui", StaticFiles(directory=UI_DIR), name="ui")

        @app.get("/", include_in_schema=False)
        def index() -> FileResponse:
            return FileResponse(UI_DIR / "index.html")

    return app
