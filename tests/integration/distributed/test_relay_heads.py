"""The relay stores, with its position, the last position it published to each topic partition."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters import cloudevents
from adapters.event_store import RecorderEventStore, sqlite_event_store
from adapters.kafka_relay import HeadStore, KafkaRelay, RelayConfig, SqlitePositions
from commands.bus import CommandBus
from tests.integration.kafka.support import consume, fill, published

pytestmark = pytest.mark.integration


async def _relay_all(store: RecorderEventStore, bootstrap: str, prefix: str) -> KafkaRelay:
    relay = KafkaRelay(store, RelayConfig(bootstrap=bootstrap, prefix=prefix, batch_size=50))
    await relay.start()
    try:
        await relay.catch_up()
    finally:
        await relay.close()
    return relay


async def test_heads_are_the_last_position_each_partition_received(
    pg_store: RecorderEventStore, bootstrap: str, prefix: str,
) -> None:
    fill(CommandBus(pg_store), cases=20, rounds=2)
    expected = published(pg_store)
    relay = await _relay_all(pg_store, bootstrap, prefix)
    assert isinstance(relay.positions, HeadStore)
    position, heads = relay.positions.load_heads("kafka")
    assert position == pg_store.max_position()

    records = await consume(bootstrap, sorted({r for r in relay.topic_of.values()}), until=len(expected))
    last: dict[tuple[str, int], int] = {}
    for record in records:
        slot = (record.topic, record.partition)
        last[slot] = max(last.get(slot, 0), cloudevents.loads(record.value)["position"])
    assert heads == last
    assert len({p for _t, p in heads}) > 1  # the cases spread over several partitions

    # contract 1.2.0: each partition's spans cover its records, and no record lies between two spans
    stored_position, stored_heads, spans = relay.positions.load_spans("kafka")
    assert (stored_position, stored_heads) == (position, heads)
    assert set(spans) == set(heads)
    in_slot: dict[tuple[str, int], list[int]] = {}
    for record in records:
        in_slot.setdefault((record.topic, record.partition), []).append(cloudevents.loads(record.value)["position"])
    for slot, ring in spans.items():
        assert ring[-1][1] == heads[slot]
        kept = [p for p in sorted(in_slot[slot]) if p > ring[0][1]]  # what the ring speaks about
        assert kept and all(any(first <= p <= last for first, last in ring[1:]) for p in kept), (slot, ring)
        assert all(first in in_slot[slot] and last in in_slot[slot] for first, last in ring[1:])

    # a stale write (lower heads, other spans) changes neither heads nor spans
    stale = {slot: ((0, 0), (1, 1)) for slot in heads}
    relay.positions.save_heads("kafka", position, {slot: 1 for slot in heads}, stale)
    assert relay.positions.load_spans("kafka") == (position, heads, spans)


async def test_heads_only_rise_and_a_second_run_adds_to_them(tmp_path: Path, bootstrap: str, prefix: str) -> None:
    store = sqlite_event_store(tmp_path / "events.sqlite", synchronous="NORMAL")
    try:
        bus = CommandBus(store)
        fill(bus, cases=6, rounds=1)
        await _relay_all(store, bootstrap, prefix)
        positions = SqlitePositions(str(tmp_path / "events.sqlite"))
        first_position, first = positions.load_heads("kafka")
        positions.save_heads("kafka", first_position, {slot: 1 for slot in first})  # a stale write lowers nothing
        assert positions.load_heads("kafka") == (first_position, first)

        fill(bus, cases=3, rounds=1, with_reference=False, tag="more ")
        await _relay_all(store, bootstrap, prefix)
        second_position, second = positions.load_heads("kafka")
        assert second_position == store.max_position() > first_position
        assert set(first) <= set(second)
        assert all(second[slot] >= head for slot, head in first.items())
        assert max(second.values()) == published(store)[-1].position
    finally:
        store.close()
