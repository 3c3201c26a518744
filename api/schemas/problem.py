"""problem+json in the OpenAPI: the Problem schema and the error statuses each kind of route can answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MEDIA_TYPE = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"


class FieldProblem(BaseModel):
    """What is wrong with one field: its path (`data.amount`, `commands[2].case_id`, `Last-Event-ID`) and why."""

    path: str
    message: str


class Problem(BaseModel):
    """An error, as application/problem+json (RFC 9457)."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(description="A URI naming the kind of problem (https://casestream.dev/problems/<code>).")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    errors: list[FieldProblem] | None = Field(default=None, description="Field errors of a validation failure.")


DESCRIPTIONS: dict[int, str] = {
    400: "Malformed request: the body is not JSON (or holds NaN, 1e309, an integer beyond 64 bits, nesting deeper "
         "than 64), or a header is malformed (X-Correlation-ID, X-Causation-ID, Last-Event-ID, Content-Length).",
    401: "No valid bearer token (WWW-Authenticate says why).",
    403: "The policy does not allow this action for the token's subject.",
    404: "Not found, of another tenant, or not readable by the token's subject (they look the same).",
    408: "The request body did not arrive in time.",
    409: "Conflict: a stale expected_version, or a concurrent change to the same aggregate.",
    413: "The request body is larger than the server accepts.",
    422: "A field, parameter or value is not valid (errors[] names each).",
    429: "Too many requests: commands refused while the read models lag (Retry-After).",
    431: "The request headers are larger than the server accepts.",
    503: "A service this request needs (the policy engine, an identity provider) did not answer (Retry-After).",
    504: "The read model did not reach wait_for within the wait timeout; retry the query.",
}

# what the edge (api/request_limits.py, api/strict_json.py) can answer on any route before the route runs
TRANSPORT = (400, 408, 413, 431)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for statuses, each a problem+json document (Problem schema)."""
    return {
        status: {
            "description": DESCRIPTIONS[status],
            "content": {MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
        }
        for status in sorted({*TRANSPORT, *statuses})
    }


def command_responses() -> dict[int | str, dict[str, Any]]:
    """A command route: authenticated, decided by the policy, refused under backpressure."""
    return problem_responses(401, 403, 404, 409, 422, 429, 503)


def query_responses(*extra: int) -> dict[int | str, dict[str, Any]]:
    """A query route: authenticated, read-your-writes (`wait_for`: 422 unknown position, 504 timeout), scoped by
    the policy (503 when it cannot be asked); extra: 403 for reference data, 404 for one resource by id."""
    return problem_responses(401, 422, 503, 504, *extra)


def public_responses(*extra: int) -> dict[int | str, dict[str, Any]]:
    """A route without a token (health, identity): the edge's refusals and extra."""
    return problem_responses(*extra)
