"""Shared fixtures: real servers started once per session through infra/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.server import Server
from tests.servers import run_server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    yield from run_server("postgres")
