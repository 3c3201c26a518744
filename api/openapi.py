"""The served OpenAPI: FastAPI's document, plus the Problem schema the error responses refer to.

Routes declare their replies (api/schemas/): a response_model for the success, problem_responses() for the errors
(content application/problem+json, schema a $ref to Problem). FastAPI only puts models named as `model` into the
components, so the Problem schema is added here, once.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.schemas.problem import Problem

REF_TEMPLATE = "#/components/schemas/{model}"


def build(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of app, with the Problem schema in its components."""
    document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template=REF_TEMPLATE)
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    return document


def install(app: FastAPI) -> None:
    """Serve build(app) as /openapi.json (computed once, on first request, like FastAPI's own)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
