"""Traefik routes /api over two real API replicas (round robin, failover, SSE) and / to the UI."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from infra.server import Server
from infra.traefik import TraefikServer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Backend:
    """A tiny HTTP server on loopback that answers with its own name (and an SSE stream at */sse)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = _free_port()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        name = self.name

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.endswith("/sse"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.end_headers()
                    self.wfile.write(b"data: first\n\n")
                    self.wfile.flush()
                    # the second event comes late: a buffering proxy would hold the first one back
                    time.sleep(1.5)
                    self.wfile.write(b"data: second\n\n")
                    self.wfile.flush()
                    return
                body = f"{name} {self.path}".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture(scope="module")
def edge() -> Iterator[tuple[TraefikServer, dict[str, Backend]]]:
    backends = {name: Backend(name) for name in ("api-a", "api-b", "ui")}
    for backend in backends.values():
        backend.start()
    # own ports and run folder, so this instance never clashes with the session-wide one
    server = TraefikServer(
        api_urls=[backends["api-a"].url, backends["api-b"].url],
        ui_url=backends["ui"].url,
        web_port=_free_port(),
        ping_port=_free_port(),
    )
    started = server.up()
    try:
        yield server, backends
    finally:
        if started:
            server.down()
            # the per-port run folder would otherwise pile up, one per test run
            shutil.rmtree(server.state, ignore_errors=True)
        for backend in backends.values():
            backend.stop()


def _listen_addresses(port: int) -> set[str]:
    """Local addresses of TCP sockets listening on port, read from /proc (IPv4 and IPv6)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


def test_api_is_load_balanced_over_both_replicas(
    edge: tuple[TraefikServer, dict[str, Backend]],
) -> None:
    server, _ = edge
    with httpx.Client(base_url=server.info()["url"], timeout=5.0) as client:
        replies = [client.get(f"/api/cases/{i}") for i in range(8)]
    assert all(r.status_code == 200 for r in replies)
    assert all(r.text.endswith(f"/api/cases/{i}") for i, r in enumerate(replies))
    assert {r.text.split()[0] for r in replies} == {"api-a", "api-b"}


def test_root_reaches_the_ui(edge: tuple[TraefikServer, dict[str, Backend]]) -> None:
    server, _ = edge
    with httpx.Client(base_url=server.info()["url"], timeout=5.0) as client:
        root = client.get("/")
        page = client.get("/cases/42")
    assert root.status_code == 200 and root.text == "ui /"
    assert page.status_code == 200 and page.text == "ui /cases/42"


def test_sse_events_are_not_buffered(edge: tuple[TraefikServer, dict[str, Backend]]) -> None:
    server, _ = edge
    started = time.monotonic()
    arrivals: dict[str, float] = {}
    with (
        httpx.Client(base_url=server.info()["url"], timeout=10.0) as client,
        client.stream("GET", "/api/events/sse") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals[line.removeprefix("data: ")] = time.monotonic() - started
    assert set(arrivals) == {"first", "second"}
    # the backend waits 1.5 s between the events; the first must reach us well before that
    assert arrivals["first"] < 1.0
    assert arrivals["second"] >= 1.4


def test_requests_succeed_with_one_replica_down(
    edge: tuple[TraefikServer, dict[str, Backend]],
) -> None:
    server, backends = edge
    backends["api-b"].stop()
    try:
        with httpx.Client(base_url=server.info()["url"], timeout=5.0) as client:
            replies = [client.get(f"/api/cases/{i}") for i in range(6)]
        assert [r.status_code for r in replies] == [200] * 6
        assert {r.text.split()[0] for r in replies} == {"api-a"}
    finally:
        backends["api-b"].start()


def test_edge_listens_only_on_loopback(edge: tuple[TraefikServer, dict[str, Backend]]) -> None:
    server, _ = edge
    loopback = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
    assert _listen_addresses(server.web_port) == {loopback}
    assert _listen_addresses(server.ping_port) == {loopback}


def test_session_instance_answers_ping(traefik_server: Server) -> None:
    assert isinstance(traefik_server, TraefikServer)
    info = traefik_server.info()
    assert info["url"] == "http://127.0.0.1:28000"
    reply = httpx.get(info["ping_url"], timeout=5.0)
    assert reply.status_code == 200 and reply.text == "OK"
    assert _listen_addresses(28000) == {"0100007F"}
