"""Open Policy Agent v1 built with `go install`, serving on loopback with no policies of its own.

The application uploads the repo's policies/ at start (adapters/opa_policy.py), so the server evaluates exactly
the files of the checkout that talks to it, and a policy that does not compile is refused with file and line.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx

from infra.gobuild import go_install
from infra.server import Launch, Server

OPA_VERSION = "1.22.3"
OPA_MODULE = "github.com/open-policy-agent/opa"
OPA_HOST = "127.0.0.1"
OPA_PORT = 28181
# the product policies, run by `opa test` in the suite
REPO_POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"


class OpaServer(Server):
    """`opa run --server` on 127.0.0.1:28181, started empty; clients put their policies through the REST API."""

    name = "opa"
    version = OPA_VERSION
    start_timeout = 60.0

    @property
    def binary(self) -> Path:
        return self.cache / "opa"

    def obtain(self) -> None:
        go_install(OPA_MODULE, f"v{OPA_VERSION}", self.cache, "opa")

    def prepare(self) -> Launch:
        return Launch(
            argv=[
                str(self.binary),
                "run",
                "--server",
                f"--addr={OPA_HOST}:{OPA_PORT}",
                "--disable-telemetry",
                "--log-level=info",
            ],
            cwd=self.data_dir,
        )

    def url(self) -> str:
        return f"http://{OPA_HOST}:{OPA_PORT}"

    def query(self, path: str, input_doc: Any, timeout: float = 5.0) -> Any:
        """POST input to /v1/data/<path> and return the decision (None when the rule is undefined)."""
        response = httpx.post(
            f"{self.url()}/v1/data/{path.strip('/')}", json={"input": input_doc}, timeout=timeout
        )
        response.raise_for_status()
        return response.json().get("result")

    def healthy(self) -> bool:
        health = httpx.get(f"{self.url()}/health", timeout=2.0)
        if health.status_code != 200:
            return False
        # a real evaluation: a query over the data tree must compile and answer
        response = httpx.post(f"{self.url()}/v1/query", json={"query": "x := 1"}, timeout=2.0)
        return response.status_code == 200 and response.json().get("result") == [{"x": 1}]

    def info(self) -> dict[str, str]:
        return {"url": self.url(), "host": OPA_HOST, "port": str(OPA_PORT)}


def opa_test(policy_dir: Path = REPO_POLICY_DIR, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """Run `opa test -v` on a policy folder (default the repo's policies/) and return the finished process."""
    server = OpaServer()
    server.obtain()
    return subprocess.run(
        [str(server.binary), "test", "-v", str(policy_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
