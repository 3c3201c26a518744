"""An embedded platform served over real HTTP for the API tests, plus a published definition."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from casestream.settings import Settings
from tests.http_server import LiveServer, live_server

CLAIM: dict[str, Any] = {
    "key": "claim",
    "name": "Insurance claim",
    "schema": {
        "type": "object",
        "properties": {
            "amount": {"type": "number", "minimum": 0},
            "category": {"type": "string", "enum": ["water", "fire", "theft"]},
            "policy": {"type": "object", "properties": {"number": {"type": "string"}}},
        },
        "required": ["amount"],
        "additionalProperties": False,
    },
    "stages": [
        {"key": "intake", "name": "Intake", "transitions": ["assessment"]},
        {"key": "assessment", "name": "Assessment", "transitions": ["intake", "payout"]},
        {"key": "payout", "name": "Payout", "transitions": []},
    ],
    "statuses": ["approved", "rejected"],
    "queues": ["claims-team", "fraud"],
    "card_fields": ["amount", "category"],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data: Path = tmp_path_factory.mktemp("api")
    with live_server(Settings(data_dir=data, max_body_bytes=65_536)) as live:
        with live.client("admin", ("admin",)) as admin:
            reply = admin.post("/api/definitions", json=CLAIM)
            assert reply.status_code == 200, reply.text
        yield live


@pytest.fixture()
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client("alice", ("caseworker",)) as client:
        yield client


def open_claim(client: httpx.Client, amount: float = 100, title: str = "Water damage", **extra: Any) -> dict[str, Any]:
    reply = client.post("/api/cases", json={"definition_key": "claim", "title": title, "data": {"amount": amount},
                                            **extra})
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


class _ServerErrors(logging.Handler):
    """Collects ERROR records of the server's own loggers (the servers of these tests run in this process)."""

    WATCHED = ("api", "commands", "adapters", "projections", "casestream", "uvicorn.error")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in self.WATCHED or record.name in self.WATCHED:
            self.records.append(record)


@pytest.fixture(autouse=True)
def no_server_errors() -> Iterator[None]:
    """Fails the test during which the server logged an error (a 500, a crashed request): bad input must never
    get that far. A test that provokes one on purpose marks itself `expected_server_errors`."""
    collector = _ServerErrors()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield
    finally:
        root.removeHandler(collector)
    if collector.records:
        lines = [f"{r.name}: {r.getMessage()}" + (f"\n{logging.Formatter().formatException(r.exc_info)}"
                                                   if r.exc_info else "") for r in collector.records[:3]]
        pytest.fail("the server logged errors during this test:\n" + "\n".join(lines))
