"""`casestream up --distributed`: every server from infra/, the relay, stream workers, API replicas behind Traefik
and (with a Novu key) the Novu publisher, each its own process on one machine, supervised.

PostgreSQL holds the events; `casestream relay` publishes them to Kafka; `casestream worker` processes (one consumer
group) fold them into the MongoDB read models (FerretDB); every API replica (`casestream serve --distributed`)
takes commands into PostgreSQL, answers queries from MongoDB and feeds its SSE clients from Kafka.

The stack's data lives under a named data directory (`StackConfig.data_dir`): its identity (`stack.json`, which names
its PostgreSQL database, topic prefix, consumer group and MongoDB database), the issuer key, each process's folder and
log, the supervisor's status file, and, when no `casestream infra` server runs already, the servers' own data."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from casestream.supervisor import ChildSpec, CrashLoop, Supervisor
from infra import registry
from infra.paths import run_dir
from infra.server import Server

# Servers the distributed mode talks to (as far as each exists in this checkout), in start order.
BACKING = ("postgres", "kafka", "ferretdb", "opa", "keycloak", "s3", "mail")
API_BASE_PORT = 8101
WORKERS = 2
EDGE_URL = "http://127.0.0.1:28000"
# children stop in this order: no new commands first, the relay (which only publishes what is stored) last
STOP_ORDER = ("api", "process-worker", "publisher", "worker", "relay")
DEMO_USERS = ("alice", "bob", "carol", "admin")
# what a child logs while it waits for a server at start-up (adapters/postgres_wait.py); `up` passes it on
WAITING = "waiting for "
# the relay reads and saves one batch at a time: a small pool spares PostgreSQL a burst of connections at start
RELAY_POOL_SIZE = "2"
# background children wait this long for a pooled PostgreSQL connection (the default 5 s suits request paths,
# which answer an error and are retried; a relay that gives up after 5 s under load exits and is restarted)
BACKGROUND_POOL_TIMEOUT = "30"


@dataclass(frozen=True)
class StackConfig:
    """What `up --distributed` was asked for."""

    data_dir: Path
    replicas: int = 2
    workers: int = WORKERS
    demo: bool = True
    fresh: bool = False  # erase the stack's data before starting (the caller asked for confirmation)

    @property
    def status_file(self) -> Path:
        return self.data_dir / "status.json"


@dataclass(frozen=True)
class Names:
    """Where this stack's data lives in the shared servers: one database, topic prefix, group, Mongo database."""

    postgres_db: str
    topic_prefix: str
    worker_group: str
    mongo_database: str

    @classmethod
    def of(cls, data_dir: Path) -> Names:
        """The stack's names, from its identity file (created at first start); CASESTREAM_* variables win."""
        data_dir.mkdir(parents=True, exist_ok=True)
        identity = data_dir / "stack.json"
        if not identity.exists():
            identity.write_text(json.dumps({"id": uuid.uuid4().hex[:10], "created": time.time()}))
        stack_id = json.loads(identity.read_text())["id"]
        return cls(
            postgres_db=os.environ.get("CASESTREAM_POSTGRES_DB") or f"stack_{stack_id}",
            topic_prefix=os.environ.get("CASESTREAM_KAFKA_TOPIC_PREFIX") or f"stack{stack_id}",
            worker_group=os.environ.get("CASESTREAM_WORKER_GROUP") or f"stack-{stack_id}",
            mongo_database=os.environ.get("CASESTREAM_MONGO_DATABASE") or f"stack_{stack_id}",
        )


@dataclass
class Stack:
    """What `up` started, so it can stop exactly that."""

    config: StackConfig
    names: Names | None = None
    servers: list[Server] = field(default_factory=list)
    started: list[Server] = field(default_factory=list)
    supervisor: Supervisor | None = None
    front_door: str | None = None
    api_urls: list[str] = field(default_factory=list)

    @property
    def processes(self) -> dict[str, Any]:
        """name -> running Popen of every supervised child (relay, workers, replicas, publishers)."""
        return {n: c.proc for n, c in (self.supervisor.children.items() if self.supervisor else [])}

    def stop(self, say: Callable[[str], None]) -> None:
        """Stop the children (API replicas first, the relay last), then the servers this stack started."""
        if self.supervisor is not None:
            self.supervisor.stop(STOP_ORDER)
        for server in reversed(self.started):
            say(f"stopping {server.name}")
            server.down()
        self.started.clear()
        self.config.status_file.unlink(missing_ok=True)


