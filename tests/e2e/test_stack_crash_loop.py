"""A child of `casestream up --distributed` that keeps crashing stops the stack: `up` names the child and exits 1,
and none of its children is left running."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from casestream.supervisor import CRASH_LIMIT
from infra.server import Server
from tests.e2e.stack_process import RunningStack, casestream

# backoff 0.5 s doubling, 6 crashes: ~16 s of backoff; stopping the children is bounded by their SIGTERM grace
EXIT_WITHIN = 150.0


@pytest.fixture(scope="module")
def servers(postgres_server: Server, kafka_server: Server, ferretdb_server: Server, opa_server: Server,
            keycloak_server: Server, s3_server: Server, mail_server: Server) -> None:
    """The backing servers run already (the stack joins them)."""


def test_a_crash_looping_relay_stops_the_stack_with_its_name_and_exit_1(servers: None, tmp_path: Path) -> None:
    stack = RunningStack.launch(tmp_path / "stack", tmp_path / "up.log")
    try:
        stack.wait_up()
        # the relay "crashes" (SIGKILL) each time it runs again, one more time than the supervisor tolerates
        for crash in range(CRASH_LIMIT + 1):
            relay = stack.children()["relay"]
            os.kill(relay["pid"], signal.SIGKILL)
            if crash < CRASH_LIMIT:
                stack.wait_restarted("relay", relay["restarts"] + 1)
        code = stack.process.wait(timeout=EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        stack.interrupt()
        raise AssertionError(f"`up` did not exit after the crash loop:\n{stack.output()[-5000:]}") from None
    finally:
        if stack.process.poll() is None:
            stack.interrupt()
    output = stack.output()
    assert code == 1, output[-5000:]
    assert f"error: relay exited {CRASH_LIMIT + 1} times within 120s (last: killed by SIGKILL)" in output, output
    assert "Its log: " in output and "relay.log" in output
    assert stack.own_processes() == [], output[-3000:]
    shown = casestream("status", "--data-dir", str(stack.data_dir), env=stack.env)
    assert shown.returncode == 1 and "no distributed stack runs" in shown.stdout, shown.stdout
    casestream("down", "--wipe", "--yes", "--data-dir", str(stack.data_dir), env=stack.env)
