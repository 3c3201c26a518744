"""Deployed processes in the distributed mode (`casestream up --distributed`), through the edge: the API replicas
answer GET /api/processes and a version's XML from the MongoDB read models the workers fold from the deployment
topic (never the event store), right after a deploy, with the shipped processes the process worker deployed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from infra.server import Server
from tests.e2e.stack_process import EDGE, RunningStack, edge_token
from tests.integration.api.test_process_deploy_api import PROCESS, model

API = f"{EDGE}/api"


@pytest.fixture(scope="module")
def servers(postgres_server: Server, kafka_server: Server, ferretdb_server: Server, opa_server: Server,
            s3_server: Server) -> None:
    """The backing servers run already (the stack joins them instead of starting its own)."""


def test_processes_are_listed_and_given_back_from_the_read_models(servers: None, tmp_path: Path) -> None:
    stack = RunningStack.launch(tmp_path / "stack", tmp_path / "up.log")
    try:
        stack.wait_up()
        with httpx.Client(base_url=API, headers=edge_token(), timeout=60) as admin:
            first, second = model("first"), model("second")
            for version, xml in ((1, first), (2, second)):
                reply = admin.post("/processes", json={"files": [{"name": "check.bpmn", "content": xml}]})
                assert reply.status_code == 200, reply.text
                assert reply.json()["files"][0]["version"] == version
                # no wait_for: the deploy answered once the read models held it
                listed = {p["id"]: p for p in admin.get("/processes").json()["items"]}
                assert (listed[PROCESS]["latest_version"], listed[PROCESS]["shipped"]) == (version, False)
            assert any(p["shipped"] for p in listed.values()), listed  # the process worker deployed them at start
            back = admin.get(f"/processes/{PROCESS}/versions/1")
            assert back.status_code == 200 and back.headers["content-type"] == "application/xml"
            assert back.content == first.encode("utf-8")
            assert admin.get(f"/processes/{PROCESS}/versions/3").status_code == 404
        with httpx.Client(base_url=API, headers=edge_token(tenant="globex"), timeout=60) as other:
            assert PROCESS not in {p["id"] for p in other.get("/processes").json()["items"]}
    finally:
        assert stack.interrupt() == 0, stack.output()[-3000:]
