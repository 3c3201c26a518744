"""FEEL temporal functions: conversions, `now()`/`today()` on a swappable clock, calendar helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Final

from processes.feel.temporal import YearsMonths
from processes.feel.temporal_text import parse_date, parse_date_time, parse_duration, parse_time
from processes.feel.values import int_arg, is_num

# The engine evaluates on its own clock (timers and tests move it); unset, it is the wall clock in UTC.
_CLOCK: ContextVar[Callable[[], datetime] | None] = ContextVar("feel_clock", default=None)


@contextmanager
def feel_clock(now: Callable[[], datetime]) -> Iterator[None]:
    """Within the block, `now()` and `today()` read this clock (it must return an aware date-time)."""
    token = _CLOCK.set(now)
    try:
        yield
    finally:
        _CLOCK.reset(token)


def _now() -> datetime:
    clock = _CLOCK.get()
    return clock() if clock is not None else datetime.now(UTC)


def _today() -> date:
    return _now().date()


def _date(*args: Any) -> Any:
    """date(from) of a string, date or date and time; date(year, month, day)."""
    if len(args) == 1:
        v = args[0]
        if isinstance(v, str):
            return parse_date(v)
        if isinstance(v, datetime):
            return v.date()
        return v if isinstance(v, date) else None
    if len(args) != 3:
        return None
    parts = [int_arg(a) for a in args]
    if None in parts:
        return None
    return date(*parts)  # type: ignore[arg-type]  # ValueError (not a calendar date) is null in Call


def _time(*args: Any) -> Any:
    """time(from) of a string, time or date and time; time(hour, minute, second[, offset])."""
    if len(args) == 1:
        v = args[0]
        if isinstance(v, str):
            return parse_time(v)
        if isinstance(v, datetime):
            return v.timetz()
        return v if isinstance(v, time) else None  # a date has no time of day: null, as the DMN TCK (1116)
    if len(args) not in (3, 4):
        return None
    hour, minute = int_arg(args[0]), int_arg(args[1])
    second = args[2]
    if hour is None or minute is None or not is_num(second):
        return None
    whole = int(second)
    micros = int(((second - whole) * 1_000_000).to_integral_value())
    tz = None
    if len(args) == 4 and args[3] is not None:
        if not isinstance(args[3], timedelta):
            return None
        tz = timezone(args[3])
    return time(hour, minute, whole, micros, tzinfo=tz)


def _date_and_time(*args: Any) -> Any:
    """date and time(from) of a string or date; date and time(date, time)."""
    if len(args) == 1:
        v = args[0]
        if isinstance(v, str):
            return parse_date_time(v)
        if isinstance(v, datetime):
            return v
        if isinstance(v, date):
            return datetime(v.year, v.month, v.day)
        return None
    day, clock = args
    if not isinstance(day, date) or not isinstance(clock, time):
        return None
    return datetime.combine(day if not isinstance(day, datetime) else day.date(), clock)


def _duration(text: Any) -> Any:
    return parse_duration(text) if isinstance(text, str) else None


def _years_and_months(start: Any, end: Any) -> Any:
    """Whole months between the calendar dates of start and end (date-times count by their date, as the TCK)."""
    if not isinstance(start, date) or not isinstance(end, date):
        return None
    months = (end.year - start.year) * 12 + end.month - start.month
    if months > 0 and end.day < start.day:
        months -= 1  # the last month is not complete
    elif months < 0 and end.day > start.day:
        months += 1
    return YearsMonths(months)


_DAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS: Final = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
                  "October", "November", "December")


def _day_of_week(v: Any) -> Any:
    return _DAYS[v.weekday()] if isinstance(v, date) else None


def _day_of_year(v: Any) -> Any:
    return Decimal(v.timetuple().tm_yday) if isinstance(v, date) else None


def _week_of_year(v: Any) -> Any:
    return Decimal(v.isocalendar()[1]) if isinstance(v, date) else None


def _month_of_year(v: Any) -> Any:
    return _MONTHS[v.month - 1] if isinstance(v, date) else None


def _last_day_of_month(v: Any) -> Any:
    if not isinstance(v, date):
        return None
    first_next = date(v.year + v.month // 12, v.month % 12 + 1, 1)
    return Decimal((first_next - timedelta(days=1)).day)


TEMPORAL_FUNCTIONS: Final[dict[str, tuple[Callable[..., Any], int, int | None]]] = {
    "date": (_date, 1, 3),
    "time": (_time, 1, 4),
    "date and time": (_date_and_time, 1, 2),
    "duration": (_duration, 1, 1),
    "years and months duration": (_years_and_months, 2, 2),
    "now": (_now, 0, 0),
    "today": (_today, 0, 0),
    "day of week": (_day_of_week, 1, 1),
    "day of year": (_day_of_year, 1, 1),
    "week of year": (_week_of_year, 1, 1),
    "month of year": (_month_of_year, 1, 1),
    "last day of month": (_last_day_of_month, 1, 1),
}
