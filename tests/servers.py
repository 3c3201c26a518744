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


def listeners(port: int) -> list[str]:
    """Hex local addresses of TCP sockets listening on port, IPv4 and IPv6 (state 0A is LISTEN).

    0100007F is 127.0.0.1 in /proc/net/tcp's little-endian hex; a wildcard or IPv6 bind shows up too.
    """
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in rows.readlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    found.append(local.rsplit(":", 1)[0])
    return found
