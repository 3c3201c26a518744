"""The CLI as a person uses it: demo, token, serve (a real subprocess), history, rebuild."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.http_server import free_port

CLI = [sys.executable, "-m", "casestream"]


def _env(data: Path, port: int | None = None) -> dict[str, str]:
    env = {**os.environ, "CASESTREAM_DATA_DIR": str(data)}
    if port is not None:
        env["CASESTREAM_PORT"] = str(port)
    return env


def _run(args: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=300, check=check)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    loaded = _run(["demo", "--cases", "12"], _env(folder))
    assert "cases=12" in loaded.stdout
    return folder


@pytest.fixture(scope="module")
def served(data: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([*CLI, "serve"], env=_env(data, port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not become ready:\n{proc.stdout.read() if proc.stdout else ''}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_demo_if_empty_loads_nothing_the_second_time(data: Path) -> None:
    again = _run(["demo", "--if-empty"], _env(data))
    assert "nothing loaded" in again.stdout


def test_token_from_cli_works_against_serve(data: Path, served: str) -> None:
    token = _run(["token", "--user", "bob", "--roles", "supervisor"], _env(data)).stdout.strip()
    reply = httpx.get(f"{served}/api/cases", params={"limit": 5}, headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200
    assert len(reply.json()["items"]) == 5
    me = httpx.get(f"{served}/api/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me == {"user": "bob", "tenant": "acme", "roles": ["supervisor"]}


def test_token_refuses_unknown_role_naming_the_option(data: Path) -> None:
    result = _run(["token", "--roles", "wizard"], _env(data), check=False)
    assert result.returncode != 0
    assert "--roles" in result.stderr
    assert "wizard" in result.stderr


def test_history_as_of_shows_the_opening_state(data: Path, served: str) -> None:
    token = _run(["token", "--user", "alice"], _env(data)).stdout.strip()
    auth = {"Authorization": f"Bearer {token}"}
    reply = httpx.post(f"{served}/api/cases", headers=auth, json={
        "definition_key": "claim", "title": "History check",
        "data": {"policy_number": "POL-1002003", "claimant_name": "Jansen", "incident_date": "2026-11-01",
                 "amount": 10, "currency": "EUR", "category": "water-damage"},
    })
    assert reply.status_code == 201, reply.text
    opened = reply.json()
    patched = httpx.post(f"{served}/api/cases/{opened['id']}/data", headers=auth, json={"patch": {"amount": 99}})
    assert patched.status_code == 200, patched.text
    timeline = httpx.get(f"{served}/api/cases/{opened['id']}/timeline", headers=auth,
                         params={"wait_for": patched.json()["position"]}).json()
    moment = timeline[0]["at"]  # the moment it was opened: history as of then has the opening data
    assert timeline[1]["at"] > moment
    result = _run(["history", opened["number"], "--as-of", moment], _env(data), check=False)
    assert result.returncode == 0, result.stderr
    then = json.loads(result.stdout)
    now = json.loads(_run(["history", opened["id"]], _env(data)).stdout)
    assert then["data"]["amount"] == 10
    assert now["data"]["amount"] == 99
    bad = _run(["history", opened["id"], "--as-of", "yesterday"], _env(data), check=False)
    assert bad.returncode != 0
    assert "--as-of" in bad.stderr


def test_rebuild_reports_rate_and_keeps_read_models(data: Path, served: str) -> None:
    token = _run(["token"], _env(data)).stdout.strip()
    auth = {"Authorization": f"Bearer {token}"}
    before = httpx.get(f"{served}/api/counts", headers=auth).json()
    out = _run(["rebuild"], _env(data)).stdout
    assert "events/s" in out
    after = httpx.get(f"{served}/api/counts", headers=auth).json()
    assert after == before
