"""The shape every server under infra/ has: obtain once, start, health-check, stop by PID."""

from __future__ import annotations

import re
import shutil
import signal
import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from infra.paths import cache_dir, run_dir
from infra.process import (
    ServerStartError,
    log_tail,
    read_pid,
    spawn,
    stop_pid,
    wait_healthy,
)


def port_answers(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Launch:
    """How to start a prepared server: argv, environment, working folder, user to run as."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    user: str | None = None


class Server(ABC):
    """A server this project runs on 127.0.0.1 for tests and the distributed mode."""

    name: str = ""
    version: str = ""
    start_timeout: float = 60.0
    stop_signal: int = signal.SIGTERM

    @property
    def cache(self) -> Path:
        """This server's download/build folder, shared by every clone on the machine."""
        path = cache_dir() / self.name / self.version
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def state(self) -> Path:
        """This server's run folder (data, pid file, log)."""
        path = run_dir() / self.name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def data_dir(self) -> Path:
        return self.state / "data"

    @property
    def pid_file(self) -> Path:
        return self.state / "pid"

    @property
    def log_file(self) -> Path:
        return self.state / "server.log"

    @abstractmethod
    def obtain(self) -> None:
        """Download or build the server into the cache; do nothing when it is already there."""

    @abstractmethod
    def prepare(self) -> Launch:
        """Lay out a fresh data folder and return how to launch the server."""

    @abstractmethod
    def healthy(self) -> bool:
        """One real health probe (a protocol round trip, not just an open port)."""

    @abstractmethod
    def info(self) -> dict[str, str]:
        """Where it listens and how a client connects (URLs, credentials)."""

    def ports(self) -> list[int]:
        """The loopback ports it listens on: info()'s `…port` entries and the port of its own address entries
        (`url`, `endpoint`, `host`, `management_url`; not the addresses of servers it uses)."""
        found: set[int] = set()
        for key, value in self.info().items():
            if key.endswith("port") and str(value).isdigit():
                found.add(int(value))
            elif key in ("url", "endpoint", "host", "management_url"):
                match = re.search(r"127\.0\.0\.1:(\d+)", str(value))
                if match:
                    found.add(int(match.group(1)))
        return sorted(found)

    def pid(self) -> int | None:
        """PID of the running server, or None."""
        return read_pid(self.pid_file)

    def running(self) -> bool:
        """True when the recorded process is alive and answers its health probe."""
        if self.pid() is None:
            return False
        try:
            return self.healthy()
        except Exception:
            return False

    def resumable(self) -> bool:
        """Whether the data folder holds this server's data from an earlier start that resume() can go on with."""
        return False

    def resume(self) -> Launch:
        """How to launch the server on the data an earlier start left (only called when resumable())."""
        raise NotImplementedError(f"{self.name} always starts on a fresh data folder")

    def up(self, keep_data: bool = False) -> bool:
        """Start the server unless it already runs; return True when this call started it. With keep_data, a
        server that can go on with its earlier data (resumable()) keeps it instead of starting fresh."""
        if self.running():
            return False
        stale = self.pid()
        if stale is not None:
            stop_pid(stale, sig=self.stop_signal)
        taken = [port for port in self.ports() if port_answers(port)]
        if taken:
            # a server we have no PID of holds our port: starting would wipe the data folder under it and then
            # health-check that stranger instead of ours
            raise ServerStartError(
                f"{self.name}: port(s) {', '.join(map(str, taken))} on 127.0.0.1 are held by a process this checkout "
                f"did not start (no PID file at {self.pid_file}); stop it (e.g. `fuser -k {taken[0]}/tcp`) and retry"
            )
        self.obtain()
        resuming = keep_data and self.resumable()
        if not resuming:
            if self.data_dir.exists():
                shutil.rmtree(self.data_dir)
            self.data_dir.mkdir(parents=True)
        if self.log_file.exists():
            self.log_file.unlink()
        launch = self.resume() if resuming else self.prepare()
        pid = spawn(
            launch.argv,
            log_file=self.log_file,
            pid_file=self.pid_file,
            cwd=launch.cwd,
            env=launch.env,
            user=launch.user,
        )
        try:
            wait_healthy(
                self.healthy,
                pid=pid,
                log_file=self.log_file,
                name=self.name,
                timeout=self.start_timeout,
            )
        except ServerStartError:
            stop_pid(pid, sig=self.stop_signal)
            raise
        return True

    def down(self) -> None:
        """Stop the server by its own PID, if it runs."""
        pid = self.pid()
        if pid is not None:
            stop_pid(pid, sig=self.stop_signal)
        self.pid_file.unlink(missing_ok=True)

    def logs(self, lines: int = 60) -> str:
        return log_tail(self.log_file, lines)
