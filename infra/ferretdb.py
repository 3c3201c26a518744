"""FerretDB v1 (a MongoDB-wire server, Apache-2.0) built from our small Go program in infra/ferretdb_go.

FerretDB 1.24 is not MongoDB: read-model code must keep to what it supports. Known gaps (see docs/ferretdb.md):

- aggregation stages `$lookup`, `$facet`, `$bucket`, `$replaceRoot` are not implemented;
- no multi-document transactions: a session opens, but `startTransaction` is refused;
- no change streams (`watch`), no TTL indexes (`expireAfterSeconds`), no collation;
- no nested arrays in documents (an array inside an array);
- field names may not contain `.` or start with `$`.

What works and is used: insert/update/delete, find with filters, sort, skip, limit, projection,
count_documents, unique and compound indexes, and aggregation with `$match`, `$group`, `$sort`, `$skip`,
`$limit`, `$project`, `$set`/`$addFields`, `$unset`, `$count`, `$unwind` (buildInfo lists them).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pymongo import MongoClient

from infra.gobuild import go_build
from infra.paths import run_dir
from infra.postgres import PostgresServer
from infra.server import Launch, Server

FERRETDB_VERSION = "1.24.2"
FERRETDB_HOST = "127.0.0.1"
FERRETDB_PORT = 27517
FERRETDB_PG_DATABASE = "ferretdb"
BACKENDS = ("postgresql", "sqlite")
SOURCE_DIR = Path(__file__).resolve().parent / "ferretdb_go"
BINARY = "casestream-ferretdb"


def _source_digest() -> str:
    """Short hash of the Go sources, so a change to main.go or go.mod builds a new binary."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update(name.encode())
        digest.update((SOURCE_DIR / name).read_bytes())
    return digest.hexdigest()[:12]


class FerretDBServer(Server):
    """FerretDB on 127.0.0.1:27517 backed by the private PostgreSQL (default) or SQLite files."""

    name = "ferretdb"
    version = FERRETDB_VERSION
    start_timeout = 60.0

    def __init__(self, backend: str = "postgresql", port: int = FERRETDB_PORT) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown FerretDB backend {backend!r}; known: {', '.join(BACKENDS)}")
        self.backend = backend
        self.port = port
        # a second PostgreSQL-backed instance must not drop the first one's database
        self.pg_database = FERRETDB_PG_DATABASE if port == FERRETDB_PORT else f"{FERRETDB_PG_DATABASE}_{port}"

    @property
    def state(self) -> Path:
        """Run folder; a SQLite or other-port instance gets its own so both can run side by side."""
        if self.backend == "postgresql" and self.port == FERRETDB_PORT:
            return super().state
        path = run_dir() / f"{self.name}-{self.backend}-{self.port}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def binary(self) -> Path:
        return self.cache / _source_digest() / BINARY

    @property
    def _started_postgres_marker(self) -> Path:
        return self.state / "started-postgres"

    def obtain(self) -> None:
        go_build(SOURCE_DIR, self.binary.parent, BINARY)

    def prepare(self) -> Launch:
        argv = [str(self.binary), f"-listen-addr={FERRETDB_HOST}:{self.port}", f"-handler={self.backend}"]
        if self.backend == "postgresql":
            argv.append(f"-postgresql-url={self._prepare_postgres()}")
        else:
            sqlite_dir = self.data_dir / "sqlite"
            sqlite_dir.mkdir()
            # FerretDB wants a URI naming an existing directory, with the trailing slash
            argv.append(f"-sqlite-url=file:{sqlite_dir}/")
        return Launch(argv=argv, cwd=self.data_dir)

    def resumable(self) -> bool:
        return self.backend == "postgresql"

    def resume(self) -> Launch:
        postgres = PostgresServer()
        if postgres.up(keep_data=True):
            self._started_postgres_marker.write_text("1")
        postgres.ensure_database(self.pg_database)
        argv = [str(self.binary), f"-listen-addr={FERRETDB_HOST}:{self.port}", f"-handler={self.backend}",
                f"-postgresql-url={postgres.dsn(self.pg_database)}"]
        return Launch(argv=argv, cwd=self.data_dir)

    def _prepare_postgres(self) -> str:
        """Start the private PostgreSQL if needed and give FerretDB a fresh database; return its URL."""
        postgres = PostgresServer()
        if postgres.up():
            # remembered on disk so that `down` (maybe from another process) stops only what we started
            self._started_postgres_marker.write_text("1")
        # FerretDB is not running here (up() stopped any stale one), so its old data can go: each start
        # is fresh, like the data folders of the other servers
        return postgres.create_database(self.pg_database)

    def uri(self) -> str:
        return f"mongodb://{FERRETDB_HOST}:{self.port}/"

    def client(self, timeout_ms: int = 5000) -> MongoClient[dict[str, object]]:
        """A pymongo client for this server (the caller closes it)."""
        return MongoClient(
            self.uri(),
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            directConnection=True,
        )

    def healthy(self) -> bool:
        with self.client(timeout_ms=2000) as client:
            reply = client.admin.command("ping")
            # listing databases goes through to the backend, which ping alone may not
            client.list_database_names()
        return bool(reply.get("ok") == 1)

    def info(self) -> dict[str, str]:
        details = {
            "uri": self.uri(),
            "host": FERRETDB_HOST,
            "port": str(self.port),
            "backend": self.backend,
        }
        if self.backend == "postgresql":
            details["postgresql_url"] = PostgresServer().dsn(self.pg_database)
        return details

    def down(self) -> None:
        """Stop FerretDB, then the private PostgreSQL too if FerretDB's start brought it up."""
        super().down()
        if self._started_postgres_marker.exists():
            PostgresServer().down()
            self._started_postgres_marker.unlink(missing_ok=True)
