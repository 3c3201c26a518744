"""Apache Kafka (KRaft) from Maven Central jars, run with java on loopback: one node, or a 3-node cluster."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient

from infra.paths import cache_dir
from infra.process import ServerStartError, log_tail, port_open, read_pid, spawn, stop_pid
from infra.server import Launch, Server

KAFKA_VERSION = "4.1.2"
# Named in full so the build never depends on whatever version Maven's plugin-prefix lookup picks.
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
ASSETS = Path(__file__).parent / "kafka_assets"
HOST = "127.0.0.1"
BROKER_PORT = 29092
CONTROLLER_PORT = 29093
# The cluster's node N listens on CLUSTER_BASE_PORT + N (clients) and + 10 + N (controller quorum).
CLUSTER_BASE_PORT = 29100
CLUSTER_SIZE = 3
# The JVM's default heap is a quarter of RAM; several brokers share this machine.
HEAP_OPTS = ["-Xms128m", "-Xmx512m"]
# A node asked to stop gracefully gets this long before SIGKILL; its data is throwaway anyway.
STOP_TIMEOUT = 20.0

# A crashed node is fenced (and its partitions get new leaders) after the session timeout: 9 s by
# default, shortened so fault tests do not spend most of their time waiting for it.
CLUSTER_SETTINGS = {"broker.heartbeat.interval.ms": "500", "broker.session.timeout.ms": "3000"}

T = TypeVar("T")


def kafka_cache() -> Path:
    """Cache folder of this Kafka version, shared by the single node and the cluster."""
    path = cache_dir() / "kafka" / KAFKA_VERSION
    path.mkdir(parents=True, exist_ok=True)
    return path


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("java not found on PATH (Kafka 4 needs Java 17+)")
    return java


def _apt_install(*packages: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", *packages], check=True, env=env)


def obtain_libs() -> Path:
    """Gather the broker's jars into the cache once (Maven copy-dependencies); return the libs folder."""
    cache = kafka_cache()
    libs = cache / "libs"
    marker = cache / "libs.complete"
    if marker.exists():
        return libs
    # Two test sessions may start at once; only one may run Maven into the same folders.
    with (cache / ".obtain.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return libs
        if shutil.which("mvn") is None or shutil.which("java") is None:
            _apt_install("maven", "default-jre-headless")
        staging = cache / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        argv = [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(ASSETS / "pom.xml"),
            f"-Dmaven.repo.local={cache_dir() / 'm2'}",
            f"-Dkafka.version={KAFKA_VERSION}",
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"Maven could not gather Kafka {KAFKA_VERSION}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            )
        if not any(staging.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
            raise RuntimeError(f"Maven finished but kafka_2.13-{KAFKA_VERSION}.jar is not in {staging}")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        marker.write_text(f"{KAFKA_VERSION}\n")
    return libs


def _java_argv(libs: Path, main: str, *args: str, tool: bool = False) -> list[str]:
    # A short-lived tool starts about twice as fast with only the quick JIT tier and the serial GC.
    jvm = ["-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"] if tool else HEAP_OPTS
    return [
        _java(),
        *jvm,
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={ASSETS / 'log4j2.xml'}",
        "-cp",
        f"{libs}/*",  # the JVM expands this wildcard itself
        main,
        *args,
    ]


def _storage_tool(libs: Path, *args: str) -> str:
    done = subprocess.run(
        _java_argv(libs, "kafka.tools.StorageTool", *args, tool=True),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise ServerStartError(f"kafka StorageTool {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def new_cluster_id() -> str:
    """A random cluster id in Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding.

    Made here rather than by `StorageTool random-uuid` because each JVM start costs seconds on this machine.
    """
    while True:
        text = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        # Kafka's own generator also rejects ids starting with '-': they would read as a command-line flag.
        if not text.startswith("-"):
            return text


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine from sync code, also when the caller is itself inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


async def _describe(bootstrap: str, timeout: float) -> dict[str, Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        return await asyncio.wait_for(admin.describe_cluster(), timeout)
    finally:
        await admin.close()


def describe_cluster(bootstrap: str, timeout: float = 5.0) -> dict[str, Any]:
    """Metadata round trip: the brokers the cluster reports as live, its controller and cluster id."""
    return _run(lambda: _describe(bootstrap, timeout))


def broker_ids(bootstrap: str) -> set[int]:
    """Node ids of the live brokers, as reported by the broker(s) at bootstrap."""
    return {int(b["node_id"]) for b in describe_cluster(bootstrap)["brokers"]}


async def delete_prefixed_topics(bootstrap: str, prefix: str) -> None:
    """Delete every topic named `<prefix>.…` (what a test or bench run created under its own prefix)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        present = [t for t in await admin.list_topics() if t.startswith(f"{prefix}.")]
        if present:
            await admin.delete_topics(present)
    finally:
        await admin.close()


@dataclass(frozen=True)
class KafkaNode:
    """One combined broker/controller process and the run folder that holds its config, data, pid, log."""

    node_id: int
    port: int
    controller_port: int
    folder: Path

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def voter(self) -> str:
        return f"{self.node_id}@{HOST}:{self.controller_port}"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def config_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.folder / "pid"

    @property
    def log_file(self) -> Path:
        return self.folder / "server.log"

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def write_config(self, voters: list[str], settings: dict[str, str]) -> None:
        """Write server.properties: KRaft combined mode on loopback with a static voter set."""
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": ",".join(voters),
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir / "kraft-logs"),
            "auto.create.topics.enable": "true",
            "num.partitions": "6",
            # Tests join consumer groups constantly; the default 3 s delay only slows them down.
            "group.initial.rebalance.delay.ms": "0",
            **settings,
        }
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def format(self, libs: Path, cluster_id: str) -> None:
        """Format this node's storage; a static voter set means no --standalone is needed."""
        _storage_tool(libs, "format", "-t", cluster_id, "-c", str(self.config_file))

    def launch(self, libs: Path) -> Launch:
        return Launch(argv=_java_argv(libs, "kafka.Kafka", str(self.config_file)), cwd=self.folder)

    def start(self, libs: Path) -> int:
        """Spawn the node on its existing (formatted) data; return its PID."""
        launch = self.launch(libs)
        return spawn(launch.argv, log_file=self.log_file, pid_file=self.pid_file, cwd=launch.cwd)


def _replication(factor: int, min_isr: int) -> dict[str, str]:
    return {
        "default.replication.factor": str(factor),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(factor),
        "transaction.state.log.replication.factor": str(factor),
        "transaction.state.log.min.isr": str(min_isr),
        "share.coordinator.state.topic.replication.factor": str(factor),
        "share.coordinator.state.topic.min.isr": str(min_isr),
    }


class KafkaServer(Server):
    """A single combined broker/controller node: bootstrap 127.0.0.1:29092."""

    name = "kafka"
    version = KAFKA_VERSION
    start_timeout = 90.0

    @property
    def cache(self) -> Path:
        return kafka_cache()

    @property
    def node(self) -> KafkaNode:
        return KafkaNode(1, BROKER_PORT, CONTROLLER_PORT, self.state)

    def obtain(self) -> None:
        obtain_libs()

    def resumable(self) -> bool:
        return self.node.config_file.exists() and any(self.node.data_dir.rglob("meta.properties"))

    def resume(self) -> Launch:
        return self.node.launch(obtain_libs())

    def prepare(self) -> Launch:
        libs = obtain_libs()
        node = self.node
        node.write_config([node.voter], _replication(1, 1))
        node.format(libs, new_cluster_id())
        return node.launch(libs)

    def healthy(self) -> bool:
        # A closed port is the common case while starting; skip the client (and its error log) then.
        return port_open(BROKER_PORT) and self.node.node_id in broker_ids(self.node.bootstrap)

    def info(self) -> dict[str, str]:
        return {
            "bootstrap": self.node.bootstrap,
            "host": HOST,
            "port": str(BROKER_PORT),
            "controller": f"{HOST}:{CONTROLLER_PORT}",
        }


class KafkaCluster(Server):
    """Three combined broker/controller nodes (RF 3, min ISR 2) for fault tests; nodes stop/restart singly."""

    name = "kafka-cluster"
    version = KAFKA_VERSION
    start_timeout = 180.0

    @property
    def cache(self) -> Path:
        return kafka_cache()

    @property
    def nodes(self) -> list[KafkaNode]:
        return [
            KafkaNode(i, CLUSTER_BASE_PORT + i, CLUSTER_BASE_PORT + 10 + i, self.state / f"node-{i}")
            for i in range(1, CLUSTER_SIZE + 1)
        ]

    def node(self, node_id: int) -> KafkaNode:
        """The node with this id (1-based)."""
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise KeyError(f"no Kafka node {node_id}; nodes are 1..{CLUSTER_SIZE}")

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def obtain(self) -> None:
        obtain_libs()

    def prepare(self) -> Launch:
        """Write every node's config and format its storage under one cluster id; return node 1's launch."""
        libs = obtain_libs()
        voters = [node.voter for node in self.nodes]
        cluster_id = new_cluster_id()
        for node in self.nodes:
            shutil.rmtree(node.data_dir, ignore_errors=True)
            node.data_dir.mkdir(parents=True)
            node.log_file.unlink(missing_ok=True)
            node.write_config(voters, {**_replication(CLUSTER_SIZE, 2), **CLUSTER_SETTINGS})
        # Each format is a JVM start of a few seconds; run them side by side.
        with concurrent.futures.ThreadPoolExecutor(max_workers=CLUSTER_SIZE) as pool:
            list(pool.map(lambda node: node.format(libs, cluster_id), self.nodes))
        return self.nodes[0].launch(libs)

    def healthy(self) -> bool:
        if not any(port_open(node.port) for node in self.nodes):
            return False
        return broker_ids(self.bootstrap) == {node.node_id for node in self.nodes}

    def info(self) -> dict[str, str]:
        return {
            "bootstrap": self.bootstrap,
            "host": HOST,
            "controller_quorum": ",".join(node.voter for node in self.nodes),
        }

    def pid(self) -> int | None:
        """PID of the first node still alive (None when no node runs)."""
        return next((pid for pid in self.node_pids().values() if pid is not None), None)

    def node_pids(self) -> dict[int, int | None]:
        """PID of each node by id; None for a node that is down."""
        return {node.node_id: node.pid() for node in self.nodes}

    def running(self) -> bool:
        if any(pid is None for pid in self.node_pids().values()):
            return False
        try:
            return self.healthy()
        except Exception:
            return False

    def up(self, keep_data: bool = False) -> bool:
        """Start all three nodes on fresh data unless the whole cluster already runs. (always fresh: keep_data is
        not supported here)"""
        if self.running():
            return False
        self.down()
        libs = obtain_libs()
        self.prepare()
        self._wait_ports_free()
        for node in self.nodes:
            node.start(libs)
        try:
            self._wait(self.healthy, self.nodes, self.start_timeout)
        except ServerStartError:
            self.down()
            raise
        return True

    def _wait_ports_free(self, timeout: float = 30.0) -> None:
        """Wait until no process listens on the nodes' ports (a node of an earlier cluster may still be exiting)."""
        ports = [port for node in self.nodes for port in (node.port, node.controller_port)]
        deadline = time.monotonic() + timeout
        while any(port_open(port) for port in ports) and time.monotonic() < deadline:
            time.sleep(0.2)

    def down(self) -> None:
        """Stop every node by its own PID; all are signalled first so none waits on the others in turn."""
        pids = [pid for pid in self.node_pids().values() if pid is not None]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, self.stop_signal)
        for pid in pids:
            stop_pid(pid, sig=self.stop_signal, timeout=STOP_TIMEOUT)
        for node in self.nodes:
            node.pid_file.unlink(missing_ok=True)

    def stop_node(self, node_id: int, sig: int = signal.SIGTERM) -> int:
        """Stop one node by its PID (SIGKILL for a crash); return that PID."""
        node = self.node(node_id)
        pid = node.pid()
        if pid is None:
            raise RuntimeError(f"Kafka node {node_id} is not running")
        stop_pid(pid, sig=sig, timeout=STOP_TIMEOUT)
        node.pid_file.unlink(missing_ok=True)
        return pid

    def restart_node(self, node_id: int) -> int:
        """Start a stopped node again on its own data and wait until it serves as a live broker."""
        node = self.node(node_id)
        if node.pid() is not None:
            self.stop_node(node_id)
        pid = node.start(obtain_libs())
        try:
            self._wait(
                lambda: port_open(node.port) and node_id in broker_ids(node.bootstrap),
                [node],
                self.start_timeout,
            )
        except ServerStartError:
            stop_pid(pid, sig=signal.SIGKILL)
            raise
        return pid

    def _wait(self, check: Callable[[], bool], watched: list[KafkaNode], timeout: float) -> None:
        """Poll check() until true; fail with the log tail of a node that died or of every node on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in watched:
                if node.pid() is None:
                    tail = log_tail(node.log_file)
                    raise ServerStartError(f"Kafka node {node.node_id} exited while starting. Log:\n{tail}")
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(0.5)
        raise ServerStartError(f"Kafka cluster was not healthy after {timeout:.0f}s.\n{self.logs(20)}")

    def logs(self, lines: int = 60) -> str:
        return "\n".join(f"--- node {n.node_id}\n{log_tail(n.log_file, lines)}" for n in self.nodes)
