"""Start a server as a detached process, wait for its health check, stop it by its own PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class ServerStartError(RuntimeError):
    """A server did not become healthy; the message carries the tail of its log."""


def log_tail(log_file: Path, lines: int = 40) -> str:
    """Return the last lines of a log file (empty string if there is none)."""
    if not log_file.exists():
        return ""
    text = log_file.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def spawn(
    argv: Sequence[str],
    *,
    log_file: Path,
    pid_file: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
) -> int:
    """Start argv in its own session with output to log_file; record and return its PID."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(cwd) if cwd else None,
            env=full_env,
            start_new_session=True,
            user=user,
        )
    pid_file.write_text(str(proc.pid))
    return proc.pid


def pid_alive(pid: int) -> bool:
    """True when a process with this PID exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
    return True


def read_pid(pid_file: Path) -> int | None:
    """The PID recorded in pid_file, if that process is still alive."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def wait_healthy(
    check: Callable[[], bool],
    *,
    pid: int,
    log_file: Path,
    name: str,
    timeout: float,
) -> None:
    """Poll check() until it returns True; fail with the log tail if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            raise ServerStartError(
                f"{name} exited during start-up. Log tail:\n{log_tail(log_file)}"
            )
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.25)
    raise ServerStartError(
        f"{name} was not healthy after {timeout:.0f}s. Log tail:\n{log_tail(log_file)}"
    )


def stop_pid(pid: int, *, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Signal the process group of pid, wait for it to exit, and SIGKILL it if it does not."""
    for target_sig in (sig, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, target_sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, target_sig)
        deadline = time.monotonic() + (timeout if target_sig == sig else 10.0)
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not pid_alive(pid):
                return
            time.sleep(0.1)


def stop_children(procs: Sequence[subprocess.Popen[bytes]], timeout: float = 20.0) -> None:
    """SIGTERM every child at once (they shut down side by side), wait for each, SIGKILL the ones that hang."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
