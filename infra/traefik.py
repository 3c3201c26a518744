"""Traefik v3.6, built once from the Go module proxy, routing /api to API replicas and / to the UI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import httpx

from infra.gobuild import file_lock, go_binary, go_env
from infra.server import Launch, Server

TRAEFIK_VERSION = "v3.6.12"
TRAEFIK_CMD = "github.com/traefik/traefik/v3/cmd/traefik"
WEB_PORT = 28000
# Traefik's own entrypoint: /ping and the read-only API, never proxied traffic; below the ephemeral range (a client
# socket once held the old 38082 and the stack's Traefik could not bind it)
PING_PORT = 28088
DEFAULT_API_URLS = ("http://127.0.0.1:8001", "http://127.0.0.1:8002")
DEFAULT_UI_URL = "http://127.0.0.1:8000"
WRAPPER_DIR = Path(__file__).resolve().parent / "traefik_wrapper"

API_ROUTER = "casestream-api"
UI_ROUTER = "casestream-ui"
API_SERVICE = "casestream-api"
UI_SERVICE = "casestream-ui"


def _go_build(module_src: Path, work: Path, package: str, output: Path, ldflags: str = "") -> None:
    """Build package from a copy of module_src (so the clone's go.mod/go.sum are never rewritten)."""
    build_dir = work / "module"
    if build_dir.exists():
        shutil.rmtree(build_dir)
    shutil.copytree(module_src, build_dir)
    log_file = work / "build.log"
    partial = output.with_name(output.name + ".tmp")
    with log_file.open("wb") as log:
        result = subprocess.run(
            [go_binary(), "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(partial), package],
            cwd=build_dir,
            env=go_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    if result.returncode != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-40:])
        raise RuntimeError(f"go build {package} failed (log {log_file}):\n{tail}")
    # rename last: a half-written binary is never mistaken for a finished one
    os.replace(partial, output)


def _normalise_url(url: str) -> str:
    """Accept 'host:port' or a full URL; return a URL without a trailing slash."""
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


class TraefikServer(Server):
    """Edge proxy: load-balances /api over the API replicas (SSE flushed at once) and sends / to the UI."""

    name = "traefik"
    version = TRAEFIK_VERSION
    start_timeout = 30.0

    def __init__(
        self,
        api_urls: Sequence[str] | None = None,
        ui_url: str | None = None,
        *,
        web_port: int = WEB_PORT,
        ping_port: int = PING_PORT,
    ) -> None:
        self.api_urls = [_normalise_url(u) for u in (api_urls or DEFAULT_API_URLS)]
        self.ui_url = _normalise_url(ui_url or DEFAULT_UI_URL)
        self.web_port = web_port
        self.ping_port = ping_port

    @property
    def state(self) -> Path:
        # a second instance on other ports (tests) gets its own pid file, log and config
        if (self.web_port, self.ping_port) == (WEB_PORT, PING_PORT):
            return super().state
        path = super().state.with_name(f"{self.name}-{self.web_port}")
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def binary(self) -> Path:
        return self.cache / "traefik"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.ping_port}"

    def obtain(self) -> None:
        if self.binary.exists():
            return
        with file_lock(self.cache / "build.lock"):
            # another process may have finished the build while we waited for the lock
            if not self.binary.exists():
                # -s -w drop debug tables; -X stamps the version `traefik version` reports
                ldflags = f"-s -w -X github.com/traefik/traefik/v3/pkg/version.Version={TRAEFIK_VERSION}"
                _go_build(WRAPPER_DIR, self.cache, TRAEFIK_CMD, self.binary, ldflags)

    def _static_config(self, dynamic_file: Path) -> dict[str, object]:
        return {
            "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
            "entryPoints": {
                "web": {
                    "address": f"127.0.0.1:{self.web_port}",
                    # readTimeout is a connection deadline: its 60 s default would cut SSE streams
                    "transport": {"respondingTimeouts": {"readTimeout": "0"}},
                },
                "traefik": {"address": f"127.0.0.1:{self.ping_port}"},
            },
            "ping": {"entryPoint": "traefik"},
            # read-only API on the 'traefik' entrypoint, used by healthy() to see the routes are loaded
            "api": {"insecure": True, "dashboard": False},
            "providers": {"file": {"filename": str(dynamic_file), "watch": False}},
            "log": {"level": "INFO", "noColor": True},
        }

    def _dynamic_config(self) -> dict[str, object]:
        return {
            "http": {
                "routers": {
                    API_ROUTER: {
                        "rule": "PathPrefix(`/api`)",
                        "entryPoints": ["web"],
                        "service": API_SERVICE,
                        "middlewares": ["casestream-api-retry"],
                        "priority": 100,
                    },
                    UI_ROUTER: {
                        "rule": "PathPrefix(`/`)",
                        "entryPoints": ["web"],
                        "service": UI_SERVICE,
                        "priority": 1,
                    },
                },
                "middlewares": {
                    # a replica that refuses the connection is retried on another one
                    "casestream-api-retry": {"retry": {"attempts": len(self.api_urls) + 1}},
                },
                "services": {
                    API_SERVICE: {
                        "loadBalancer": {
                            "servers": [{"url": u} for u in self.api_urls],
                            # a failing replica leaves the rotation for a while, no health endpoint needed
                            "passiveHealthCheck": {"failureWindow": "10s", "maxFailedAttempts": 1},
                            # Server-Sent Events under /api: flush every write, never buffer
                            "responseForwarding": {"flushInterval": "-1ms"},
                        }
                    },
                    UI_SERVICE: {"loadBalancer": {"servers": [{"url": self.ui_url}]}},
                },
            }
        }

    def prepare(self) -> Launch:
        dynamic_file = self.data_dir / "dynamic.yml"
        static_file = self.data_dir / "traefik.yml"
        # JSON is valid YAML, so no YAML library is needed to write Traefik's config files
        dynamic_file.write_text(json.dumps(self._dynamic_config(), indent=2))
        static_file.write_text(json.dumps(self._static_config(dynamic_file), indent=2))
        return Launch(argv=[str(self.binary), f"--configFile={static_file}"], cwd=self.data_dir)

    def healthy(self) -> bool:
        with httpx.Client(base_url=self.admin_url, timeout=2.0) as client:
            ping = client.get("/ping")
            if ping.status_code != 200 or ping.text.strip() != "OK":
                return False
            # /ping answers before the file provider's routes are live; wait for both routers
            routers = client.get("/api/http/routers")
            routers.raise_for_status()
            enabled = {r.get("name") for r in routers.json() if r.get("status") == "enabled"}
            if not {f"{API_ROUTER}@file", f"{UI_ROUTER}@file"} <= enabled:
                return False
            # an instance left running with other backends is not ours: up() then restarts it
            api = client.get(f"/api/http/services/{API_SERVICE}@file")
            api.raise_for_status()
        servers = api.json().get("loadBalancer", {}).get("servers", [])
        return sorted(s.get("url") for s in servers) == sorted(self.api_urls)

    def info(self) -> dict[str, str]:
        return {
            "url": self.url,
            "ping_url": f"{self.admin_url}/ping",
            "api_urls": ",".join(self.api_urls),
            "ui_url": self.ui_url,
        }
