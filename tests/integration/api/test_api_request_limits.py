"""Request limits that hold before any route runs: header sizes and id headers, body size and body arrival (#12)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from casestream.settings import Settings
from tests.http_server import LiveServer, live_server


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data: Path = tmp_path_factory.mktemp("limits")
    with live_server(Settings(data_dir=data, body_timeout_seconds=1.0, max_body_bytes=10_000)) as live:
        # the shipped processes are deployed (stored) at start: the tests below count from there
        assert live.platform.processes is not None and live.platform.processes.wait_ready(60)
        yield live


def _raw(url: str, request: bytes, wait: float = 10.0) -> tuple[bytes, float]:
    """Send raw bytes, read the reply until the server closes or answers; (reply, seconds taken)."""
    parts = urlsplit(url)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=wait) as sock:
        sock.sendall(request)
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply, time.monotonic() - started


def test_a_body_that_never_arrives_is_answered_408_and_the_connection_freed(limited: LiveServer) -> None:
    before = limited.platform.store.max_position()
    token = limited.token()
    head = (f"POST /api/cases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"defin").encode()
    reply, took = _raw(limited.url, head)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"body-timeout" in reply
    assert took < 8
    assert limited.platform.store.max_position() == before


@pytest.mark.parametrize("header", ["X-Correlation-ID", "X-Causation-ID"])
def test_oversized_or_odd_id_headers_are_refused_naming_them(limited: LiveServer, header: str) -> None:
    with limited.client() as client:
        for value in ["x" * 201, "spaces are not ids", "é"]:
            reply = client.post("/api/cases", json={}, headers={header: value.encode("utf-8")})
            assert reply.status_code == 400, reply.text
            assert reply.headers["content-type"] == "application/problem+json"
            assert header.lower() in reply.json()["detail"]
        fine = client.get("/api/me", headers={header: "req-42:abc/def"})
        assert fine.status_code == 200


@pytest.mark.parametrize("value", ["١٢٣", "9" * 5000, "-1", "1e3", ""])
def test_last_event_id_must_be_a_plain_position(limited: LiveServer, value: str) -> None:
    with limited.client() as client:
        reply = client.get("/api/events", headers={"Last-Event-ID": value.encode("utf-8")})
    assert reply.status_code == 400
    assert "last-event-id" in reply.json()["detail"]


def test_request_heads_are_bounded(limited: LiveServer) -> None:
    reply = httpx.get(limited.url + "/healthz", headers={f"X-Filler-{i}": "y" * 1000 for i in range(20)})
    assert reply.status_code == 431
    assert reply.json()["type"].endswith("headers-too-large")


def test_bodies_over_the_limit_are_refused_with_or_without_a_length(limited: LiveServer) -> None:
    with limited.client() as client:
        sized = client.post("/api/cases", content=b"{" + b" " * 20_000 + b"}",
                            headers={"content-type": "application/json"})
        assert sized.status_code == 413

        def chunks() -> Iterator[bytes]:
            for _ in range(30):
                yield b" " * 1000

        streamed = client.post("/api/cases", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413


@pytest.mark.parametrize("body", [
    b'{"definition_key": "claim", "title": "t", "data": {"amount": NaN}}',
    b'{"definition_key": "claim", "title": "t", "data": {"amount": 1e309}}',
    b'{"definition_key": "claim", "title": "t", "data": {"amount": 123456789012345678901234567890}}',
    b'{"definition_key": "claim", "title": "t", "command_id": "c", "expected_version": 99999999999999999999}',
    b'{"definition_key": "claim", "title": "t", "data": ' + b'{"a":' * 256 + b"1" + b"}" * 256 + b"}",
])
@pytest.mark.parametrize("path", ["/api/cases", "/api/commands"])
def test_numbers_that_cannot_be_stored_and_deep_nesting_are_malformed_json(
    limited: LiveServer, body: bytes, path: str
) -> None:
    before = limited.platform.store.max_position()
    if path == "/api/commands":
        body = b'{"commands": [{"type": "OpenCase", ' + body[1:] + b"]}"
    with limited.client("admin", ("admin",)) as client:
        reply = client.post(path, content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 400, reply.text
    assert reply.json()["type"].endswith("/malformed-json")
    assert limited.platform.store.max_position() == before
