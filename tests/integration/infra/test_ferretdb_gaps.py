"""What FerretDB v1 refuses, checked for real so read-model code knows what not to use (docs/ferretdb.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from infra.ferretdb import FerretDBServer
from infra.server import Server

Doc = dict[str, object]


@pytest.fixture()
def server(ferretdb_server: Server) -> FerretDBServer:
    assert isinstance(ferretdb_server, FerretDBServer)
    return ferretdb_server


@pytest.fixture()
def coll(server: FerretDBServer) -> Iterator[Collection[Doc]]:
    with server.client() as client:
        collection: Collection[Doc] = client["infra_ferretdb_gaps"]["docs"]
        collection.drop()
        collection.insert_one({"_id": 1, "team": "intake"})
        yield collection
        collection.drop()


def _stage(stage: Doc) -> Callable[[Collection[Doc]], object]:
    return lambda coll: list(coll.aggregate([stage]))


REFUSED: dict[str, tuple[Callable[[Collection[Doc]], object], str]] = {
    "$lookup": (
        _stage({"$lookup": {"from": "teams", "localField": "team", "foreignField": "_id", "as": "t"}}),
        r'stage "\$lookup" is not implemented',
    ),
    "$facet": (_stage({"$facet": {"all": [{"$match": {}}]}}), r'stage "\$facet" is not implemented'),
    "$replaceRoot": (
        _stage({"$replaceRoot": {"newRoot": "$$ROOT"}}),
        r'stage "\$replaceRoot" is not implemented',
    ),
    "change stream": (lambda coll: coll.watch(), r'stage "\$changeStream" is not implemented'),
    "TTL index": (
        lambda coll: coll.create_index("at", expireAfterSeconds=60),
        r"expireAfterSeconds.* is not implemented",
    ),
    "collation": (
        lambda coll: list(coll.find({}, collation={"locale": "en", "strength": 2})),
        r'"collation".* is not implemented',
    ),
    "dotted key": (lambda coll: coll.insert_one({"_id": 3, "a.b": 1}), r"must not contain '\.'"),
    "dollar key": (lambda coll: coll.insert_one({"_id": 4, "$a": 1}), r"must not start with '\$'"),
    "nested array": (lambda coll: coll.insert_one({"_id": 5, "a": [[1]]}), r"nested arrays"),
}


@pytest.mark.parametrize("gap", sorted(REFUSED))
def test_ferretdb_refuses(gap: str, coll: Collection[Doc]) -> None:
    action, message = REFUSED[gap]
    with pytest.raises(PyMongoError, match=message):
        action(coll)
    # nothing was written by a refused insert
    assert coll.count_documents({}) == 1


def test_transaction_is_refused(server: FerretDBServer, coll: Collection[Doc]) -> None:
    with (
        server.client() as client,
        pytest.raises(PyMongoError, match="startTransaction"),
        client.start_session() as session,
        session.start_transaction(),
    ):
        client["infra_ferretdb_gaps"]["docs"].insert_one({"_id": 2}, session=session)
    assert coll.count_documents({"_id": 2}) == 0


def test_advertised_aggregation_stages(server: FerretDBServer) -> None:
    with server.client() as client:
        stages = client.admin.command("buildInfo")["ferretdbFeatures"]["aggregationStages"]
    assert {"$match", "$group", "$sort", "$limit", "$project", "$unwind", "$count"} <= set(stages)
    assert not {"$lookup", "$facet", "$bucket", "$replaceRoot"} & set(stages)
