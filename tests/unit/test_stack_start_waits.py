"""`up` waiting for a child at start-up, on real child processes: it passes on the child's "waiting for" lines, and
a child that exits is named with the end of its log (often the server it could not reach)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from casestream.stack import _wait_for_log
from casestream.supervisor import Child, ChildSpec, Supervisor

WAITS_THEN_STARTS = (
    "import time; print('WARNING adapters.postgres_wait: waiting for PostgreSQL at 127.0.0.1:5 (database d): "
    "connection refused; trying again in 0.5s', flush=True); time.sleep(0.5); "
    "print('INFO relay kafka starts after position 0', flush=True); time.sleep(30)"
)
GIVES_UP = "raise SystemExit('PostgreSQL at 127.0.0.1:5 (database d) did not accept a connection within 60s')"


def child_of(supervisor: Supervisor, tmp_path: Path, code: str, name: str = "relay") -> Child:
    return supervisor.start(ChildSpec(name, name, [sys.executable, "-c", code], dict(os.environ),
                                      tmp_path / f"{name}.log"))


def test_the_lines_a_starting_child_waits_with_are_passed_on(tmp_path: Path) -> None:
    said: list[str] = []
    supervisor = Supervisor(said.append)
    child = child_of(supervisor, tmp_path, WAITS_THEN_STARTS)
    try:
        _wait_for_log(tmp_path / "relay.log", "starts after position", child, supervisor, said.append, timeout=60)
    finally:
        supervisor.stop(["relay"])
    assert said == ["  relay: waiting for PostgreSQL at 127.0.0.1:5 (database d): connection refused; "
                    "trying again in 0.5s"]


def test_a_child_that_exits_while_starting_is_named_with_the_end_of_its_log(tmp_path: Path) -> None:
    supervisor = Supervisor(lambda _: None)
    child = child_of(supervisor, tmp_path, GIVES_UP)
    try:
        with pytest.raises(RuntimeError, match=r"relay exited with 1 \(log .*relay\.log\)\n    PostgreSQL at "
                                                r"127\.0\.0\.1:5 \(database d\) did not accept a connection"):
            _wait_for_log(tmp_path / "relay.log", "starts after position", child, supervisor, lambda _: None,
                          timeout=60)
    finally:
        supervisor.stop(["relay"])


def test_a_child_that_crashes_while_another_starts_is_restarted_meanwhile(tmp_path: Path) -> None:
    said: list[str] = []
    supervisor = Supervisor(said.append, backoff_first=0.05, crash_limit=1000)  # no crash loop here
    crasher = child_of(supervisor, tmp_path, "raise SystemExit(2)", name="worker-0")
    relay = child_of(supervisor, tmp_path, "import time; time.sleep(1.5); print('starts after position 0', "
                     "flush=True); time.sleep(30)")
    try:
        _wait_for_log(tmp_path / "relay.log", "starts after position", relay, supervisor, said.append, timeout=60)
    finally:
        supervisor.stop(["relay", "worker-0"])
    assert crasher.restarts >= 1, said
    assert any(line.startswith("worker-0 (worker-0) exit 2; restarting in") for line in said), said
