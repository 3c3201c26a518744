"""Run the real API under uvicorn on a free loopback port in a background thread, for HTTP tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from api.app import create_app
from casestream.bootstrap import Platform, bootstrap
from casestream.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A running API: its URL, the platform behind it, and a token maker."""

    url: str
    platform: Platform
    app: Any = None

    def wait_for_subscribers(self, count: int, timeout: float = 10.0) -> None:
        """Block until `count` live-feed connections are subscribed (an SSE reader is really listening)."""
        deadline = time.monotonic() + timeout
        while self.app.state.broadcaster.subscribers < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} SSE subscriber(s) did not connect within {timeout}s")
            time.sleep(0.01)

    def token(self, user: str = "alice", roles: tuple[str, ...] = ("caseworker",), tenant: str = "acme") -> str:
        issuer = self.platform.issuer
        if issuer is None:
            raise RuntimeError("this server trusts external issuers only: get a token from one of them")
        return issuer.issue(user, tenant, roles)

    def client(
        self, user: str = "alice", roles: tuple[str, ...] = ("caseworker",), tenant: str = "acme"
    ) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(user, roles, tenant)}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@contextmanager
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """Bootstrap a platform for settings and serve it until the block ends."""
    port = free_port()
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": port})
    platform = bootstrap(settings)
    app = create_app(platform)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", platform, app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        platform.close()
