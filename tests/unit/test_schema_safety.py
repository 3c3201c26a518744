"""User schemas are data: no reference is fetched, no pattern backtracks, no reference loops (issue #12)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from domain.errors import ValidationFailed
from domain.schema import check_schema, validate


class _Listener:
    """A real local HTTP server that counts every request it gets."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                body = b'{"type": "integer", "secret": "internal-value"}'
                self.send_response(200)
                self.send_header("content-type", "application/schema+json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[_Listener]:
    served = _Listener()
    try:
        yield served
    finally:
        served.close()


def _refused(schema: Any) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        check_schema(schema, "form_schema")
    return caught.value


def test_the_listener_answers_when_asked(listener: _Listener) -> None:
    # the control: the listener really counts requests, so a zero below means nothing was fetched
    import urllib.request

    with urllib.request.urlopen(listener.url + "/probe", timeout=5) as reply:
        assert reply.status == 200
    assert listener.hits == ["/probe"]


@pytest.mark.parametrize("where", ["", "/properties/x"])
def test_remote_ref_is_refused_at_publish_and_never_fetched(listener: _Listener, where: str) -> None:
    ref = {"$ref": f"{listener.url}/schema.json"}
    schema: dict[str, Any] = ref if not where else {"type": "object", "properties": {"x": ref}}
    error = _refused(schema)
    assert error.errors[0].path == "form_schema" + ("" if not where else ".properties.x") + ".$ref"
    assert "internal-value" not in error.detail
    assert listener.hits == []


def test_stored_schema_with_remote_ref_fails_validation_without_fetching(listener: _Listener) -> None:
    # a schema stored before the publish-time rule existed: validation refuses, fetches nothing
    schema = {"type": "object", "properties": {"x": {"$ref": f"{listener.url}/s.json"}}}
    with pytest.raises(ValidationFailed) as caught:
        validate(schema, {"x": 1})
    assert "internal-value" not in caught.value.detail
    assert listener.hits == []


def test_file_ref_is_refused() -> None:
    error = _refused({"$ref": "file:///etc/passwd"})
    assert "nothing is ever fetched" in error.detail
    assert "root:" not in error.detail


def test_dynamic_ref_is_refused() -> None:
    assert _refused({"$dynamicRef": "#meta"}).errors[0].path == "form_schema.$dynamicRef"


def test_self_reference_is_refused_with_its_path() -> None:
    assert _refused({"$ref": "#"}).errors[0].path == "form_schema.$ref"


def test_reference_cycle_through_defs_is_refused() -> None:
    schema = {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}
    assert "recursive reference" in _refused(schema).detail


def test_local_refs_without_cycles_are_accepted_and_validate() -> None:
    schema = {
        "$defs": {"amount": {"type": "number", "minimum": 0}},
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/amount"}, "b": {"$ref": "#/$defs/amount"}},
    }
    check_schema(schema)
    validate(schema, {"a": 1, "b": 2})
    with pytest.raises(ValidationFailed) as caught:
        validate(schema, {"a": -1})
    assert caught.value.errors[0].path == "data.a"


def test_dangling_local_ref_is_refused() -> None:
    assert "names nothing" in _refused({"properties": {"a": {"$ref": "#/$defs/missing"}}}).detail


def test_catastrophic_pattern_completes_in_linear_time() -> None:
    # ^(a+)+$ against "a"*N + "!" takes ~2^N steps on a backtracking engine (hours at N=60)
    schema = {"type": "object", "properties": {"x": {"type": "string", "pattern": "^(a+)+$"}}}
    check_schema(schema)
    started = time.perf_counter()
    with pytest.raises(ValidationFailed) as caught:
        validate(schema, {"x": "a" * 60 + "!"})
    elapsed = time.perf_counter() - started
    assert caught.value.errors[0].path == "data.x"
    assert elapsed < 5  # generous on a loaded machine; a backtracking engine would not return at all
    validate(schema, {"x": "a" * 60})


def test_pattern_properties_and_additional_properties_use_the_safe_engine() -> None:
    schema = {"type": "object", "patternProperties": {"^(a+)+$": {"type": "integer"}}, "additionalProperties": False}
    check_schema(schema)
    validate(schema, {"aaa": 1})
    with pytest.raises(ValidationFailed) as caught:
        validate(schema, {"a" * 60 + "!": 1})
    assert "do" in caught.value.detail and "not match any of the regexes" in caught.value.detail
    with pytest.raises(ValidationFailed):
        validate(schema, {"aa": "not an integer"})


@pytest.mark.parametrize("pattern", ["(?=a)b", "(a)\\1", "(?<=x)y"])
def test_patterns_re2_cannot_run_are_refused_at_publish(pattern: str) -> None:
    error = _refused({"type": "string", "pattern": pattern})
    assert error.errors[0].path == "form_schema.pattern"
    assert "pattern is not supported" in error.detail


def test_pattern_property_key_re2_cannot_run_is_refused_with_its_path() -> None:
    error = _refused({"type": "object", "patternProperties": {"(?!x)": {}}})
    assert error.errors[0].path == "form_schema.patternProperties.(?!x)"


def test_deeply_nested_schema_is_refused() -> None:
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(100):
        schema = {"type": "object", "properties": {"x": schema}}
    assert "nested" in _refused(schema).detail


def test_additional_properties_message_names_the_unexpected_keys() -> None:
    schema = {"type": "object", "properties": {"a": {}}, "additionalProperties": False}
    with pytest.raises(ValidationFailed) as caught:
        validate(schema, {"a": 1, "b": 2})
    assert "'b' was unexpected" in caught.value.detail
