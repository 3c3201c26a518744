"""Read-your-writes in distributed mode: when do the read models include position P, from relay heads and tracking."""

from __future__ import annotations

import threading
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.kafka_relay import extend_spans
from adapters.read_progress import KafkaReadProgress, Snapshot

A, B, C = ("t.case.v1", 0), ("t.case.v1", 1), ("t.reference.v1", 0)


def test_a_partition_counts_as_caught_up_when_its_tracking_passed_p_or_reached_its_head() -> None:
    # A has events up to 50, applied up to 30; B's last event (20) is applied; C's last (40) is applied
    snap = Snapshot(relay_position=60, heads={A: 50, B: 20, C: 40}, applied={A: 30, B: 20, C: 40})
    assert snap.behind() == {A: 30}
    assert snap.position == 30
    assert snap.includes(30)
    assert not snap.includes(31)  # an event of A between 31 and 50 may be unapplied


def test_the_relay_position_bounds_what_is_included() -> None:
    snap = Snapshot(relay_position=25, heads={A: 25}, applied={A: 25})
    assert snap.position == 25
    assert not snap.includes(26)  # not even published yet


def test_a_partition_with_no_tracking_document_has_applied_nothing() -> None:
    snap = Snapshot(relay_position=10, heads={A: 4, B: 9}, applied={A: 4})
    assert snap.behind() == {B: 0}
    assert snap.position == 0


def test_partitions_that_never_received_an_event_do_not_hold_anything_back() -> None:
    snap = Snapshot(relay_position=12, heads={}, applied={})
    assert snap.position == 12  # internal events only (command log, number sequences) so far


def test_wait_returns_once_a_later_snapshot_includes_the_position() -> None:
    state = {"applied": 3}

    def heads() -> tuple[int, dict[tuple[str, int], int]]:
        return 10, {A: 10}

    progress = KafkaReadProgress(heads, lambda: {A: state["applied"]}, fresh=0.0, poll=0.01)
    assert not progress.wait(10, timeout=0.05)
    timer = threading.Timer(0.1, lambda: state.update(applied=10))
    timer.start()
    started = time.monotonic()
    assert progress.wait(10, timeout=5)
    assert time.monotonic() - started < 4
    assert progress.position == 10


def test_snapshots_are_shared_while_fresh() -> None:
    calls = []

    def heads() -> tuple[int, dict[tuple[str, int], int]]:
        calls.append(1)
        return 5, {}

    progress = KafkaReadProgress(heads, dict, fresh=60.0)
    for _ in range(20):
        progress.snapshot()
    assert len(calls) == 1
    progress.snapshot(max_age=0)
    assert len(calls) == 2


def test_a_failing_read_is_reported_and_the_wait_times_out() -> None:
    def broken() -> tuple[int, dict[tuple[str, int], int]]:
        raise ConnectionError("postgres is down")

    progress = KafkaReadProgress(broken, dict, fresh=0.0, poll=0.01)
    assert not progress.wait(1, timeout=0.05)
    assert progress.last_error is not None and "postgres is down" in progress.last_error


def test_spans_let_a_partition_count_as_caught_up_below_its_next_batch() -> None:
    # contract 1.2.0: A's last batches published 31-35 and 41-50; A applied up to 35, so every event of A below 41
    # is applied, and position 40 is reached without waiting for A's next event (tracking alone says 35)
    spans = {A: ((20, 30), (31, 35), (41, 50))}
    snap = Snapshot(relay_position=60, heads={A: 50, B: 20}, applied={A: 35, B: 20}, spans=spans)
    assert Snapshot(60, {A: 50, B: 20}, {A: 35, B: 20}).position == 35  # the rule before 1.2.0
    assert snap.bound(A) == 40
    assert snap.position == 40
    assert not snap.includes(41)


def test_a_partition_applied_inside_a_span_counts_only_up_to_its_tracking() -> None:
    spans = {A: ((20, 30), (31, 35), (41, 50))}
    snap = Snapshot(relay_position=60, heads={A: 50}, applied={A: 33}, spans=spans)
    assert snap.position == 33  # 34 or 35 may be A's next event


def test_a_partition_behind_every_span_it_keeps_counts_only_up_to_its_tracking() -> None:
    # the oldest kept span has no known predecessor: events of A may lie between 10 and 20
    snap = Snapshot(relay_position=60, heads={A: 50}, applied={A: 10}, spans={A: ((20, 30), (41, 50))})
    assert snap.position == 10


def test_a_partition_that_never_applied_anything_waits_for_its_first_span() -> None:
    # the ring of a partition's first batch starts at (0, 0): nothing was published there before 7
    snap = Snapshot(relay_position=9, heads={A: 9, B: 3}, applied={B: 3}, spans={A: ((0, 0), (7, 9))})
    assert snap.position == 6


def test_wait_uses_the_spans_a_loader_returns() -> None:
    def heads() -> tuple[int, dict[tuple[str, int], int], dict[tuple[str, int], tuple[tuple[int, int], ...]]]:
        return 60, {A: 50}, {A: ((31, 35), (41, 50))}

    progress = KafkaReadProgress(heads, lambda: {A: 35}, fresh=0.0, poll=0.01)
    assert progress.wait(40, timeout=1)
    assert progress.position == 40


@settings(max_examples=300, deadline=None)
@given(
    partitions=st.lists(st.integers(0, 3), min_size=1, max_size=60),
    cuts=st.lists(st.integers(1, 60), max_size=20),
    progress=st.lists(st.integers(0, 60), min_size=4, max_size=4),
    ring=st.integers(1, 5),
)
def test_the_reached_position_never_includes_an_unapplied_event(
    partitions: list[int], cuts: list[int], progress: list[int], ring: int,
) -> None:
    """Positions 1..n go to partitions in relay batches (cut at `cuts`); each partition applied its first
    `progress[k]` events. Whatever the ring size, every event at or below the reached position is applied."""
    slot_of = {position: ("t", p) for position, p in enumerate(partitions, start=1)}
    n = len(partitions)
    bounds = sorted({c for c in cuts if c < n} | {n})
    heads: dict[tuple[str, int], int] = {}
    spans: dict[tuple[str, int], tuple[tuple[int, int], ...]] = {}
    after = 0
    for last in bounds:
        sent: dict[tuple[str, int], tuple[int, int]] = {}
        for position in range(after + 1, last + 1):
            slot = slot_of[position]
            sent[slot] = (sent.get(slot, (position, position))[0], position)
        for slot, span in sent.items():
            spans[slot] = extend_spans(spans.get(slot, ()), heads.get(slot, 0), span)[-ring:]
            heads[slot] = span[1]
        after = last
    in_slot: dict[tuple[str, int], list[int]] = {}
    for position, slot in sorted(slot_of.items()):
        in_slot.setdefault(slot, []).append(position)
    applied_events = {slot: events[:progress[slot[1]]] for slot, events in in_slot.items()}
    applied = {slot: events[-1] for slot, events in applied_events.items() if events}
    reached = Snapshot(n, heads, applied, spans).position
    assert reached >= Snapshot(n, heads, applied).position  # never less than the rule before 1.2.0
    done = {p for events in applied_events.values() for p in events}
    assert all(p in done for p in range(1, reached + 1)), (reached, sorted(done))
