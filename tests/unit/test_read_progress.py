"""Read-your-writes in distributed mode: when do the read models include position P, from relay heads and tracking."""

from __future__ import annotations

import threading
import time

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
