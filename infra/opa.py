"""Open Policy Agent v1 built with `go install`, serving a folder of Rego v1 policies on loopback."""

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
DEFAULT_POLICY_DIR = Path(__file__).resolve().parent / "opa_policies"
# package queried by the health probe when serving the default policy folder
DEFAULT_PROBE = "casestream/authz"


class OpaServer(Server):
    """`opa run --server` on 127.0.0.1:28181 with one policy folder loaded at start."""

    name = "opa"
    version = OPA_VERSION
    start_timeout = 60.0

    def __init__(self, policy_dir: Path | None = None, probe: str | None = None) -> None:
        self.policy_dir = (policy_dir or DEFAULT_POLICY_DIR).resolve()
        # the health probe queries a package that the folder defines; the whole data tree otherwise
        self.probe = probe if probe is not None else (DEFAULT_PROBE if policy_dir is None else "")

    @property
    def binary(self) -> Path:
        return self.cache / "opa"

    def obtain(self) -> None:
        go_install(OPA_MODULE, f"v{OPA_VERSION}", self.cache, "opa")

    def prepare(self) -> Launch:
        if not self.policy_dir.is_dir():
            raise FileNotFoundError(f"OPA policy folder {self.policy_dir} does not exist")
        return Launch(
            argv=[
                str(self.binary),
                "run",
                "--server",
                f"--addr={OPA_HOST}:{OPA_PORT}",
                "--disable-telemetry",
                "--log-level=info",
                str(self.policy_dir),
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
        # a real evaluation: the probed package must be loaded and give a document back
        response = httpx.post(f"{self.url()}/v1/data/{self.probe}", json={"input": {}}, timeout=2.0)
        return response.status_code == 200 and isinstance(response.json().get("result"), dict)

    def info(self) -> dict[str, str]:
        return {
            "url": self.url(),
            "host": OPA_HOST,
            "port": str(OPA_PORT),
            "policy_dir": str(self.policy_dir),
        }


def opa_test(policy_dir: Path | None = None, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """Run `opa test -v` on a policy folder (default infra/opa_policies) and return the finished process."""
    server = OpaServer(policy_dir)
    server.obtain()
    return subprocess.run(
        [str(server.binary), "test", "-v", str(server.policy_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
