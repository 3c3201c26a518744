"""`casestream serve --workers N`: N API processes on one port over the embedded platform's SQLite files.

The first process (the runner) is the one `serve` always was: API, read-model runner, process manager, live feed.
The others (followers) only append commands to the shared event store (SQLite WAL: readers run side by side,
writers take turns) and answer queries from the shared read models, waiting on the runner's tracking position for
read-your-writes (adapters/read_model_follower.py). Each binds the port with SO_REUSEPORT, so the kernel spreads
connections over them. Hot aggregates (case-number sequences) are locked across the processes
(adapters/file_locks.py). This parent starts the runner, then the followers once the runner answers, forwards
SIGINT/SIGTERM to them, and stops them all when one ends.

    python -m casestream.serving --role runner|follower   (what the parent starts; settings from CASESTREAM_*)
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from types import FrameType

from casestream.settings import Settings

RUNNER, FOLLOWER = "runner", "follower"
READY_TIMEOUT = 120.0


def _spawn(role: str, settings: Settings, server: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CASESTREAM_HOST": settings.host, "CASESTREAM_PORT": str(settings.port),
           "CASESTREAM_DATA_DIR": str(settings.data_dir), "CASESTREAM_EVENT_STORE": settings.event_store}
    return subprocess.Popen([sys.executable, "-m", "casestream.serving", "--role", role, "--server", server], env=env)


def _wait_answering(settings: Settings, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Until the runner answers /healthz (it is the only process bound yet); RuntimeError if it exits first."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{host}:{settings.port}/healthz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the runner process exited ({process.returncode}) before it answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the runner process did not answer {url} within {timeout:g}s")


def run_workers(settings: Settings, server: str, workers: int, echo: Callable[[str], None]) -> int:
    """Start and supervise the processes; the exit code of the first that ended (0 when stopped by a signal)."""
    if workers < 2:
        raise ValueError("run_workers is for 2 or more processes")
    if settings.event_store != "sqlite":
        raise ValueError("--workers shares the embedded SQLite files; with PostgreSQL run replicas "
                         "(`casestream up --distributed`)")
    if server != "uvicorn":
        raise ValueError("--workers runs uvicorn in each process (granian serves one process here)")
    children = [_spawn(RUNNER, settings, server)]
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _wait_answering(settings, children[0], READY_TIMEOUT)
        children.extend(_spawn(FOLLOWER, settings, server) for _ in range(workers - 1))
        echo(f"  {workers} processes: runner pid {children[0].pid}, followers "
             f"{', '.join(str(c.pid) for c in children[1:])}")
        code = 0
        while not stopping:
            ended = [c for c in children if c.poll() is not None]
            if ended:
                code = ended[0].returncode or 1
                echo(f"process {ended[0].pid} ended ({ended[0].returncode}); stopping the others")
                stop(signal.SIGINT, None)
                break
            time.sleep(0.2)
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        return code
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for child in children:
            if child.poll() is None:
                child.kill()


def serve_process(role: str, server: str) -> None:
    """One process of the group: the runner's platform or a follower's, its app on a SO_REUSEPORT socket."""
    from api.app import create_app
    from casestream import asgi_server
    from casestream.bootstrap import Platform, bootstrap, bootstrap_follower

    settings = Settings()
    platform: Platform = bootstrap(settings, shared=True) if role == RUNNER else bootstrap_follower(settings)
    application = create_app(platform)
    if role == FOLLOWER:  # the runner freezes what start-up built when it starts (adapters/embedded_runner.py)
        gc.freeze()
    sys.setswitchinterval(settings.gil_switch_interval)  # as in `serve` (casestream/cli.py says why)
    gc.set_threshold(*settings.gc_thresholds)
    sock = asgi_server.listening_socket(settings.host, settings.port, reuse_port=True)
    try:
        asgi_server.run(application, settings.host, settings.port, "uvicorn", sock=sock,
                        forwarded_allow_ips=settings.forwarded_allow_ips)
    finally:
        platform.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=[RUNNER, FOLLOWER], required=True)
    parser.add_argument("--server", choices=["uvicorn"], default="uvicorn")
    args = parser.parse_args()
    serve_process(args.role, args.server)


if __name__ == "__main__":
    main()
