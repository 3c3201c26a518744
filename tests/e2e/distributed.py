"""Run the distributed mode as separate processes for whole-system tests: relay, workers, API, publisher.

Every process is a real `casestream` subprocess configured only by CASESTREAM_* variables, in its own session,
with its output in a log file; `stop()` is SIGTERM (then SIGKILL), `kill()` is SIGKILL (a crash). Each test
module gets its own PostgreSQL database, topic prefix, MongoDB database and consumer group.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.http_server import free_port
from tests.integration.kafka.support_worker import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]


class Service(WorkerProcess):
    """A running `casestream ...` subprocess (relay, worker, API replica, notify): started, stopped, killed alike."""


@dataclass
class Deployment:
    """Where one distributed deployment keeps its state; builds the environment of each process."""

    postgres: Mapping[str, str]
    dbname: str
    bootstrap: str
    mongo_url: str
    log_dir: Path
    opa_url: str | None = None  # the OPA server `serve --distributed` asks; None leaves the API to its default
    prefix: str = field(default_factory=lambda: f"e{uuid.uuid4().hex[:10]}")
    mongo_database: str = field(default_factory=lambda: f"e2e_{uuid.uuid4().hex[:8]}")
    group: str = field(default_factory=lambda: f"workers-{uuid.uuid4().hex[:6]}")
    notify_group: str = field(default_factory=lambda: f"notify-{uuid.uuid4().hex[:6]}")
    services: list[Service] = field(default_factory=list)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CASESTREAM_")}
        env.update({
            "CASESTREAM_EVENT_STORE": "postgres",
            "CASESTREAM_POSTGRES_HOST": self.postgres["host"],
            "CASESTREAM_POSTGRES_PORT": self.postgres["port"],
            "CASESTREAM_POSTGRES_USER": self.postgres["user"],
            "CASESTREAM_POSTGRES_PASSWORD": self.postgres["password"],
            "CASESTREAM_POSTGRES_DB": self.dbname,
            "CASESTREAM_POSTGRES_POOL_SIZE": "4",
            "CASESTREAM_KAFKA_BOOTSTRAP": self.bootstrap,
            "CASESTREAM_KAFKA_TOPIC_PREFIX": self.prefix,
            "CASESTREAM_MONGO_URL": self.mongo_url,
            "CASESTREAM_MONGO_DATABASE": self.mongo_database,
            "CASESTREAM_WORKER_GROUP": self.group,
            "CASESTREAM_WORKER_REBALANCE_TIMEOUT": "2",
            "CASESTREAM_NOTIFY_GROUP": self.notify_group,
            "CASESTREAM_DATA_DIR": str(self.log_dir / "data"),
            "CASESTREAM_KEY_FILE": str(self.log_dir / "issuer-key.json"),
            # these deployments test the data path with throwaway tenants: the built-in issuer, not the infra
            # Keycloak that `serve --distributed` trusts by default (test_portal_keycloak covers that)
            "CASESTREAM_OIDC_ISSUERS": "{}",
            "PYTHONUNBUFFERED": "1",
        })
        if self.opa_url is not None:
            env["CASESTREAM_OPA_URL"] = self.opa_url
        env.update(extra or {})
        return env

    def start(self, name: str, args: Sequence[str], extra: Mapping[str, str] | None = None) -> Service:
        """Start `casestream <args>` in its own session; returns at once."""
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "casestream", *args], cwd=ROOT, env=self.env(extra),
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        service = Service(name, process, log_path)
        self.services.append(service)
        return service

    def start_relay(self, name: str = "relay") -> Service:
        return self.start(name, ["relay"], {"CASESTREAM_RELAY_BATCH_SIZE": "1000",
                                            "CASESTREAM_RELAY_POLL_INTERVAL": "0.05"})

    def start_worker(self, name: str) -> Service:
        return self.start(name, ["worker", "--name", name], {"CASESTREAM_WORKER_BATCH_SIZE": "1000",
                                                             "CASESTREAM_WORKER_BATCH_WITHIN": "0.02"})

    def start_api(self, name: str = "api", extra: Mapping[str, str] | None = None) -> tuple[Service, str]:
        """`casestream serve --distributed` on a free port; returns once /readyz answers 200."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {"CASESTREAM_PORT": str(port), "CASESTREAM_PUBLIC_URL": url, **(extra or {})}
        service = self.start(name, ["serve", "--distributed"], env)
        wait_ready(url, service)
        return service, url

    def stop_all(self) -> None:
        for service in reversed(self.services):
            service.stop(timeout=20)


def drop_deployment(postgres: Any, deployment: Deployment) -> None:
    """Drop what a deployment stored: its PostgreSQL database, MongoDB database and Kafka topics."""
    import asyncio

    import psycopg
    from aiokafka.admin import AIOKafkaAdminClient
    from pymongo import MongoClient

    with psycopg.connect(postgres.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{deployment.dbname}" with (force)')
    client: MongoClient[dict[str, Any]] = MongoClient(deployment.mongo_url, serverSelectionTimeoutMS=10_000)
    try:
        client.drop_database(deployment.mongo_database)
    finally:
        client.close()

    async def delete_topics() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=deployment.bootstrap)
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if t.startswith(f"{deployment.prefix}.")]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()

    asyncio.run(delete_topics())


def wait_ready(url: str, service: Service, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.alive():
            raise AssertionError(f"{service.name} exited ({service.process.returncode}):\n{service.output()[-4000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{service.name} not ready after {timeout:.0f}s:\n{service.output()[-4000:]}")


def token(url: str, user: str = "admin", tenant: str = "acme") -> dict[str, str]:
    """A bearer header from the API's own issuer (password grant with the dev password)."""
    reply = httpx.post(f"{url}/auth/token", data={"grant_type": "password", "username": user,
                                                  "password": "casestream", "tenant": tenant}, timeout=10)
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def metric(text: str, name: str) -> float:
    """The sum of every sample of a metric in Prometheus text."""
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith(name + " ") or line.startswith(name + "{")]
    if not values:
        raise AssertionError(f"{name} not in the metrics")
    return sum(values)


def services_tail(services: Sequence[Service], chars: int = 2500) -> str:
    return "\n".join(f"--- {s.name} (alive={s.alive()})\n{s.output()[-chars:]}" for s in services)


def wait_for(check: Any, timeout: float, what: str, services: Sequence[Service] = ()) -> None:
    """Poll check() until true; on timeout fail with the services' log tails."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{services_tail(services)}")
        time.sleep(0.2)
