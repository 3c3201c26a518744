"""The SQLite backend option: a second FerretDB on its own port, files in its own run folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.ferretdb import FerretDBServer

SQLITE_PORT = 27518


@pytest.fixture(scope="module")
def sqlite_ferretdb() -> Iterator[FerretDBServer]:
    server = FerretDBServer(backend="sqlite", port=SQLITE_PORT)
    started = server.up()
    try:
        yield server
    finally:
        if started:
            server.down()


def test_ferretdb_sqlite_round_trip(sqlite_ferretdb: FerretDBServer) -> None:
    assert sqlite_ferretdb.info()["uri"] == f"mongodb://127.0.0.1:{SQLITE_PORT}/"
    with sqlite_ferretdb.client() as client:
        coll = client["infra_sqlite"]["notes"]
        coll.insert_many([{"_id": i, "n": i * i} for i in range(5)])
        assert [d["n"] for d in coll.find({"n": {"$gte": 4}}).sort("n", -1)] == [16, 9, 4]
    # the data went to SQLite files in the instance's own data folder
    assert list((sqlite_ferretdb.data_dir / "sqlite").glob("infra_sqlite*"))
