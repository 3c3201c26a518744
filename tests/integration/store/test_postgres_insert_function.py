"""The PostgreSQL insert function: each transaction's events get one unbroken run of positions, even when several
processes' stores insert at once (the table lock keeps commit order equal to notification order)."""

from __future__ import annotations

import threading
import uuid

from eventsourcing.persistence import IntegrityError, StoredEvent

from infra.server import Server
from tests.postgres_store import postgres_store, scratch_database


def _events(n: int) -> list[StoredEvent]:
    originator = uuid.uuid4()
    return [StoredEvent(originator, v, "Probe", b'{"n": %d}' % v) for v in range(1, n + 1)]


def test_concurrent_inserts_from_several_stores_each_get_contiguous_positions(postgres_server: Server) -> None:
    with scratch_database(postgres_server, "insert_fn") as db:
        stores = [postgres_store(postgres_server, db) for _ in range(3)]  # three pools, as three processes
        try:
            calls: list[tuple[list[StoredEvent], list[int]]] = []
            lock = threading.Lock()

            def insert_many(index: int) -> None:
                for round_ in range(40):
                    events = _events(1 + (index + round_) % 5)
                    ids = list(stores[index % 3].recorder.insert_events(events) or [])
                    with lock:
                        calls.append((events, ids))

            threads = [threading.Thread(target=insert_many, args=(i,)) for i in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert len(calls) == 240
            everything = sorted(i for _events_, ids in calls for i in ids)
            assert len(everything) == len(set(everything)) == sum(len(e) for e, _ in calls)
            for events, ids in calls:
                assert ids == list(range(ids[0], ids[0] + len(events)))  # one unbroken run per transaction
            stored = stores[0].recorder.select_notifications(1, 10_000)
            by_id = {n.id: (n.originator_id, n.originator_version) for n in stored}
            for events, ids in calls:  # each id holds the event it was returned for, in order
                assert [by_id[i] for i in ids] == [(e.originator_id, e.originator_version) for e in events]
        finally:
            for store in stores:
                store.close()


def test_a_clash_stores_nothing_of_the_transaction(postgres_server: Server) -> None:
    with scratch_database(postgres_server, "insert_fn") as db:
        store = postgres_store(postgres_server, db)
        try:
            first = _events(2)
            store.recorder.insert_events(first)
            clash = [*_events(2), StoredEvent(first[0].originator_id, 2, "Probe", b"{}")]
            try:
                store.recorder.insert_events(clash)
            except IntegrityError:
                pass
            else:
                raise AssertionError("a clashing (aggregate, version) was stored")
            assert store.max_position() == 2
        finally:
            store.close()
