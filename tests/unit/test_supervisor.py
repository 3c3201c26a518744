"""The stack's supervisor on real child processes: restarts with backoff, gives up on a crash loop, stops in order."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from casestream.supervisor import ChildSpec, CrashLoop, Supervisor, describe_exit

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
CRASHER = [sys.executable, "-c", "raise SystemExit('PostgreSQL at 127.0.0.1:1 did not accept a connection')"]


def spec(tmp_path: Path, name: str, argv: list[str], role: str = "worker") -> ChildSpec:
    return ChildSpec(name, role, argv, dict(os.environ), tmp_path / f"{name}.log")


def poll_until(supervisor: Supervisor, check: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, supervisor.snapshot()
        supervisor.poll()
        time.sleep(0.02)


def test_a_killed_child_is_restarted_and_its_exit_named(tmp_path: Path) -> None:
    said: list[str] = []
    supervisor = Supervisor(said.append, backoff_first=0.05)
    child = supervisor.start(spec(tmp_path, "worker-0", SLEEPER))
    first = child.proc.pid
    try:
        os.kill(first, signal.SIGKILL)
        poll_until(supervisor, lambda: child.restarts == 1 and child.proc.poll() is None)
        assert child.proc.pid != first
        assert child.last_exit == "killed by SIGKILL"
        assert any("worker-0 (worker) killed by SIGKILL; restarting in 0.1s" in line for line in said), said
        [row] = supervisor.snapshot()
        assert (row["name"], row["state"], row["restarts"]) == ("worker-0", "running", 1)
    finally:
        supervisor.stop(["worker"])
    assert supervisor.children == {}


def test_backoff_doubles_and_a_crash_loop_stops_with_the_childs_name(tmp_path: Path) -> None:
    said: list[str] = []
    supervisor = Supervisor(said.append, crash_limit=3, crash_window=60, backoff_first=0.1)
    supervisor.start(spec(tmp_path, "relay", CRASHER, role="relay"))
    with pytest.raises(CrashLoop, match=r"relay exited 4 times within 60s \(last: exit 1\)") as raised:
        poll_until(supervisor, lambda: False)
    # why it exited, from its log: the restart lines and the crash loop name the server it needed
    assert str(raised.value).endswith("its log ends: PostgreSQL at 127.0.0.1:1 did not accept a connection")
    assert all(line.endswith("its log ends: PostgreSQL at 127.0.0.1:1 did not accept a connection")
               for line in said if "restarting in" in line), said
    delays = [line.split("restarting in ")[1].split("s ")[0] for line in said if "restarting in" in line]
    assert delays == ["0.1", "0.2", "0.4"]
    supervisor.stop([])


def test_stop_goes_role_by_role_and_leaves_nothing_running(tmp_path: Path) -> None:
    supervisor = Supervisor(lambda _: None)
    procs = [supervisor.start(spec(tmp_path, name, SLEEPER, role)).proc
             for name, role in (("relay", "relay"), ("worker-0", "worker"), ("api-0", "api"))]
    supervisor.stop(["api", "worker", "relay"])
    assert [p.poll() for p in procs] == [-signal.SIGTERM] * 3


def test_children_ignoring_sigterm_are_killed_when_the_shared_grace_is_over(tmp_path: Path) -> None:
    stubborn = [sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('ready', flush=True); time.sleep(60)"]
    supervisor = Supervisor(lambda _: None)
    children = [supervisor.start(spec(tmp_path, name, stubborn, role))
                for name, role in (("api-0", "api"), ("worker-0", "worker"), ("relay", "relay"))]
    deadline = time.monotonic() + 30
    while not all("ready" in c.spec.log.read_text() for c in children if c.spec.log.exists()) \
            or not all(c.spec.log.exists() for c in children):
        assert time.monotonic() < deadline, "the children did not start"
        time.sleep(0.05)
    supervisor.stop(["api", "worker", "relay"], grace=1.0)
    assert [c.proc.returncode for c in children] == [-signal.SIGKILL] * 3
    assert supervisor.children == {}


def test_exit_descriptions() -> None:
    assert describe_exit(1) == "exit 1"
    assert describe_exit(-9) == "killed by SIGKILL"


def test_children_do_not_outlive_a_killed_supervisor(tmp_path: Path) -> None:
    """The supervisor killed with SIGKILL (it cannot stop anything then): its children get SIGTERM from the kernel."""
    import subprocess

    from infra.process import pid_alive

    pid_file = tmp_path / "child.pid"
    code = (f"import os, sys, time; sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
            "from casestream.supervisor import ChildSpec, Supervisor\n"
            f"s = Supervisor(print); c = s.start(ChildSpec('w', 'worker', {SLEEPER!r}, dict(os.environ), "
            f"__import__('pathlib').Path({str(tmp_path / 'w.log')!r})))\n"
            f"open({str(pid_file)!r}, 'w').write(str(c.proc.pid)); time.sleep(60)\n")
    supervisor = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = int(pid_file.read_text())
    supervisor.kill()
    supervisor.wait()
    while pid_alive(child):
        assert time.monotonic() < deadline, "the child outlived its supervisor"
        time.sleep(0.05)
