"""problem+json (RFC 9457) for every error: one mapping from error class to status and body."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from adapters.tokens import IssuerUnavailable, TokenInvalid
from domain.errors import DomainError, PolicyUnavailable, ValidationFailed

log = logging.getLogger(__name__)
PROBLEM_BASE = "https://casestream.dev/problems/"
MEDIA_TYPE = "application/problem+json"


class ApiProblem(Exception):
    """An error raised by the API layer itself (not the domain)."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}


def problem_body(status: int, code: str, detail: str, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The problem+json document."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": code.replace("-", " ").capitalize(),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return body


def domain_problem_body(exc: DomainError) -> dict[str, Any]:
    """The problem+json document of a domain refusal (field errors listed for a validation failure)."""
    errors = [{"path": e.path, "message": e.message} for e in exc.errors] if isinstance(exc, ValidationFailed) else None
    return problem_body(exc.status, exc.code, exc.detail, errors)


def problem(
    status: int, code: str, detail: str, errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(problem_body(status, code, detail, errors), status_code=status, media_type=MEDIA_TYPE,
                        headers=headers)


def _loc_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text or "body"


def _validation(errors: list[Any]) -> JSONResponse:
    invalid = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if invalid is not None:
        reason = str((invalid.get("ctx") or {}).get("error", ""))[:200]
        return problem(400, "malformed-json", "the request body is not valid JSON" + (f": {reason}" if reason else ""))
    fields = [{"path": _loc_path(e.get("loc", ())), "message": str(e.get("msg", ""))} for e in errors]
    summary = "; ".join(f"{f['path']}: {f['message']}" for f in fields[:5])
    return problem(422, "validation-failed", f"request is not valid: {summary}", fields)


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route of the request's path answers."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        # a policy engine out of reach refuses this request only: say when to try again
        headers = {"Retry-After": str(exc.retry_after_seconds)} if isinstance(exc, PolicyUnavailable) else None
        return JSONResponse(domain_problem_body(exc), status_code=exc.status, media_type=MEDIA_TYPE, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation(list(exc.errors()))

    @app.exception_handler(ValidationError)
    async def model_invalid(_request: Request, exc: ValidationError) -> JSONResponse:
        return _validation(list(exc.errors()))

    @app.exception_handler(IssuerUnavailable)
    async def issuer_unavailable(_request: Request, exc: IssuerUnavailable) -> JSONResponse:
        # the token could not be checked because its issuer cannot be reached: not the client's fault (no 401)
        return problem(503, "issuer-unavailable", str(exc), headers={"Retry-After": str(math.ceil(exc.retry_after))})

    @app.exception_handler(TokenInvalid)
    async def token_invalid(_request: Request, exc: TokenInvalid) -> JSONResponse:
        return problem(401, "unauthenticated", str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    @app.exception_handler(ApiProblem)
    async def api_problem(_request: Request, exc: ApiProblem) -> JSONResponse:
        return problem(exc.status, exc.code, exc.detail, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large", 415: "unsupported-media-type"}
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names the first route's methods only; a path may have several routes
            headers["Allow"] = ", ".join(_allowed_methods(app, request))
        return problem(exc.status_code, codes.get(exc.status_code, "http-error"), str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem(500, "internal-error", "an unexpected error occurred; it has been logged")