# Set by the SIGINT/SIGTERM handler of run_until_interrupted beside the KeyboardInterrupt it raises: an interrupt
# that lands where Python swallows exceptions (an at-fork handler while a child is started, a finalizer) is lost,
# so start-up also checks this between its steps and stops as the interrupt would have.
_INTERRUPTED = threading.Event()


def _check_interrupted() -> None:
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt


def _wait_ready(url: str, child: Any, supervisor: Supervisor, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_interrupted()
        if child.proc.poll() is not None:
            raise RuntimeError(f"API replica on {url} exited with {child.proc.returncode} "
                               f"(log {child.spec.log}){_last_lines(child.spec.log)}")
        supervisor.poll()  # a child started before that crashes meanwhile is restarted (or its crash loop stops us)
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"API replica on {url} not ready after {timeout:.0f}s (log {child.spec.log})"
                       f"{_last_lines(child.spec.log)}")


def _wait_for_log(path: Path, text: str, child: Any, supervisor: Supervisor, say: Callable[[str], None],
                  timeout: float = 90) -> None:
    """Wait for `text` in a child's log, passing on the lines where it says what it waits for (a server)."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        _check_interrupted()
        if child.proc.poll() is not None:
            raise RuntimeError(f"{child.spec.name} exited with {child.proc.returncode} (log {path})"
                               f"{_last_lines(path)}")
        supervisor.poll()
        log = path.read_text(errors="replace") if path.exists() else ""
        if text in log:
            return
        lines = log.splitlines()
        for line in lines[seen:]:
            if WAITING in line:
                say(f"  {child.spec.name}: {line[line.index(WAITING):]}")
        seen = len(lines)
        time.sleep(0.2)
    raise RuntimeError(f"{child.spec.name} did not start within {timeout:.0f}s (log {path}){_last_lines(path)}")


def _last_lines(path: Path, count: int = 3) -> str:
    """The end of a child's log, indented under the error naming it (why it exited: often a server it needs)."""
    if not path.exists():
        return ""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()][-count:]
    return "".join(f"\n    {line}" for line in lines)


def _environment(postgres: dict[str, str], names: Names, data_dir: Path) -> dict[str, str]:
    """What every process of the stack shares: PostgreSQL, Kafka, MongoDB, the issuer's key, the stack's names."""
    env = {
        **os.environ,
        "CASESTREAM_EVENT_STORE": "postgres",
        "CASESTREAM_POSTGRES_HOST": postgres["host"],
        "CASESTREAM_POSTGRES_PORT": postgres["port"],
        "CASESTREAM_POSTGRES_DB": names.postgres_db,
        "CASESTREAM_POSTGRES_USER": postgres["user"],
        "CASESTREAM_POSTGRES_PASSWORD": postgres["password"],
        "CASESTREAM_KAFKA_TOPIC_PREFIX": names.topic_prefix,
        "CASESTREAM_WORKER_GROUP": names.worker_group,
        "CASESTREAM_MONGO_DATABASE": names.mongo_database,
        "CASESTREAM_KEY_FILE": str(data_dir / "issuer-key.json"),
        "PYTHONUNBUFFERED": "1",
    }
    if "kafka" in registry.names():
        env["CASESTREAM_KAFKA_BOOTSTRAP"] = registry.get("kafka").info()["bootstrap"]
    if "ferretdb" in registry.names():
        env["CASESTREAM_MONGO_URL"] = registry.get("ferretdb").info()["uri"]
    return env


def shared_servers_running() -> bool:
    """Whether `casestream infra` already runs a backing server (in its usual run folder)."""
    return any(registry.get(name).pid() is not None for name in BACKING if name in registry.names())


@contextlib.contextmanager
def server_home(data_dir: Path) -> Iterator[Path]:
    """Run folder of the backing servers: the one `casestream infra` uses when it already runs some (the stack joins
    them), else the stack's own `servers/` folder, so their data stays with the stack's data directory."""
    if "CASESTREAM_RUN_DIR" in os.environ or shared_servers_running():
        yield run_dir()
        return
    own = data_dir / "servers"
    own.mkdir(parents=True, exist_ok=True)
    os.environ["CASESTREAM_RUN_DIR"] = str(own)  # children and later registry look-ups see the same servers
    yield own


def _ensure_database(postgres: Server, dbname: str) -> None:
    from infra.postgres import PostgresServer

    if isinstance(postgres, PostgresServer):
        postgres.ensure_database(dbname)


