"""FerretDB answers real MongoDB-wire round trips through pymongo, stored in the private PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pymongo
import pytest
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from infra.ferretdb import FerretDBServer
from infra.process import port_open
from infra.server import Server
from tests.servers import listeners

Doc = dict[str, object]


@pytest.fixture()
def cases(ferretdb_server: Server) -> Iterator[Collection[Doc]]:
    assert isinstance(ferretdb_server, FerretDBServer)
    with ferretdb_server.client() as client:
        collection: Collection[Doc] = client["infra_ferretdb"]["cases"]
        collection.drop()
        collection.insert_many(
            [
                {"_id": f"case-{i}", "status": status, "team": team, "priority": i}
                for i, (status, team) in enumerate(
                    [
                        ("open", "intake"),
                        ("open", "intake"),
                        ("closed", "intake"),
                        ("open", "appeals"),
                        ("closed", "appeals"),
                    ]
                )
            ]
        )
        yield collection
        collection.drop()


def test_ferretdb_ping(ferretdb_server: Server) -> None:
    assert ferretdb_server.info()["uri"] == "mongodb://127.0.0.1:27517/"
    with pymongo.MongoClient(ferretdb_server.info()["uri"], serverSelectionTimeoutMS=5000) as client:
        assert client.admin.command("ping")["ok"] == 1
        # it is FerretDB, not a MongoDB that happened to be on the port
        assert "ferretdbVersion" in client.admin.command("buildInfo")


def test_ferretdb_find_sort_limit_count(cases: Collection[Doc]) -> None:
    found = list(cases.find({"status": "open"}, {"_id": 1}).sort("priority", pymongo.DESCENDING).limit(2))
    assert [doc["_id"] for doc in found] == ["case-3", "case-1"]
    assert cases.count_documents({"team": "intake"}) == 3
    cases.update_one({"_id": "case-0"}, {"$set": {"status": "closed"}})
    assert cases.find_one({"_id": "case-0"}) == {
        "_id": "case-0",
        "status": "closed",
        "team": "intake",
        "priority": 0,
    }


def test_ferretdb_group_aggregation(cases: Collection[Doc]) -> None:
    rows = list(
        cases.aggregate(
            [
                {"$match": {"status": "open"}},
                {"$group": {"_id": "$team", "n": {"$sum": 1}}},
                {"$sort": {"_id": 1}},
            ]
        )
    )
    assert rows == [{"_id": "appeals", "n": 1}, {"_id": "intake", "n": 2}]


def test_ferretdb_unique_index(cases: Collection[Doc]) -> None:
    cases.create_index([("team", 1), ("priority", 1)], unique=True)
    with pytest.raises(DuplicateKeyError):
        cases.insert_one({"_id": "case-dup", "team": "intake", "priority": 0})


def test_ferretdb_stores_in_private_postgres(ferretdb_server: Server, cases: Collection[Doc]) -> None:
    # FerretDB v1 maps a MongoDB database to a PostgreSQL schema of the same name
    with psycopg.connect(ferretdb_server.info()["postgresql_url"]) as conn:
        row = conn.execute(
            "select 1 from information_schema.schemata where schema_name = 'infra_ferretdb'"
        ).fetchone()
    assert row == (1,)


def test_ferretdb_listens_only_on_loopback(ferretdb_server: Server) -> None:
    port = int(ferretdb_server.info()["port"])
    assert port_open(port, "127.0.0.1")
    # 0100007F is 127.0.0.1 in /proc/net/tcp's little-endian hex; a wildcard or IPv6 bind would show too
    assert listeners(port) == ["0100007F"]
