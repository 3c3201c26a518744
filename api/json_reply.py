"""JSON replies encoded with orjson, without FastAPI's `jsonable_encoder` walk.

A read-model page of 50 cases took ~7 ms through `jsonable_encoder` + `json.dumps` and ~0.05 ms through orjson
(bench/case_list.py measures the HTTP list); read models are JSON already, so the walk converts nothing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse


def _other(value: Any) -> Any:
    """What orjson cannot encode itself (Decimal, sets, pydantic models): as FastAPI would have encoded it."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset):
        return list(value)
    return jsonable_encoder(value)


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, default=_other, option=orjson.OPT_NON_STR_KEYS)


class JsonReply(JSONResponse):
    """application/json, encoded with orjson; return it from an endpoint (or name it as its response_class).

    A JSONResponse, so that the OpenAPI documents the route's response_model; an endpoint that returns a
    JsonReply is never serialised through that model (FastAPI passes a returned Response through as it is).
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
