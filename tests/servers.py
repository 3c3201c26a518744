"""Start a real server once per test session; stop it at the end only if this session started it."""

from __future__ import annotations

from collections.abc import Iterator

from infra import registry
from infra.server import Server


def run_server(name: str) -> Iterator[Server]:
    """Generator for a session-scoped fixture: yields the running server, then stops it if we started it.

    A server that cannot start raises (with its log tail): the test fails, it is never skipped.
    """
    server = registry.get(name)
    started = server.up()
    try:
        yield server
    finally:
        if started:
            server.down()
