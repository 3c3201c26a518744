"""Request bodies parsed strictly: JSON numbers that cannot be stored faithfully are refused, not coerced.

Python's json module accepts NaN and Infinity, turns 1e309 into inf and reads integers of any size; each of those
either passed schema checks wrongly (comparisons with NaN are false) or failed later with a 5xx. Here:
- NaN, Infinity and numbers that overflow a double are refused (orjson refuses them itself);
- integers beyond 64 bits are refused (orjson would silently read them as floats, so a body holding a long run of
  digits is parsed again with the standard parser and hooks that say which number is too large);
- nesting deeper than MAX_DEPTH arrays/objects is refused.
Every refusal is a json.JSONDecodeError, which FastAPI answers as 400 malformed-json with the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

MAX_DEPTH = 64
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_LONG_DIGITS = re.compile(rb"\d{19,}")  # 19 digits is where 64-bit integers end


class StrictJsonError(json.JSONDecodeError):
    """A body that is JSON but holds a value we refuse to store."""

    def __init__(self, message: str, doc: str = "", pos: int = 0) -> None:
        super().__init__(message, doc, pos)


def _bounded_int(text: str) -> int:
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        raise StrictJsonError(f"integer {text[:30]}{'…' if len(text) > 30 else ''} is beyond the 64-bit range")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise StrictJsonError(f"number {text[:30]} overflows a double")
    return value


def _no_constant(name: str) -> Any:
    raise StrictJsonError(f"{name} is not a JSON number")


def _check_depth(value: Any) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise StrictJsonError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values() if isinstance(child, dict | list))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node if isinstance(child, dict | list))


def loads(body: bytes) -> Any:
    """The parsed body; StrictJsonError (a JSONDecodeError) naming what was refused."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise StrictJsonError(exc.msg, exc.doc if isinstance(exc.doc, str) else "", exc.pos) from None
    if _LONG_DIGITS.search(body):  # maybe an integer orjson read as a float: parse exactly to be sure
        try:
            value = json.loads(body, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant)
        except RecursionError:
            raise StrictJsonError(f"nested deeper than {MAX_DEPTH} levels") from None
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH:  # fewer brackets cannot nest that deep
        _check_depth(value)
    return value


class StrictJsonRequest(Request):
    """A request whose json() is `loads`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """An APIRoute whose handler sees StrictJsonRequest (set as a router's route_class)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict
