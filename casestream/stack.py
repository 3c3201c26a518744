"""`casestream up --distributed`: every server from infra/, the relay, stream workers, API replicas behind Traefik
and (with a Novu key) the Novu publisher, each its own process, on one machine.

PostgreSQL holds the events; `casestream relay` publishes them to Kafka; `casestream worker` processes (one consumer
group) fold them into the MongoDB read models (FerretDB); every API replica (`casestream serve --distributed`)
takes commands into PostgreSQL and answers queries from MongoDB, and feeds its SSE clients from Kafka."""

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
from pathlib import Path

import httpx

from infra import registry
from infra.paths import run_dir
from infra.process import ServerStartError, stop_children
from infra.server import Server

# Servers the distributed mode talks to (as far as each exists in this checkout), in start order.
BACKING = ("postgres", "kafka", "ferretdb", "opa", "keycloak", "s3", "mail")
API_BASE_PORT = 8101
WORKERS = 2


@dataclass
class Stack:
    """What `up` started, so it can stop exactly that."""

    servers: list[Server] = field(default_factory=list)
    started: list[Server] = field(default_factory=list)
    replicas: list[subprocess.Popen[bytes]] = field(default_factory=list)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)  # relay, workers, notify

    def stop(self, say: Callable[[str], None]) -> None:
        # API replicas first (no new commands), then the publishers and workers, the relay last
        for group in (self.replicas, list(reversed(self.processes.values()))):
            stop_children(group)
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


def _environment(postgres: dict[str, str], shared: Path) -> dict[str, str]:
    """What every process of the stack shares: PostgreSQL, Kafka, MongoDB, the issuer's key."""
    env = {
        **os.environ,
        "CASESTREAM_EVENT_STORE": "postgres",
        "CASESTREAM_POSTGRES_HOST": postgres["host"],
        "CASESTREAM_POSTGRES_PORT": postgres["port"],
        # a database named in the environment (which must exist) keeps this stack's log apart from others'
        "CASESTREAM_POSTGRES_DB": os.environ.get("CASESTREAM_POSTGRES_DB") or postgres["dbname"],
        "CASESTREAM_POSTGRES_USER": postgres["user"],
        "CASESTREAM_POSTGRES_PASSWORD": postgres["password"],
        "CASESTREAM_KEY_FILE": str(shared / "issuer-key.json"),
    }
    if "kafka" in registry.names():
        env["CASESTREAM_KAFKA_BOOTSTRAP"] = registry.get("kafka").info()["bootstrap"]
    if "ferretdb" in registry.names():
        env["CASESTREAM_MONGO_URL"] = registry.get("ferretdb").info()["uri"]
    return env


def _wait_for_log(path: Path, text: str, proc: subprocess.Popen[bytes], name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} (log {path})")
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not start within {timeout:.0f}s (log {path})")


def start(replicas: int, say: Callable[[str], None]) -> Stack:
    """Start the backing servers, the relay, workers, API replicas (`serve --distributed`), Traefik in front."""
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
        edge_url = "http://127.0.0.1:28000"
        shared = run_dir() / "api"
        if shared.exists():
            shutil.rmtree(shared)  # logs and per-process folders of an earlier run
        shared.mkdir(parents=True)
        base = _environment(postgres, shared)

        def launch(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
            log = (shared / f"{name}.log").open("ab")
            data = shared / name
            data.mkdir(exist_ok=True)
            return subprocess.Popen([sys.executable, "-m", "casestream", *args],
                                    env={**base, "CASESTREAM_DATA_DIR": str(data), **env}, stdout=log, stderr=log)

        stack.processes["relay"] = launch("relay", ["relay"], {})
        _wait_for_log(shared / "relay.log", "starts after position", stack.processes["relay"], "relay")
        say(f"  relay: PostgreSQL -> Kafka (log {shared / 'relay.log'})")
        for i in range(WORKERS):
            name = f"worker-{i}"
            stack.processes[name] = launch(name, ["worker", "--name", name], {})
            say(f"  {name}: Kafka -> MongoDB (log {shared / f'{name}.log'})")
        if os.environ.get("CASESTREAM_NOVU_API_KEY"):
            stack.processes["notify"] = launch("notify", ["notify"], {})
            say(f"  notify: Kafka -> Novu {os.environ.get('CASESTREAM_NOVU_URL', 'https://api.novu.co')}")
        else:
            say("  notify: not started (set CASESTREAM_NOVU_API_KEY and CASESTREAM_NOVU_URL to send to Novu)")
        urls = []
        for i in range(replicas):
            port = API_BASE_PORT + i
            proc = launch(f"replica-{i}", ["serve", "--distributed"], {
                "CASESTREAM_PUBLIC_URL": edge_url if "traefik" in available else f"http://127.0.0.1:{port}",
                "CASESTREAM_PORT": str(port),
                "CASESTREAM_FORWARDED_ALLOW_IPS": "127.0.0.1",  # the client address Traefik saw, for login lockouts
            })
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


def _identity_hints() -> list[str]:
    """How people and clients sign in to the stack (its replicas trust the infra Keycloak unless told otherwise)."""
    from casestream.cli_distributed import infra_keycloak_issuers

    configured = os.environ.get("CASESTREAM_OIDC_ISSUERS")
    issuers = infra_keycloak_issuers() if configured is None else None
    if not issuers:
        return [f"  identity: CASESTREAM_OIDC_ISSUERS={configured}"]
    return [
        f"  sign in: the portal signs in through Keycloak ({', '.join(issuers)}); demo users alice, bob, carol, "
        "admin with password casestream",
        "  service token: CASESTREAM_OIDC_CLIENT_SECRET=acme-worker-secret casestream service-token --tenant acme",
    ]


def run_until_interrupted(replicas: int, say: Callable[[str], None], stop_event: threading.Event | None = None) -> None:
    """Start the stack, wait for Ctrl-C (or stop_event), stop everything that was started."""
    stop_event = stop_event or threading.Event()
    stack = start(replicas, say)
    previous = {sig: signal.signal(sig, lambda *_: stop_event.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        say("casestream distributed stack is up; Ctrl-C stops it.")
        for line in _identity_hints():
            say(line)
        while not stop_event.wait(0.5):
            for proc in stack.replicas:
                if proc.poll() is not None:
                    say(f"an API replica exited ({proc.returncode}); stopping")
                    stop_event.set()
            for name, proc in stack.processes.items():
                if proc.poll() is not None:
                    say(f"{name} exited ({proc.returncode}); stopping")
                    stop_event.set()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stack.stop(say)