def start(config: StackConfig, say: Callable[[str], None]) -> Stack:
    """Start the backing servers (keeping their data), the relay, workers, API replicas (`serve --distributed`),
    Traefik in front, and load the demo into an empty stack. A KeyboardInterrupt at any moment stops what started."""
    stack = Stack(config)
    available = set(registry.names())
    try:
        with server_home(config.data_dir) as home:
            say(f"data: {config.data_dir.resolve()} (servers' run folder {home})")
            for name in BACKING:
                if name not in available:
                    continue
                server = registry.get(name)
                say(f"starting {name} …")
                if not server.running():
                    stack.started.append(server)  # before up(): an interrupt mid-start still stops it by its PID
                    server.up(keep_data=True)
                stack.servers.append(server)
            postgres = registry.get("postgres")
            if config.fresh:
                from casestream.stack_control import wipe

                say("erasing the stack's data (--fresh) …")
                previous = _environment(postgres.info(), Names.of(config.data_dir), config.data_dir)
                wipe(config.data_dir, previous, say, keep=("servers",))
            stack.names = names = Names.of(config.data_dir)
            _ensure_database(postgres, names.postgres_db)
            base = _environment(postgres.info(), names, config.data_dir)
            supervisor = stack.supervisor = Supervisor(say)
            logs = config.data_dir / "logs"

            def launch(name: str, role: str, args: list[str], env: dict[str, str] | None = None) -> Any:
                _check_interrupted()
                data = config.data_dir / "processes" / name
                data.mkdir(parents=True, exist_ok=True)
                return supervisor.start(ChildSpec(name, role, [sys.executable, "-m", "casestream", *args],
                                                  {**base, "CASESTREAM_DATA_DIR": str(data), **(env or {})},
                                                  logs / f"{name}.log"))

            relay = launch("relay", "relay", ["relay"], {"CASESTREAM_POSTGRES_POOL_SIZE": RELAY_POOL_SIZE,
                                                         "CASESTREAM_POSTGRES_POOL_TIMEOUT_SECONDS":
                                                             BACKGROUND_POOL_TIMEOUT})
            _wait_for_log(relay.spec.log, "starts after position", relay, supervisor, say)
            say(f"  relay: PostgreSQL -> Kafka (log {relay.spec.log})")
            for i in range(config.workers):
                worker = launch(f"worker-{i}", "worker", ["worker", "--name", f"worker-{i}"])
                say(f"  worker-{i}: Kafka -> MongoDB (log {worker.spec.log})")
            # the BPMN engine and process manager: one follower of the log (it keeps its position in its folder)
            processes = launch("process-worker", "process-worker", ["process-worker"],
                               {"CASESTREAM_POLICY_ENGINE": "embedded", "CASESTREAM_PROCESSES": "on",
                                "CASESTREAM_POSTGRES_POOL_TIMEOUT_SECONDS": BACKGROUND_POOL_TIMEOUT})
            say(f"  process-worker: BPMN processes over PostgreSQL (log {processes.spec.log})")
            if os.environ.get("CASESTREAM_NOVU_API_KEY"):
                launch("notify", "publisher", ["notify"])
                say(f"  notify: Kafka -> Novu {os.environ.get('CASESTREAM_NOVU_URL', 'https://api.novu.co')}")
            else:
                say("  notify: not started (set CASESTREAM_NOVU_API_KEY and CASESTREAM_NOVU_URL to send to Novu)")
            urls = []
            for i in range(config.replicas):
                port = API_BASE_PORT + i
                replica = launch(f"api-{i}", "api", ["serve", "--distributed"], {
                    "CASESTREAM_PUBLIC_URL": EDGE_URL if "traefik" in available else f"http://127.0.0.1:{port}",
                    "CASESTREAM_PORT": str(port),
                    "CASESTREAM_FORWARDED_ALLOW_IPS": "127.0.0.1",  # the client address Traefik saw, for lockouts
                })
                url = f"http://127.0.0.1:{port}"
                _wait_ready(url, replica, supervisor)
                urls.append(url)
                stack.api_urls.append(url)
                say(f"  api-{i}: {url} (log {replica.spec.log})")
            stack.front_door = urls[0]
            if "traefik" in available:
                from infra.traefik import TraefikServer

                edge = TraefikServer(api_urls=urls, ui_url=urls[0])
                say("starting traefik …")
                edge.down()  # a previous edge may route to other replicas
                stack.started.append(edge)
                edge.up()
                stack.servers.append(edge)
                stack.front_door = EDGE_URL
            if config.demo:
                _seed_demo(base, config.data_dir, say)
            _check_interrupted()
    except BaseException as exc:  # KeyboardInterrupt and SystemExit too: nothing started may stay running
        with ignoring_interrupts():
            say(f"stopping: {exc.__class__.__name__} {exc}".rstrip())
            stack.stop(say)
        raise
    return stack


