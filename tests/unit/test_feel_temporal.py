"""FEEL dates, times and durations: expected values are worked out by hand from the calendar and the FEEL rules."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processes.bpmn import check_bpmn
from processes.feel import YearsMonths, compile_feel, evaluate, feel_clock

NOW = datetime(2026, 12, 7, 18, 0, 0, tzinfo=UTC)  # a Monday

CASES: list[tuple[str, Any]] = [
    # construction and printing (Expression.evaluate gives the ISO text stored in process variables)
    ('date("2026-01-31")', "2026-01-31"),
    ("date(2026, 2, 28)", "2026-02-28"),
    ('date(date and time("2026-05-01T23:30:00+02:00"))', "2026-05-01"),
    ('time("09:15:00")', "09:15:00"),
    ('time("09:15:00.5+02:00")', "09:15:00.5+02:00"),
    ('time(9, 15, 0, duration("PT1H"))', "09:15:00+01:00"),
    ('date and time("2026-01-01T10:00:00")', "2026-01-01T10:00:00"),
    ('date and time("2026-01-01T10:00:00Z")', "2026-01-01T10:00:00+00:00"),
    ('date and time("2026-07-01T10:00:00@Europe/Oslo")', "2026-07-01T10:00:00+02:00"),
    ('string(date and time("2026-07-01T10:00:00@Europe/Oslo"))', "2026-07-01T10:00:00@Europe/Oslo"),
    ('date and time(date("2026-01-01"), time("08:00:00Z"))', "2026-01-01T08:00:00+00:00"),
    ('duration("P2D")', "P2D"),
    ('duration("PT36H")', "P1DT12H"),
    ('duration("-PT90M")', "-PT1H30M"),
    ('duration("P14M")', "P1Y2M"),
    ('@"2026-01-01"', "2026-01-01"),
    ('@"P1DT2H"', "P1DT2H"),
    ('@"10:30:00"', "10:30:00"),
    # arithmetic
    ('date("2026-01-31") + duration("P1M")', "2026-02-28"),  # clamped to the month's last day
    ('date("2024-01-31") + duration("P1M")', "2024-02-29"),
    ('date("2026-03-01") - date("2026-02-01")', "P28D"),
    ('date("2026-03-01") - duration("P1D")', "2026-02-28"),
    ('date("2026-01-01") + duration("PT36H")', "2026-01-02"),
    ('date and time("2026-03-29T01:30:00@Europe/Paris") + duration("PT1H")', "2026-03-29T03:30:00+02:00"),
    ('date and time("2026-01-01T10:00:00+01:00") - date and time("2026-01-01T08:00:00Z")', "PT1H"),
    ('date and time("2026-01-01T10:00:00") - date and time("2025-12-31T22:00:00")', "PT12H"),
    ('time("23:00:00") + duration("PT2H")', "01:00:00"),
    ('time("10:00:00") - time("08:30:00")', "PT1H30M"),
    ('duration("P1D") * 2', "P2D"),
    ('3 * duration("PT20M")', "PT1H"),
    ('duration("P1Y") / 12', "P1M"),
    ('duration("PT1H") / duration("PT15M")', 4),
    ('duration("P1Y") / duration("P6M")', 2),
    ('duration("P1Y11M") * -2.5', "-P4Y9M"),  # whole months, cut toward zero (-57.5 months)
    ('date("2026-01-02") - date and time("2026-01-01T12:00:00Z")', "PT12H"),  # a date is midnight UTC here
    ('duration("P1Y") + duration("P2M")', "P1Y2M"),
    ('duration("P1D") - duration("PT1H")', "PT23H"),
    ('-duration("P1D")', "-P1D"),
    ('abs(duration("-PT5M"))', "PT5M"),
    ('years and months duration(date("2025-03-15"), date("2026-03-14"))', "P11M"),
    # comparison: instants compare across zones
    ('date("2026-01-01") < date("2026-01-02")', True),
    ('date and time("2026-01-01T10:00:00+01:00") = date and time("2026-01-01T09:00:00Z")', True),
    ('duration("PT60M") = duration("PT1H")', True),
    ('duration("P1Y") > duration("P11M")', True),
    ('time("10:00:00") in [time("09:00:00")..time("17:00:00")]', True),
    ('date("2026-06-01") between date("2026-01-01") and date("2026-12-31")', True),
    ('max([date("2026-01-01"), date("2026-03-01"), date("2026-02-01")])', "2026-03-01"),
    # properties
    ('date("2026-12-07").weekday', 1),
    ('date("2026-12-07").year + date("2026-12-07").month + date("2026-12-07").day', 2026 + 12 + 7),
    ('date and time("2026-12-07T18:05:09Z").hour * 10000 + date and time("2026-12-07T18:05:09Z").minute', 180005),
    ('date and time("2026-12-07T18:05:09+05:30").time offset', "PT5H30M"),
    ('date and time("2026-12-07T18:05:09@Europe/Oslo").timezone', "Europe/Oslo"),
    ('time("10:30:45").second', 45),
    ('duration("P1DT2H3M4S").hours', 2),
    ('duration("-P1DT2H").days', -1),
    ('duration("P2Y3M").months', 3),
    # calendar functions
    ('day of week(date("2026-12-07"))', "Monday"),
    ('day of year(date("2026-02-01"))', 32),
    ('week of year(date("2026-01-01"))', 1),
    ('month of year(date("2026-12-07"))', "December"),
    ('last day of month(date("2024-02-10"))', 29),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:60] for c in CASES])
def test_temporal_expressions(text: str, expected: Any) -> None:
    assert compile_feel(text).evaluate() == expected


NULLS = [
    'date("2026-02-30")',
    'date("26-01-01")',
    "date(2026, 13, 1)",
    'time("24:00:00")',
    'time("10:00:00@Not/AZone")',
    'date and time("2026-01-01T10:00:00+19:00")',
    'duration("P1Y2D")',  # years-months and days-time parts have no single FEEL type
    'duration("2 days")',
    'date("2026-01-01") + 1',
    'date("2026-01-01") * 2',
    'duration("P1Y") + duration("P1D")',
    'date("2026-01-01") = "2026-01-01"',
    'date and time("2026-01-01T10:00:00") < date and time("2026-01-01T09:00:00Z")',  # local vs zoned
    'date("2026-01-02") - date and time("2026-01-01T12:00:00")',  # midnight UTC against a local date-time
    'date("9999-12-31") + duration("P1D")',  # past Python's last year
    'duration("PT1H") / 0',
    'date("2026-01-01").hour',
    'duration("P1D").years',
    "date(null)",
    "day of week(null)",
]


@pytest.mark.parametrize("text", NULLS)
def test_wrong_temporal_input_is_null_not_an_error(text: str) -> None:
    assert compile_feel(text).evaluate() is None


def test_now_plus_two_days_is_an_iso_due_date_on_the_feel_clock() -> None:
    with feel_clock(lambda: NOW):
        due = evaluate('=now() + duration("P2D")')
        today = evaluate("today()")
    assert due == "2026-12-09T18:00:00+00:00"
    assert datetime.fromisoformat(due) == NOW + timedelta(days=2)  # what the user-task code parses
    assert today == "2026-12-07"


def test_now_without_a_clock_is_the_wall_clock_in_utc() -> None:
    before = datetime.now(UTC)
    value = compile_feel("now()").value()
    assert isinstance(value, datetime)
    assert value.tzinfo is not None
    assert before <= value <= datetime.now(UTC)


def test_python_temporal_variables_are_feel_values() -> None:
    variables = {"opened": date(2026, 1, 30), "at": datetime(2026, 1, 1, 9, tzinfo=UTC), "grace": timedelta(days=3)}
    assert evaluate("opened + grace", variables) == "2026-02-02"
    assert evaluate("at + grace > opened", variables) is None  # a date-time and a date are not comparable
    assert evaluate("at.hour", variables) == 9


def test_every_temporal_result_serialises_to_json() -> None:
    result = evaluate('{d: date("2026-01-01"), t: time("10:00:00"), dt: now(), p: duration("P1D"), ym: '
                      'duration("P1Y")}')
    assert json.loads(json.dumps(result))["ym"] == "P1Y"
    assert all(isinstance(v, str) for v in result.values())


def test_value_gives_the_python_temporal_types() -> None:
    value = compile_feel('[date("2026-01-01"), duration("P1D"), duration("P1M"), '
                         'date and time("2026-01-01T00:00:00+01:00")]').value()
    assert value == [date(2026, 1, 1), timedelta(days=1), YearsMonths(1),
                     datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=1)))]


dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2400, 12, 31))
day_counts = st.integers(min_value=-20_000, max_value=20_000)


@given(dates, day_counts)
def test_date_plus_days_minus_days_is_the_date(d: date, days: int) -> None:
    variables = {"d": d, "n": days}
    assert evaluate('d + duration("P1D") * n - duration("P1D") * n', variables) == d.isoformat()
    assert evaluate('(d + duration("P1D") * n) - d', variables) == evaluate('duration("P1D") * n', variables)


@given(dates, st.integers(min_value=-600, max_value=600))
def test_adding_months_keeps_the_day_when_every_month_has_it(d: date, months: int) -> None:
    d = d.replace(day=min(d.day, 28))
    variables = {"d": d, "m": months}
    assert evaluate('d + duration("P1M") * m - duration("P1M") * m', variables) == d.isoformat()


@given(st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)),
       st.timedeltas(min_value=timedelta(days=-3000), max_value=timedelta(days=3000)))
def test_zoned_date_time_plus_duration_minus_itself_is_the_duration(at: datetime, delta: timedelta) -> None:
    variables = {"at": at, "d": delta}
    assert compile_feel("(at + d) - at = d").value(variables) is True


@given(st.timedeltas(min_value=timedelta(days=-10**5), max_value=timedelta(days=10**5)))
def test_duration_string_round_trips(delta: timedelta) -> None:
    assert compile_feel("duration(string(d)) = d").value({"d": delta}) is True


def test_bpmn_with_dates_in_feel_deploys_and_its_expressions_evaluate() -> None:
    sample = Path(__file__).resolve().parent / "bpmn" / "claim_lifecycle_sample.bpmn"
    xml = (sample.read_text(encoding="utf-8")
           .replace(">PT48H<", '>=duration("PT2H")<')
           .replace("=amount &gt; 1000", "=date(opened) + duration(&quot;P30D&quot;) &lt; today()")
           .replace('<zeebe:assignmentDefinition assignee="=assignee" candidateGroups="claims" />',
                    '<zeebe:assignmentDefinition assignee="=assignee" candidateGroups="claims" />'
                    '<zeebe:taskSchedule dueDate="=now() + duration(&quot;P2D&quot;)" />'))
    deployed = check_bpmn(xml.encode(), {"case.move-stage", "case.assign", "case.comment"})
    with feel_clock(lambda: NOW):
        assert deployed.expressions['=date(opened) + duration("P30D") < today()'].test({"opened": "2026-10-01"})
        assert deployed.expressions['=now() + duration("P2D")'].evaluate() == "2026-12-09T18:00:00+00:00"
    assert deployed.expressions['=duration("PT2H")'].evaluate() == "PT2H"


@pytest.mark.parametrize(("text", "expected"), [
    ('date and time("2026-01-01T10:00:00+01:00") = date and time("2026-01-01T09:00:00Z")', True),  # two offsets
    ('date and time("2026-01-01T09:00:00Z") = date and time("2026-01-01T09:00:00@Etc/UTC")', False),  # offset/zone
    ('date and time("2026-01-01T09:00:00") = date and time("2026-01-01T09:00:00Z")', False),  # local/zoned
    ('date and time("2026-01-01T09:00:00@Europe/Oslo") = date and time("2026-01-01T09:00:00@Europe/Oslo")', True),
    ('date and time("2026-01-01T09:00:00") != date and time("2026-01-01T09:00:00Z")', True),
])
def test_equality_of_date_times_asks_for_the_same_kind_of_zone(text: str, expected: bool) -> None:
    assert evaluate(text) is expected


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=5, minutes=30)),
                                               timezone(-timedelta(hours=11))])))
def test_date_and_time_string_round_trips(at: datetime) -> None:
    variables = {"at": at}
    assert compile_feel("date and time(string(at)) = at").value(variables) is True
    assert compile_feel("date(string(date(at))) = date(at)").value(variables) is True
    assert compile_feel("time(string(time(at))) = time(at)").value(variables) is True
