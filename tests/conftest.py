"""Shared fixtures: real servers started once per session through infra/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.server import Server
from tests.servers import run_server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    yield from run_server("postgres")


@pytest.fixture(scope="session")
def kafka_server() -> Iterator[Server]:
    yield from run_server("kafka")


@pytest.fixture(scope="session")
def ferretdb_server() -> Iterator[Server]:
    yield from run_server("ferretdb")


@pytest.fixture(scope="session")
def opa_server() -> Iterator[Server]:
    yield from run_server("opa")


@pytest.fixture(scope="session")
def keycloak_server() -> Iterator[Server]:
    yield from run_server("keycloak")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Server]:
    yield from run_server("s3")


@pytest.fixture(scope="session")
def mail_server() -> Iterator[Server]:
    yield from run_server("mail")


@pytest.fixture(scope="session")
def traefik_server() -> Iterator[Server]:
    yield from run_server("traefik")


@pytest.fixture(scope="session")
def clamav_server() -> Iterator[Server]:
    yield from run_server("clamav")
