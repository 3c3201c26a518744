"""Runs an ASGI app on the chosen HTTP server: uvicorn (httptools + uvloop) or granian (Rust, embedded mode).

Both `casestream serve` and bench/peer's bare FastAPI floor start their app here, so the floor is measured on
the very server the platform uses.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Literal

Server = Literal["uvicorn", "granian"]


def listening_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A bound, listening TCP socket; with reuse_port several processes bind the same address and the kernel
    spreads new connections over them (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run(app: Any, host: str, port: int, server: Server = "uvicorn", *, sock: socket.socket | None = None,
        forwarded_allow_ips: str = "") -> None:
    """Serve app until interrupted (SIGINT/SIGTERM), on sock when given (else host:port)."""
    if server == "granian":
        if sock is not None or forwarded_allow_ips:
            raise ValueError("granian serves one process without proxy headers here; use uvicorn for --workers "
                             "and forwarded_allow_ips")
        from granian.constants import Interfaces
        from granian.server.embed import Server as Granian

        asyncio.run(Granian(app, address=host, port=port, interface=Interfaces.ASGI, log_enabled=False).serve())
        return
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", loop="uvloop", http="httptools",
                            proxy_headers=bool(forwarded_allow_ips), forwarded_allow_ips=forwarded_allow_ips or None,
                            backlog=2048)
    uvicorn.Server(config).run(sockets=[sock] if sock is not None else None)
