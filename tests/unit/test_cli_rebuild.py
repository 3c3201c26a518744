"""`casestream rebuild --processes`: how many processes fold the log when none is asked for."""

from __future__ import annotations

from casestream.cli import TWO_PROCESS_REBUILD_FROM, rebuild_processes


def test_a_large_log_on_two_cores_gets_a_second_process() -> None:
    assert rebuild_processes(None, TWO_PROCESS_REBUILD_FROM, 2) == 2
    assert rebuild_processes(None, 1_100_000, 8) == 2


def test_a_small_log_or_one_core_stays_in_one_process() -> None:
    assert rebuild_processes(None, TWO_PROCESS_REBUILD_FROM - 1, 2) == 1
    assert rebuild_processes(None, 1_100_000, 1) == 1
    assert rebuild_processes(None, 1_100_000, None) == 1  # cores unknown


def test_the_number_asked_for_wins() -> None:
    assert rebuild_processes(1, 1_100_000, 8) == 1
    assert rebuild_processes(2, 10, 1) == 2
