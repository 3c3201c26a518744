"""JsonReply encodes what FastAPI's jsonable_encoder + json.dumps would, without the walk."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import orjson
from fastapi.encoders import jsonable_encoder
from hypothesis import given
from hypothesis import strategies as st

from api.json_reply import JsonReply

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def _fastapi(content: object) -> object:
    return json.loads(json.dumps(jsonable_encoder(content)))


@given(JSON)
def test_read_model_json_comes_out_as_fastapi_would_send_it(content: object) -> None:
    assert orjson.loads(JsonReply(content).body) == _fastapi(content)


def test_values_outside_json_are_encoded_as_fastapi_encodes_them() -> None:
    content = {
        "amount": Decimal("12.50"), "tags": {"a"}, 7: "int key",
        "at": datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC),
        "day": date(2026, 11, 27), "id": uuid.UUID("12345678-1234-5678-1234-567812345678"), "pair": (1, 2),
    }
    reply = JsonReply(content)
    assert reply.media_type == "application/json"
    assert orjson.loads(reply.body) == _fastapi(content)
