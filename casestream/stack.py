"""`casestream up --distributed`: every server from infra/ plus API replicas behind Traefik, on one machine."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from infra import registry
from infra.paths import run_dir
from infra.process import ServerStartError
from infra.server import Server

# Servers the distributed mode talks to (as far as each exists in this checkout), in start order.
BACKING = ("postgres", "kafka", "ferretdb", "opa", "keycloak", "s3", "mail")
API_BASE_PORT = 8101


@dataclass
class Stack:
    """What `up` started, so it can stop exactly that."""

    servers: list[Server] = field(default_factory=list)
    started: list[Server] = field(default_factory=list)
    replicas: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self, say: Callable[[str], None]) -> None:
        for proc in self.replicas:
            proc.terminate()
        for proc in self.replicas:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for server in reversed(self.started):
            say(f"stopping {server.name}")
            server.down()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"API replica on {url} exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"API replica on {url} not ready after {timeout:.0f}s")


def start(replicas: int, say: Callable[[str], None]) -> Stack:
    """Start the backing servers, API replicas on PostgreSQL, and Traefik in front of them."""
    stack = Stack()
    available = set(registry.names())
    try:
        for name in BACKING:
            if name not in available:
                continue
            server = registry.get(name)
            say(f"starting {name} …")
            if server.up():
                stack.started.append(server)
            stack.servers.append(server)
            say(f"  {name}: {server.info()}")
        postgres = registry.get("postgres").info()
        edge_url = "http://127.0.0.1:38000"
        shared = run_dir() / "api"
        if shared.exists():
            shutil.rmtree(shared)  # replicas' read models are derived state: never reuse another run's
        shared.mkdir(parents=True)
        urls = []
        for i in range(replicas):
            port = API_BASE_PORT + i
            env = {
                **os.environ,
                "CASESTREAM_EVENT_STORE": "postgres",
                "CASESTREAM_POSTGRES_HOST": postgres["host"],
                "CASESTREAM_POSTGRES_PORT": postgres["port"],
                "CASESTREAM_POSTGRES_DB": postgres["dbname"],
                "CASESTREAM_POSTGRES_USER": postgres["user"],
                "CASESTREAM_POSTGRES_PASSWORD": postgres["password"],
                "CASESTREAM_DATA_DIR": str(shared / f"replica-{i}"),
                "CASESTREAM_KEY_FILE": str(shared / "issuer-key.json"),
                "CASESTREAM_PUBLIC_URL": edge_url if "traefik" in available else f"http://127.0.0.1:{port}",
                "CASESTREAM_PORT": str(port),
            }
            log = (shared / f"replica-{i}.log").open("ab")
            proc = subprocess.Popen([sys.executable, "-m", "casestream", "serve"], env=env, stdout=log, stderr=log)
            stack.replicas.append(proc)
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, proc)
            urls.append(url)
            say(f"  api replica {i}: {url} (log {shared / f'replica-{i}.log'})")
        if "traefik" in available:
            from infra.traefik import TraefikServer

            edge = TraefikServer(api_urls=urls, ui_url=urls[0])
            say("starting traefik …")
            edge.down()  # a previous edge may route to other replicas
            edge.up()
            stack.started.append(edge)
            stack.servers.append(edge)
            say(f"  traefik: {edge.info()}")
    except (ServerStartError, RuntimeError) as exc:
        say(f"failed: {exc}")
        stack.stop(say)
        raise
    return stack


def run_until_interrupted(replicas: int, say: Callable[[str], None], stop_event: threading.Event | None = None) -> None:
    """Start the stack, wait for Ctrl-C (or stop_event), stop everything that was started."""
    stop_event = stop_event or threading.Event()
    stack = start(replicas, say)
    previous = {sig: signal.signal(sig, lambda *_: stop_event.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        say("casestream distributed stack is up; Ctrl-C stops it.")
        while not stop_event.wait(0.5):
            for proc in stack.replicas:
                if proc.poll() is not None:
                    say(f"an API replica exited ({proc.returncode}); stopping")
                    stop_event.set()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stack.stop(say)


