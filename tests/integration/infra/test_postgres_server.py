"""The private PostgreSQL cluster answers a real round trip through psycopg."""

from __future__ import annotations

import psycopg

from infra.postgres import PostgresServer
from infra.server import Server


def test_postgres_round_trip(postgres_server: Server) -> None:
    assert isinstance(postgres_server, PostgresServer)
    dsn = postgres_server.create_database("infra_roundtrip")
    with psycopg.connect(dsn) as conn:
        conn.execute("create table t (id int primary key, v text)")
        conn.execute("insert into t values (1, 'x')")
        row = conn.execute("select v from t where id = 1").fetchone()
    assert row == ("x",)


def test_postgres_listens_only_on_loopback(postgres_server: Server) -> None:
    with psycopg.connect(postgres_server.info()["dsn"]) as conn:
        row = conn.execute("show listen_addresses").fetchone()
    assert row == ("127.0.0.1",)
