"""The backpressure decision: commands are refused only above an operator's limit, with a sensible Retry-After."""

from __future__ import annotations

from adapters.lag import LagReport, PartitionLag
from api.backpressure import MAX_RETRY_AFTER, Limits, decide

MODELS = {"cases": ("t.case.v1",), "definitions": ("t.definition.v1",)}


def report(*partitions: tuple[int, float], relay: tuple[int, float] = (0, 0.0)) -> LagReport:
    rows = tuple(PartitionLag("t.case.v1", i, events, seconds) for i, (events, seconds) in enumerate(partitions))
    return LagReport("distributed", MODELS, rows, relay_events=relay[0], relay_seconds=relay[1])


def test_no_limits_admit_any_lag() -> None:
    assert decide(report((10**9, 10**6)), Limits()).admit


def test_no_measurement_yet_admits() -> None:
    assert decide(None, Limits(events=1, seconds=0.1)).admit


def test_lag_at_the_limit_is_admitted_and_one_more_is_refused() -> None:
    limits = Limits(events=100)
    assert decide(report((60, 0.5), (40, 0.2)), limits).admit
    refused = decide(report((60, 0.5), (41, 0.2)), limits)
    assert not refused.admit
    assert "101 events behind (limit 100)" in refused.detail
    assert refused.retry_after == 1  # one measurement interval


def test_relay_lag_counts_towards_the_events_limit() -> None:
    assert not decide(report((50, 0.1), relay=(51, 0.1)), Limits(events=100)).admit


def test_seconds_limit_uses_the_oldest_unapplied_event_and_sets_retry_after_to_the_excess() -> None:
    limits = Limits(seconds=5)
    assert decide(report((3, 4.9), relay=(1, 2.0)), limits).admit
    refused = decide(report((3, 1.0), relay=(1, 12.2)), limits)
    assert not refused.admit
    assert refused.retry_after == 8  # ceil(12.2 - 5)
    assert "12.2s behind (limit 5s)" in refused.detail


def test_retry_after_is_at_least_the_interval_and_at_most_the_cap() -> None:
    assert decide(report((1, 3600.0)), Limits(seconds=1)).retry_after == MAX_RETRY_AFTER
    assert decide(report((500, 0.0)), Limits(events=10), interval=2.5).retry_after == 3


def test_either_limit_refuses() -> None:
    limits = Limits(events=1000, seconds=2)
    assert not decide(report((10, 3.0)), limits).admit
    assert not decide(report((2000, 0.5)), limits).admit
    both = decide(report((2000, 3.0)), limits)
    assert "events behind" in both.detail and "s behind" in both.detail


def test_prometheus_text_names_each_read_model_and_partition() -> None:
    text = report((7, 1.25), (0, 0.0), relay=(3, 0.5)).prometheus()
    lines = text.splitlines()
    assert 'casestream_projection_lag_events{read_model="cases",topic="t.case.v1",partition="0"} 7' in lines
    assert 'casestream_projection_lag_seconds{read_model="cases",topic="t.case.v1",partition="0"} 1.250' in lines
    assert 'casestream_projection_lag_events{read_model="cases",topic="t.case.v1",partition="1"} 0' in lines
    assert "casestream_relay_lag_events 3" in lines
    assert not any('read_model="definitions"' in line for line in lines)  # no partitions of its topic measured
    assert text.endswith("\n")


def test_a_process_manager_behind_the_limit_refuses_commands_and_says_so() -> None:
    from dataclasses import replace

    from adapters.lag import ProcessLag

    limits = Limits(events=100, seconds=5)
    assert decide(replace(report((3, 0.1)), processes=ProcessLag(900, 100, 4.0)), limits).admit
    refused = decide(replace(report((3, 0.1)), processes=ProcessLag(900, 101, 7.5)), limits)
    assert (refused.admit, refused.code, refused.retry_after) == (False, "processes-behind", 3)
    assert refused.detail.startswith("the process manager is 101 events behind")
    lagging_models = decide(replace(report((500, 0.1)), processes=ProcessLag(900, 500, 0.1)), limits)
    assert lagging_models.code == "read-models-behind"
