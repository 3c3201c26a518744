"""Read models in MongoDB (FerretDB v1 in tests): one collection per read model, each document with its position.

A document is stored packed: the whole of it as zlib-compressed JSON in one binary field (`packed`), beside a
`doc` holding only its top-level scalars (what filters, sorts and text search read). FerretDB's cost per write
grows with the nested fields it parses and stores (a case with 30 comments: ~230 replaces/s nested, ~970/s
packed, bench/README.md), and a case document grows by every comment.

There are no multi-document transactions (FerretDB refuses them), so a batch is not atomic. It is still
safe: every stored document carries the position of the last event folded into it and a write only lands
where the stored position is lower, and the tracking position is written after the documents. A crash
between the two replays the batch, and the replay changes nothing that was already written. See
docs/read-models.md.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson
from bson import Binary
from pymongo import ASCENDING, DESCENDING, MongoClient, ReplaceOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from projections.base import Doc, Projection
from projections.ports import In, Query, Write

Record = dict[str, Any]
_T = TypeVar("_T")

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_DUPLICATE_KEY = 11000
_TRACKING = "tracking"
_CHUNK = 500
_FIELDS = {"doc": 1, "position": 1, "escaped": 1, "packed": 1}  # what a read fetches (`doc`: records before packing)
# a list inside a list is stored as {_LIST: [...]}: FerretDB v1 refuses nested arrays, and no escaped key
# can equal this one (escaping turns every "%" into "%25")
_LIST = "%list"
_ESCAPES = {"%": "%25", ".": "%2E", "$": "%24", "\x00": "%00"}
_UNESCAPE = re.compile(r"%(25|2E|24|00)")
_UNESCAPES = {"25": "%", "2E": ".", "24": "$", "00": "\x00"}


def _check(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"bad field name {name!r}")
    return name


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _needs_escape(key: str) -> bool:
    return "%" in key or "." in key or "$" in key or "\x00" in key


def _escape_key(key: str) -> str:
    if not _needs_escape(key):
        return key
    return "".join(_ESCAPES.get(ch, ch) for ch in key)


def _plain(value: Any, in_list: bool = False) -> bool:
    """Whether FerretDB takes the value as it is (no key to escape, no list in a list): the common case, checked
    without building a copy (a worker stores every document it folds: this walk is on its hot path)."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if isinstance(value, dict):
        for key, item in value.items():
            if _needs_escape(key) or (type(item) not in _SCALARS and not _plain(item)):
                return False
        return True
    if isinstance(value, list | tuple):
        return not in_list and all(type(item) in _SCALARS or _plain(item, True) for item in value)
    return True