@contextlib.contextmanager
def ignoring_interrupts() -> Iterator[None]:
    """Let a second Ctrl-C not cut the stopping short (which would leave servers running)."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _seed_demo(env: dict[str, str], data_dir: Path, say: Callable[[str], None]) -> None:
    """Load the demo through commands when the stack's event log is empty (`casestream demo --if-empty`)."""
    import subprocess

    say("demo: loading it if the stack is empty (--no-demo skips this) …")
    folder = data_dir / "processes" / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    # as in embedded mode: the definitions name their BPMN lifecycles, which the process worker runs
    result = subprocess.run([sys.executable, "-m", "casestream", "demo", "--if-empty"], capture_output=True,
                            text=True, env={**env, "CASESTREAM_DATA_DIR": str(folder), "CASESTREAM_PROCESSES": "on",
                                            "CASESTREAM_POLICY_ENGINE": "embedded"}, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("demo:")]
    if result.returncode != 0:
        raise RuntimeError(f"loading the demo failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    for line in lines or ["demo: loaded"]:
        say(f"  {line}")


def banner(stack: Stack) -> list[str]:
    """What a person needs first: where the portal and API are, how to sign in, how to stop and inspect."""
    door = stack.front_door or EDGE_URL
    lines = [
        "",
        "casestream distributed stack is up",
        f"  portal: {door}/",
        f"  API:    {door}/api   (docs {door}/docs)",
    ]
    configured = os.environ.get("CASESTREAM_OIDC_ISSUERS")
    if configured is None:
        lines.append(f"  demo logins: {', '.join(DEMO_USERS)} with password casestream (Keycloak realms acme, "
                     "globex; the portal signs in there)")
        lines.append("  service token: CASESTREAM_OIDC_CLIENT_SECRET=acme-worker-secret casestream service-token "
                     "--tenant acme")
    elif configured.strip() in ("", "{}"):
        lines.append(f"  demo logins: {', '.join(DEMO_USERS)} with password casestream (built-in issuer)")
    else:
        lines.append(f"  identity: CASESTREAM_OIDC_ISSUERS={configured}")
    lines += [f"  data: {stack.config.data_dir.resolve()}  (kept; `casestream up --distributed --fresh` or "
              "`casestream down --wipe` erases it)",
              "  `casestream status` shows every process; Ctrl-C stops it all."]
    return lines


def write_status(stack: Stack) -> None:
    """The supervisor's status file: every child, its restarts, the front door, the stack's names."""
    status = {
        "pid": os.getpid(), "updated": time.time(), "front_door": stack.front_door, "api_urls": stack.api_urls,
        "data_dir": str(stack.config.data_dir.resolve()),
        "names": stack.names.__dict__ if stack.names else {},
        "servers": [s.name for s in stack.servers], "started_servers": [s.name for s in stack.started],
        "children": stack.supervisor.snapshot() if stack.supervisor else [],
    }
    partial = stack.config.status_file.with_suffix(".partial")
    partial.write_text(json.dumps(status, indent=2))
    partial.replace(stack.config.status_file)  # readers never see half a file


def run_until_interrupted(config: StackConfig, say: Callable[[str], None],
                          stop_event: threading.Event | None = None) -> None:
    """Start the stack, supervise it until Ctrl-C / SIGTERM (or stop_event), then stop everything it started.

    SIGINT and SIGTERM raise KeyboardInterrupt from the moment this is called, so an interrupt during start-up stops
    what had started; a crash loop of one child stops the stack with its name and exit."""
    stop_event = stop_event or threading.Event()
    _INTERRUPTED.clear()

    def interrupt(*_: object) -> None:
        _INTERRUPTED.set()
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stack = start(config, say)
        try:
            for line in banner(stack):
                say(line)
            assert stack.supervisor is not None
            while not stop_event.wait(0.25):
                _check_interrupted()
                stack.supervisor.poll()
                write_status(stack)
        except CrashLoop as exc:
            say(str(exc))
            raise RuntimeError(str(exc)) from None
        except KeyboardInterrupt:
            say("interrupted; stopping")
        finally:
            with ignoring_interrupts():
                stack.stop(say)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
