"""The README's curl tour, parsed from README.md and run by bash as written: on `./run`'s embedded mode and through
the distributed stack's front door (the two commented lines that say how). It cannot drift from the product."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.server import Server
from tests.e2e.stack_process import EDGE, RunningStack, casestream, stack_env
from tests.http_server import free_port

ROOT = Path(__file__).resolve().parents[2]
README_BASE = "http://127.0.0.1:8000"


def tour_commands() -> list[str]:
    """The tour's shell commands: the bash block under its heading, continuation lines joined, comments dropped."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## A short tour with curl", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "the tour has no bash block"
    commands: list[str] = []
    pending = ""
    for line in block.group(1).splitlines():
        if pending:
            pending += "\n" + line
        elif line.strip() and not line.lstrip().startswith("#"):
            pending = line
        else:
            continue
        if not line.endswith("\\"):
            commands.append(pending)
            pending = ""
    return commands


def distributed_lines() -> list[str]:
    """The commented lines the tour gives for the distributed stack (`# API=…`, `# TOKEN=…`), uncommented."""
    section = (ROOT / "README.md").read_text().split("## A short tour with curl", 1)[1].split("```", 2)[1]
    return [line[2:] for line in section.splitlines() if re.match(r"# (API|TOKEN)=", line)]


def script(commands: list[str], extra: list[str]) -> str:
    """One bash script: stop at the first failing step; the live feed is followed for 3 s (curl -N runs until
    Ctrl-C); `extra` lines (the distributed stack's) run right after the README's own API and TOKEN lines, and then
    the built-in issuer's /auth/token, which the README says the stack's Keycloak replaces, is left out."""
    out = ["set -euo pipefail"]
    for command in commands:
        if extra and command.startswith("curl") and "/auth/token" in command:
            continue
        if command.startswith("curl -N"):
            # still streaming when cut off (exit 124): a refused feed would have ended at once
            out.append(f"rc=0; timeout 3 {command} > /dev/null || rc=$?; test $rc = 124")
            continue
        out.append(command)
        if command.startswith("TOKEN="):
            out.extend(extra)
    out.append('echo "TOUR-CASE $ID"')
    return "\n".join(out) + "\n"


def run_tour(base: str, env: dict[str, str], tmp_path: Path, extra: list[str]) -> str:
    text = script(tour_commands(), extra).replace(README_BASE, base)
    done = subprocess.run(["bash", "-c", text], cwd=ROOT, env={**env, "PATH": f"{ROOT / '.venv/bin'}:"
                                                                                  f"{env.get('PATH', '')}"},
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"the README tour failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def check_outcome(stdout: str, base: str, token: str) -> None:
    """What the tour did is in the read model: a comment, bob assigned, moved on to assessment."""
    case_id = stdout.rsplit("TOUR-CASE ", 1)[1].strip()
    deadline = time.monotonic() + 60
    while True:
        case = httpx.get(f"{base}/api/cases/{case_id}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert case.status_code == 200, case.text
        doc = case.json()
        if doc["stage"] == "assessment" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert (doc["stage"], doc["comment_count"], doc["assignee"]) == ("assessment", 1, "bob"), doc


def test_tour_is_parsed_from_the_readme() -> None:
    commands = tour_commands()
    assert commands[0].startswith("API=") and any(c.startswith("curl -N") for c in commands)
    assert len([c for c in commands if c.startswith(("curl", "OPENED="))]) >= 9
    assert [line.split("=", 1)[0] for line in distributed_lines()] == ["API", "TOKEN"]


@pytest.fixture()
def embedded(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`./run` on a data folder of its own: the demo (fewer cases), then `casestream serve` on a free port."""
    env = {**stack_env(), "CASESTREAM_DATA_DIR": str(tmp_path / "data")}
    env.pop("CASESTREAM_OIDC_ISSUERS")
    loaded = casestream("demo", "--cases", "12", env=env, timeout=300)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    port = free_port()
    env["CASESTREAM_PORT"] = str(port)
    base = f"http://127.0.0.1:{port}"
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen([str(ROOT / ".venv/bin/casestream"), "serve"], cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield base, env
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_tour_on_embedded_mode(embedded: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, env = embedded
    stdout = run_tour(base, env, tmp_path, [])
    token = casestream("token", "--user", "alice", env=env).stdout.strip()
    check_outcome(stdout, base, token)


def test_tour_through_the_distributed_front_door(postgres_server: Server, kafka_server: Server,
                                                 ferretdb_server: Server, opa_server: Server,
                                                 keycloak_server: Server, s3_server: Server, mail_server: Server,
                                                 tmp_path: Path) -> None:
    env = {k: v for k, v in stack_env().items() if k != "CASESTREAM_OIDC_ISSUERS"}  # the stack's Keycloak
    stack = RunningStack.launch(tmp_path / "stack", tmp_path / "up.log", flags=(), env=env)
    try:
        stack.wait_up()
        # seeded like embedded mode, and the banner says first where to go and how to sign in
        assert "demo: loading it if the stack is empty" in stack.output()
        assert "already has events" not in stack.output()
        banner = stack.output().split("stack is up", 1)[1]
        assert banner.index(f"portal: {EDGE}/") < banner.index("demo logins: alice, bob, carol, admin")
        stdout = run_tour(README_BASE, env, tmp_path, distributed_lines())
        token = re.search(r"TOKEN=(.*)", distributed_lines()[1])
        assert token
        got = subprocess.run(["bash", "-c", token.group(1)[2:-1]], capture_output=True, text=True, timeout=60,
                             check=False)
        check_outcome(stdout, EDGE, got.stdout.strip())
    finally:
        stack.interrupt()
        casestream("down", "--wipe", "--yes", "--data-dir", str(stack.data_dir), env=env)