def _encode(value: Any, in_list: bool = False) -> tuple[Any, bool]:
    """The value as FerretDB accepts it, and whether anything had to change (then decoding is needed)."""
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for key, item in value.items():
            escaped = _escape_key(key)
            encoded, inner = _encode(item)
            out[escaped] = encoded
            changed = changed or inner or escaped != key
        return out, changed
    if isinstance(value, list | tuple):
        items = [_encode(item, in_list=True) for item in value]
        encoded_list = [item for item, _ in items]
        changed = any(inner for _, inner in items)
        if in_list:
            return {_LIST: encoded_list}, True
        return encoded_list, changed
    return value, False


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and _LIST in value:
            return [_decode(item) for item in value[_LIST]]
        return {
            (_UNESCAPE.sub(lambda m: _UNESCAPES[m.group(1)], key) if "%" in key else key): _decode(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def _copy(name: str) -> str:
    """The top-level field holding a copy of the document's field `name` (indexed, sortable)."""
    return f"f_{name}"


class MongoDocumentStore:
    """DocumentStore on MongoDB (FerretDB v1 compatible): stored as {_id: key, tenant, position, doc, f_<field>}."""

    def __init__(
        self, uri: str, database: str, projections: Iterable[Projection], *,
        client: MongoClient[Record] | None = None,
    ) -> None:
        self.projections = {p.collection: p for p in projections}
        self._owns_client = client is None
        self.client: MongoClient[Record] = client or MongoClient(uri)
        self.db: Database[Record] = self.client[database]
        # FerretDB 1.24 on PostgreSQL (docs/read-models.md): an update command holds one backend connection per
        # statement until it ends, from a pool of 50 shared by every client, so ~50 statements in one command
        # wedge the whole server for good; and only top-level equality reaches PostgreSQL, so `_id: {$in: ...}`
        # scans the collection while a lookup by `_id` does not. A real MongoDB gets bulk commands and $in.
        self.ferretdb = "ferretdbVersion" in self.client.admin.command("buildInfo")
        self.statements_per_update = 1 if self.ferretdb else 1000
        # FerretDB runs each update statement as its own PostgreSQL transaction (~3 ms here): sent one after the
        # other they bound a worker at ~300 documents/s, on 8 connections ~3x that (bench/worker.py). The guard
        # on each replace makes their order irrelevant; the tracking position is written after all of them.
        self.write_threads = 8 if self.ferretdb else 2
        self._pool: ThreadPoolExecutor | None = None
        self._copies = {
            name: tuple(dict.fromkeys((*map(_check, p.indexes), _check(p.order))))
            for name, p in self.projections.items()
        }
        self.ensure_indexes()

    def ensure_indexes(self) -> None:
        """Create the query indexes (idempotent)."""
        for name, projection in self.projections.items():
            coll = self.db[name]
            order = _copy(projection.order)
            coll.create_index([("tenant", ASCENDING), (order, ASCENDING)])
            coll.create_index([("position", ASCENDING)])
            for f in projection.indexes:
                if f != projection.order:  # (tenant, order) above is that index already
                    coll.create_index([("tenant", ASCENDING), (_copy(f), ASCENDING), (order, ASCENDING)])

    def _coll(self, collection: str) -> Collection[Record]:
        if collection not in self.projections:
            raise KeyError(f"unknown collection {collection!r}")
        return self.db[collection]

    def _path(self, collection: str, name: str) -> str:
        """Where a document field is queried: its indexed top-level copy if there is one, else inside `doc`."""
        if name == "position":
            return "position"
        return _copy(name) if name in self._copies[collection] else f"doc.{_check(name)}"

    def record_of(self, w: Write) -> Record:
        """The stored record of a write: packed doc, its scalars, `f_` copies, position; a tombstone for a deletion."""
        if w.doc is None:
            # a tombstone: tenant null, so no tenant's query ever sees it, but its position still refuses replays
            return {"_id": w.key, "tenant": None, "position": w.position, "doc": None, "escaped": False}
        # only top-level scalars stay readable by the server: filters and sorts on fields without an `f_` copy, and
        # text search over `search`, read them as `doc.<field>`; lists and sub-documents live in `packed` only
        scalars = {k: v for k, v in w.doc.items() if type(v) in _SCALARS}
        escaped = any(_needs_escape(k) for k in scalars)
        record: Record = {
            "_id": w.key, "tenant": w.doc.get("tenant"), "position": w.position,
            "doc": _encode(scalars)[0] if escaped else scalars, "escaped": escaped,
            "packed": Binary(zlib.compress(orjson.dumps(w.doc), 1)),
        }
        for name in self._copies[w.collection]:
            value = w.doc.get(name)
            record[_copy(name)] = value if _plain(value) else _encode(value)[0]
        return record

    @staticmethod
    def _stored(record: Record) -> tuple[Doc | None, int]:
        packed = record.get("packed")
        if packed is not None:
            return orjson.loads(zlib.decompress(packed)), int(record["position"])
        # written before documents were packed: the whole document is in `doc`
        doc = record.get("doc")
        if doc is not None and record.get("escaped"):
            doc = _decode(doc)
        return doc, int(record["position"])

    def get(self, collection: str, key: str) -> tuple[Doc | None, int] | None:
        record = self._coll(collection).find_one({"_id": key}, _FIELDS)
        return None if record is None else self._stored(record)

    def get_many(self, collection: str, keys: Sequence[str]) -> dict[str, tuple[Doc | None, int]]:
        coll = self._coll(collection)
        fields = _FIELDS
        found: dict[str, tuple[Doc | None, int]] = {}
        if self.ferretdb:
            # one lookup by _id each (`$in` scans the collection there), spread over the write pool's connections

            def look_up(part: Sequence[str]) -> list[Record]:
                return [r for key in part if (r := coll.find_one({"_id": key}, fields)) is not None]

            unique = list(dict.fromkeys(keys))
            size = max(16, -(-len(unique) // self.write_threads))
            parts = [unique[i:i + size] for i in range(0, len(unique), size)]
            for records in self.parallel([functools.partial(look_up, part) for part in parts]):
                for record in records:
                    found[record["_id"]] = self._stored(record)
            return found
        for start in range(0, len(keys), _CHUNK):
            for record in coll.find({"_id": {"$in": list(keys[start : start + _CHUNK])}}, fields):
                found[record["_id"]] = self._stored(record)
        return found

    def scan(self, collection: str) -> dict[str, tuple[Doc | None, int]]:
        """Every document of a collection with its position (None: deleted), read in one pass (audits, checks)."""
        fields = _FIELDS
        return {str(record["_id"]): self._stored(record) for record in self._coll(collection).find({}, fields)}

    def write(self, writes: Sequence[Write], tracking: tuple[str, int] | None = None) -> None:
        """Store the documents (each only over an older position), then the tracking position.

        Not one transaction (FerretDB has none); the order and the position guard make a crash at any
        point safe to replay.
        """
        groups = self.by_collection(writes)
        existing = self.insert_new(groups)
        self.replace_older(existing)
        if tracking is not None:
            name, position = tracking
            self._advance(self.db[_TRACKING], {"_id": name, "position": position})

    def by_collection(self, writes: Iterable[Write]) -> dict[str, list[Write]]:
        """The writes grouped by read model, in batch order (an unknown collection raises KeyError)."""
        groups: dict[str, list[Write]] = {}
        for w in writes:
            self._coll(w.collection)
            groups.setdefault(w.collection, []).append(w)
        return groups

    def insert_new(self, groups: Mapping[str, Sequence[Write]]) -> dict[str, list[Write]]:
        """Insert documents believed new (unordered insert_many per collection, in parallel); return, by
        collection and in batch order, the writes whose key existed: nothing was written for those."""
        return self.insert_and_replace(groups, {})

    def replace_older(self, groups: Mapping[str, Sequence[Write]]) -> None:
        """Replace documents that exist, each only where the stored position is older (a stale or repeated write
        changes nothing). No upserts: FerretDB v1 stops an unordered batch of upserts at its first duplicate key
        and reports it at the wrong index. Chunks of `statements_per_update` run on parallel connections."""
        self.insert_and_replace({}, groups)

    def insert_and_replace(
        self, new: Mapping[str, Sequence[Write]], existing: Mapping[str, Sequence[Write]],
    ) -> dict[str, list[Write]]:
        """insert_new(new) and replace_older(existing) at once, on the same parallel connections (different
        documents: neither waits for the other); returns what insert_new returns."""

        def insert(collection: str, group: Sequence[Write]) -> tuple[str, list[Write]]:
            try:
                self.db[collection].insert_many([self.record_of(w) for w in group], ordered=False)
            except BulkWriteError as error:
                failed = error.details.get("writeErrors", [])
                if any(e.get("code") != _DUPLICATE_KEY for e in failed):
                    raise
                return collection, [group[i] for i in sorted(int(e["index"]) for e in failed)]
            return collection, []

        def replace(coll: Collection[Record], requests: list[ReplaceOne[Record]]) -> tuple[str, list[Write]]:
            coll.bulk_write(requests)
            return "", []

        jobs: list[Callable[[], tuple[str, list[Write]]]] = [
            functools.partial(insert, c, g) for c, g in new.items() if g]
        step = self.statements_per_update
        for collection, group in existing.items():
            coll = self.db[collection]
            records = [self.record_of(w) for w in group]
            for start in range(0, len(records), step):
                requests = [ReplaceOne({"_id": r["_id"], "position": {"$lt": r["position"]}}, r)
                            for r in records[start:start + step]]
                jobs.append(functools.partial(replace, coll, requests))
        return {c: existed for c, existed in self.parallel(jobs) if existed}

    def parallel(self, jobs: Sequence[Callable[[], _T]]) -> list[_T]:
        """Run the jobs on the write pool (one connection each); wait for all, then raise the first failure."""
        if len(jobs) <= 1:
            return [job() for job in jobs]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.write_threads, thread_name_prefix="mongo-write")
        futures = [self._pool.submit(job) for job in jobs]
        errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
        return [f.result() for f in futures]

    @staticmethod
    def _advance(coll: Collection[Record], record: Record) -> None:
        """Store the record unless one at the same or a later position is there (safe under concurrent writers)."""
        guard = {"_id": record["_id"], "position": {"$lt": record["position"]}}
        try:
            coll.replace_one(guard, record, upsert=True)
        except DuplicateKeyError:
            # the key exists: at a later position (nothing to do), or it appeared since the guard looked
            coll.replace_one(guard, record)

    def tracking(self, name: str) -> int:
        found = self.db[_TRACKING].find_one({"_id": name}, {"position": 1})
        return int(found["position"]) if found else 0

    def _match(self, collection: str, tenant: str, filters: Mapping[str, Any], text: str | None) -> Record:
        match: Record = {"tenant": tenant}
        for name, value in filters.items():
            if isinstance(value, In):
                # one value as equality: FerretDB pushes only top-level equality down to PostgreSQL
                values = [_encode(v)[0] for v in value.values]
                match[self._path(collection, name)] = values[0] if len(values) == 1 else {"$in": values}
                continue
            # equality with None matches null and missing fields alike, as json_extract(...) IS NULL does
            match[self._path(collection, name)] = _encode(value)[0]
        if text:
            match["doc.search"] = {"$regex": re.escape(text.lower())}
        return match

    def find(self, query: Query) -> list[Doc]:
        return [doc for _, doc in self.find_positioned(query)]

    def find_positioned(self, query: Query) -> list[tuple[int, Doc]]:
        coll = self._coll(query.collection)
        match = self._match(query.collection, query.tenant, query.filters, query.text)
        order = self._path(query.collection, query.sort)
        clauses: list[Record] = [match]
        if query.min_position is not None:
            clauses.append({"position": {"$gt": query.min_position}})
        if query.after is not None:
            value, key = query.after
            op = "$lt" if query.descending else "$gt"
            if value is None:
                # null (or missing) sorts first; $gt/$lt never match null, so say what comes after it
                ties: Record = {order: None, "_id": {op: key}}
                clauses.append(ties if query.descending else {"$or": [{order: {"$ne": None}}, ties]})
            else:
                encoded = _encode(value)[0]
                later: list[Record] = [{order: {op: encoded}}, {order: encoded, "_id": {op: key}}]
                if query.descending:
                    later.append({order: None})  # nulls come last, and $lt never matches them
                clauses.append({"$or": later})
        direction = DESCENDING if query.descending else ASCENDING
        cursor = (
            coll.find(clauses[0] if len(clauses) == 1 else {"$and": clauses},
                      _FIELDS)
            .sort([(order, direction), ("_id", direction)])
            .limit(query.limit)
        )
        out: list[tuple[int, Doc]] = []
        for record in cursor:
            doc, position = self._stored(record)
            if doc is not None:
                out.append((position, doc))
        return out

    def count_by(self, collection: str, tenant: str, field: str, filters: Mapping[str, Any]) -> dict[str, int]:
        match = self._match(collection, tenant, filters, None)
        pipeline = [{"$match": match}, {"$group": {"_id": f"${self._path(collection, field)}", "n": {"$sum": 1}}}]
        return {
            ("" if row["_id"] is None else str(row["_id"])): int(row["n"])
            for row in self._coll(collection).aggregate(pipeline)
        }

    def reset(self, *, defer_indexes: bool = False) -> None:
        for name in self.projections:
            self.db.drop_collection(name)
        self.db.drop_collection(_TRACKING)
        if not defer_indexes:
            self.ensure_indexes()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._owns_client:
            self.client.close()
