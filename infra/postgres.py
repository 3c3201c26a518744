"""PostgreSQL from Debian's package, run as a private cluster (not the system one) on loopback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg

from infra.server import Launch, Server

PG_PORT = 25432
PG_USER = "casestream"
PG_PASSWORD = "casestream"
PG_DB = "casestream"


def _pg_bin() -> Path:
    """The folder holding initdb/postgres of the newest installed Debian PostgreSQL."""
    root = Path("/usr/lib/postgresql")
    versions = sorted((p for p in root.glob("*/bin") if (p / "postgres").exists()), reverse=True)
    if not versions:
        raise RuntimeError(
            "PostgreSQL server binaries not found: install Debian's package 'postgresql' "
            "(infra up postgres does it when apt-get is available)"
        )
    return versions[0]


class PostgresServer(Server):
    """A throwaway cluster owned by the 'postgres' system user (initdb refuses root)."""

    name = "postgres"
    version = "debian"
    start_timeout = 60.0
    stop_signal = signal.SIGINT  # "fast" shutdown

    def obtain(self) -> None:
        if Path("/usr/lib/postgresql").exists() and any(
            Path("/usr/lib/postgresql").glob("*/bin/postgres")
        ):
            return
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "postgresql"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )

    def _owner(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def prepare(self) -> Launch:
        pgbin = _pg_bin()
        data = self.data_dir / "pgdata"
        sock = self.data_dir / "sock"
        sock.mkdir()
        pwfile = self.data_dir / "pwfile"
        pwfile.write_text(PG_PASSWORD + "\n")
        owner = self._owner()
        if owner:
            shutil.chown(self.data_dir, owner)
            shutil.chown(sock, owner)
            shutil.chown(pwfile, owner)
        subprocess.run(
            [
                str(pgbin / "initdb"),
                "-D",
                str(data),
                "-U",
                PG_USER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            user=owner,
        )
        return self._launch(owner)

    def resumable(self) -> bool:
        return (self.data_dir / "pgdata" / "PG_VERSION").exists()

    def resume(self) -> Launch:
        return self._launch(self._owner())

    def _launch(self, owner: str | None) -> Launch:
        pgbin = _pg_bin()
        data = self.data_dir / "pgdata"
        sock = self.data_dir / "sock"
        launch_argv = [
            str(pgbin / "postgres"),
            "-D",
            str(data),
            "-p",
            str(PG_PORT),
            "-k",
            str(sock),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=256MB",
            "-c",
            "synchronous_commit=on",
            "-c",
            "fsync=on",
        ]
        if owner:
            # the state folder's log must be writable by the server's user
            self.state.chmod(0o777)
        return Launch(argv=launch_argv, user=owner)

    def healthy(self) -> bool:
        with psycopg.connect(self.dsn("postgres"), connect_timeout=2) as conn:
            conn.execute("select 1")
        self._ensure_database()
        return True

    def _ensure_database(self) -> None:
        with psycopg.connect(self.dsn("postgres"), autocommit=True, connect_timeout=2) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (PG_DB,)
            ).fetchone()
            if not exists:
                conn.execute(f'create database "{PG_DB}"')

    def dsn(self, dbname: str = PG_DB) -> str:
        return f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{PG_PORT}/{dbname}"

    def ensure_database(self, dbname: str) -> str:
        """Create a database unless it exists (its data kept); return its DSN."""
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            if not conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone():
                conn.execute(f'create database "{dbname}"')
        return self.dsn(dbname)

    def create_database(self, dbname: str) -> str:
        """Create (or recreate) a database for one test module; return its DSN."""
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{dbname}" with (force)')
            conn.execute(f'create database "{dbname}"')
        return self.dsn(dbname)

    def info(self) -> dict[str, str]:
        return {
            "dsn": self.dsn(),
            "host": "127.0.0.1",
            "port": str(PG_PORT),
            "user": PG_USER,
            "password": PG_PASSWORD,
            "dbname": PG_DB,
        }
