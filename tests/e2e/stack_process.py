"""`casestream up --distributed` run as an operator runs it: a subprocess with a data directory, read through its
status file and `casestream status`, stopped with SIGINT or `casestream down`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from infra.process import pid_alive

ROOT = Path(__file__).resolve().parents[2]
EDGE = "http://127.0.0.1:28000"


def casestream(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a short `casestream ...` command to its end."""
    return subprocess.run([sys.executable, "-m", "casestream", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def stack_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The operator's environment, with the built-in issuer (tokens from the edge's /auth/token)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASESTREAM_")}
    env.update({"CASESTREAM_OIDC_ISSUERS": "{}", "PYTHONUNBUFFERED": "1", **(extra or {})})
    return env


@dataclass
class RunningStack:
    """One `casestream up --distributed` process and its data directory."""

    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]

    @classmethod
    def launch(cls, data_dir: Path, log: Path, flags: Sequence[str] = ("--no-demo",),
               env: dict[str, str] | None = None) -> RunningStack:
        environment = env or stack_env()
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "casestream", "up", "--distributed", "--data-dir", str(data_dir), *flags],
                cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return cls(data_dir, process, log, environment)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def status(self) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = json.loads((self.data_dir / "status.json").read_text())
            return found
        except (OSError, ValueError):
            return None

    def children(self) -> dict[str, dict[str, Any]]:
        status = self.status() or {"children": []}
        return {c["name"]: c for c in status["children"]}

    def wait_up(self, timeout: float = 300) -> dict[str, Any]:
        """Wait for the banner and a status file whose children all run; fail with the log otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"`up` exited {self.process.returncode}:\n{self.output()[-5000:]}")
            status = self.status()
            if status and "stack is up" in self.output() and all(c["state"] == "running" for c in status["children"]):
                return status
            time.sleep(0.5)
        raise AssertionError(f"the stack was not up after {timeout:.0f}s:\n{self.output()[-5000:]}")

    def wait_restarted(self, name: str, restarts: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            child = self.children().get(name)
            if child and child["restarts"] >= restarts and child["state"] == "running":
                return
            assert self.process.poll() is None, f"`up` exited:\n{self.output()[-5000:]}"
            time.sleep(0.25)
        raise AssertionError(f"{name} was not restarted within {timeout:.0f}s:\n{self.output()[-5000:]}")

    def interrupt(self, timeout: float = 180) -> int:
        """Ctrl-C: SIGINT, then wait for the stack to stop everything it started."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=timeout)

    def own_processes(self) -> list[int]:
        """PIDs of live processes whose environment points into this stack's data directory (its children)."""
        marker = str(self.data_dir).encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == self.process.pid:
                continue
            try:
                if marker in (entry / "environ").read_bytes() and pid_alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
        return found


def edge_token(user: str = "admin", tenant: str = "acme") -> dict[str, str]:
    reply = httpx.post(f"{EDGE}/auth/token", data={"grant_type": "password", "username": user,
                                                  "password": "casestream", "tenant": tenant}, timeout=10)
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}
