"""A starting process waits for PostgreSQL: at once for the real server, patiently (and visibly) for one that
comes up late, bounded and named for a port where nothing listens or nothing answers, never for a wrong password."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.postgres_wait import PostgresUnavailable, wait_for_postgres
from casestream.bootstrap import build_event_store
from casestream.settings import Settings
from infra.server import Server
from tests.http_server import free_port
from tests.postgres_store import scratch_database
from tests.tcp_forwarder import Forwarder


@pytest.fixture(scope="module")
def postgres(postgres_server: Server) -> dict[str, str]:
    return postgres_server.info()


def wait(info: dict[str, str], patience: float, *, port: int | None = None, password: str | None = None) -> float:
    """wait_for_postgres for the infra server, or for another port / password on the same host."""
    return wait_for_postgres(host=info["host"], port=port or int(info["port"]), dbname=info["dbname"],
                             user=info["user"], password=password or info["password"], patience=patience)


def waiting_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("waiting for PostgreSQL")]


@pytest.fixture
def late(postgres: dict[str, str]) -> Iterator[Forwarder]:
    """A forwarder to the server that listens only once opened (a server coming up)."""
    forwarder = Forwarder((postgres["host"], int(postgres["port"])))
    yield forwarder
    forwarder.cut()


def test_the_running_server_is_reached_without_a_wait(postgres: dict[str, str],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "adapters.postgres_wait")
    wait(postgres, 30)
    assert waiting_lines(caplog) == []


def test_a_server_that_comes_up_late_is_waited_for_and_each_wait_is_logged(
        postgres: dict[str, str], late: Forwarder, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "adapters.postgres_wait")
    opened = threading.Timer(2.0, late.open)
    opened.start()
    try:
        wait(postgres, 120, port=late.port)
    finally:
        opened.cancel()
    lines = waiting_lines(caplog)
    assert lines, caplog.text
    assert lines[0].startswith(f"waiting for PostgreSQL at 127.0.0.1:{late.port} (database {postgres['dbname']}")
    assert "trying again in 0.5s" in lines[0], lines[0]
    assert any("accepts connections (after" in r.getMessage() for r in caplog.records), caplog.text


def test_a_port_where_nothing_listens_fails_naming_the_server_after_the_patience(
        postgres: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "adapters.postgres_wait")
    port = free_port()
    with pytest.raises(PostgresUnavailable) as raised:
        wait(postgres, 2, port=port)
    message = str(raised.value)
    assert message.startswith(f"PostgreSQL at 127.0.0.1:{port} (database {postgres['dbname']}")
    assert "did not accept a connection within 2s" in message and "refused" in message, message
    assert len(waiting_lines(caplog)) >= 2, caplog.text  # it tried again before giving up


def test_a_port_that_accepts_but_never_answers_fails_naming_the_server() -> None:
    silent = socket.create_server(("127.0.0.1", 0), backlog=16)  # the kernel accepts; nobody speaks
    port = silent.getsockname()[1]
    try:
        with pytest.raises(PostgresUnavailable, match=rf"^PostgreSQL at 127\.0\.0\.1:{port} .* did not accept a "
                                                       r"connection within 1s .*timeout"):
            wait_for_postgres(host="127.0.0.1", port=port, dbname="x", user="x", password="x", patience=1)
    finally:
        silent.close()


def test_a_wrong_password_fails_at_once_without_waiting(postgres: dict[str, str],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "adapters.postgres_wait")
    with pytest.raises(PostgresUnavailable, match=r"refused the connection: .*password authentication failed"):
        wait(postgres, 60, password="not-the-password")
    assert waiting_lines(caplog) == []


def test_a_process_built_from_settings_waits_for_a_late_server_and_uses_its_pool_timeout(
        postgres_server: Server, postgres: dict[str, str], late: Forwarder, caplog: pytest.LogCaptureFixture,
        tmp_path: Path) -> None:
    caplog.set_level(logging.INFO, "adapters.postgres_wait")
    with scratch_database(postgres_server, "wait") as dbname:
        settings = Settings(data_dir=tmp_path, event_store="postgres", postgres_host="127.0.0.1",
                            postgres_port=late.port, postgres_db=dbname, postgres_user=postgres["user"],
                            postgres_password=postgres["password"], postgres_pool_size=2,
                            postgres_start_wait_seconds=120, postgres_pool_timeout_seconds=30)
        opened = threading.Timer(1.0, late.open)
        opened.start()
        try:
            store = build_event_store(settings)
        finally:
            opened.cancel()
        try:
            assert store.max_position() == 0
            assert store.recorder.datastore.pool.timeout == 30  # type: ignore[attr-defined]
        finally:
            store.close()
    assert waiting_lines(caplog), caplog.text
