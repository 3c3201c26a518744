"""FEEL temporal values: the kinds, comparison, arithmetic and properties (text forms: temporal_text).

Python types carry them: `datetime.date` (date), `datetime.time` (time, naive or with a fixed offset or a zone
id), `datetime.datetime` (date and time, likewise), `datetime.timedelta` (days and time duration) and
`YearsMonths` (years and months duration). Ordering and subtraction use the instant (UTC); equality also asks
for the same kind of zone (see temporal_equal). Years outside 1..9999 are null (Python's range).
"""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

__all__ = ["YearsMonths", "is_temporal", "temporal_arith", "temporal_compare", "temporal_equal", "temporal_property"]


@dataclass(frozen=True, order=True)
class YearsMonths:
    """A years and months duration, counted in months (may be negative)."""

    months: int

    @property
    def years(self) -> int:
        """Whole years, with the sign of the duration."""
        return int(self.months / 12)


TEMPORAL_TYPES: Final = (date, time, timedelta, YearsMonths)  # datetime is a date subclass


def is_temporal(v: Any) -> bool:
    """True for the five FEEL temporal kinds."""
    return isinstance(v, TEMPORAL_TYPES)


# ----------------------------------------------------------------------------------------- comparison

_EPOCH: Final = date(1970, 1, 1)


def _instant(v: datetime | time) -> datetime:
    """A date-time or time as a comparable instant; times sit on a fixed day so they wrap at midnight."""
    dt = v if isinstance(v, datetime) else datetime.combine(_EPOCH, v)
    return dt.astimezone(UTC) if dt.tzinfo is not None else dt


def _local(v: datetime | time) -> bool:
    return v.tzinfo is None


def _kind(v: Any) -> type | None:
    for t in (datetime, date, time, timedelta, YearsMonths):
        if isinstance(v, t):
            return t
    return None


def temporal_compare(a: Any, b: Any) -> int | None:
    """-1, 0 or 1; None when the two are not comparable (different kinds, or local against zoned)."""
    ka, kb = _kind(a), _kind(b)
    if ka is None or ka is not kb:
        return None
    if ka in (datetime, time):
        if _local(a) != _local(b):
            return None
        a, b = _instant(a), _instant(b)
    return -1 if a < b else (1 if a > b else 0)


def _zone_kind(v: datetime | time) -> str | None:
    """What a value's zone is: None (local), "offset" or the zone id."""
    if v.tzinfo is None:
        return None
    return v.tzinfo.key if isinstance(v.tzinfo, ZoneInfo) else "offset"


def temporal_equal(a: Any, b: Any) -> bool | None:
    """FEEL `=` of two temporal values. Date-times (and times) are equal when they are the same instant and their
    zones are of the same kind: local against zoned, an offset against a zone id (`+00:00` against `@Etc/UTC`)
    or two zone ids are unequal, as the DMN TCK (0068) says; two offsets compare by instant."""
    ka = _kind(a)
    if ka is None or ka is not _kind(b):
        return None
    if ka in (datetime, time) and _zone_kind(a) != _zone_kind(b):
        return False
    c = temporal_compare(a, b)
    return None if c is None else c == 0


# ----------------------------------------------------------------------------------------- arithmetic

def _add_months(d: date, months: int) -> date:
    """Calendar addition; the day is clamped to the month's end (Jan 31 + 1 month = Feb 28/29)."""
    year, month0 = divmod(d.year * 12 + (d.month - 1) + months, 12)
    month = month0 + 1
    return d.replace(year=year, month=month, day=min(d.day, monthrange(year, month)[1]))


def _plus(v: Any, d: timedelta | YearsMonths) -> Any:
    """A date, date-time or time moved by a duration."""
    if isinstance(d, YearsMonths):
        if isinstance(v, date):  # date and datetime alike: wall-clock calendar arithmetic
            return _add_months(v, d.months)
        return None
    if isinstance(v, datetime):
        if v.tzinfo is None:
            return v + d
        return (v.astimezone(UTC) + d).astimezone(v.tzinfo)  # exact: across DST by the instant
    if isinstance(v, date):
        return (datetime(v.year, v.month, v.day) + d).date()
    if isinstance(v, time):
        moved = datetime.combine(_EPOCH, v.replace(tzinfo=None)) + d
        return moved.time().replace(tzinfo=v.tzinfo)
    return None


def _neg(d: timedelta | YearsMonths) -> timedelta | YearsMonths:
    return YearsMonths(-d.months) if isinstance(d, YearsMonths) else -d


def _difference(a: Any, b: Any) -> timedelta | None:
    """a - b for two dates, two date-times or two times; a date against a date-time is midnight UTC, so it only
    subtracts from or to a zoned date-time (null when one side is local and the other zoned)."""
    if (isinstance(a, time) and isinstance(b, time)) or (isinstance(a, datetime) and isinstance(b, datetime)):
        if _local(a) != _local(b):
            return None
        return _instant(a) - _instant(b)
    if isinstance(a, date) and isinstance(b, date):
        if not isinstance(a, datetime) and not isinstance(b, datetime):
            return a - b
        a, b = _utc_midnight(a), _utc_midnight(b)
        if _local(a) or _local(b):
            return None
        return _instant(a) - _instant(b)
    return None


def _utc_midnight(v: date) -> datetime:
    return v if isinstance(v, datetime) else datetime(v.year, v.month, v.day, tzinfo=UTC)


def _scale(d: Any, n: Decimal, divide: bool) -> Any:
    if isinstance(d, YearsMonths):
        months = Decimal(d.months) / n if divide else Decimal(d.months) * n
        return YearsMonths(int(months.to_integral_value(rounding=ROUND_DOWN)))  # whole months, as the TCK
    micros = Decimal(d // timedelta(microseconds=1))
    scaled = micros / n if divide else micros * n
    return timedelta(microseconds=int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN)))


def temporal_arith(op: str, a: Any, b: Any) -> Any:
    """`+ - * /` where at least one side is temporal; None when FEEL defines no result."""
    dur = (timedelta, YearsMonths)
    if op == "+":
        if isinstance(a, dur) and isinstance(b, dur):
            return _same_duration(a, b, 1)
        if isinstance(b, dur) and isinstance(a, (date, time)):
            return _plus(a, b)
        if isinstance(a, dur) and isinstance(b, (date, time)):
            return _plus(b, a)
        return None
    if op == "-":
        if isinstance(a, dur) and isinstance(b, dur):
            return _same_duration(a, b, -1)
        if isinstance(b, dur) and isinstance(a, (date, time)):
            return _plus(a, _neg(b))
        return _difference(a, b)
    if op == "*":
        if isinstance(a, dur) and isinstance(b, Decimal):
            return _scale(a, b, False)
        if isinstance(b, dur) and isinstance(a, Decimal):
            return _scale(b, a, False)
        return None
    if op == "/":
        if isinstance(a, dur) and isinstance(b, Decimal):
            return None if b == 0 else _scale(a, b, True)
        if isinstance(a, timedelta) and isinstance(b, timedelta):
            return None if not b else Decimal(a // timedelta(microseconds=1)) / Decimal(b // timedelta(microseconds=1))
        if isinstance(a, YearsMonths) and isinstance(b, YearsMonths):
            return None if not b.months else Decimal(a.months) / Decimal(b.months)
    return None


def _same_duration(a: Any, b: Any, sign: int) -> Any:
    if isinstance(a, YearsMonths) and isinstance(b, YearsMonths):
        return YearsMonths(a.months + sign * b.months)
    if isinstance(a, timedelta) and isinstance(b, timedelta):
        return a + b if sign > 0 else a - b
    return None


# ----------------------------------------------------------------------------------------- properties

def _offset_duration(v: datetime | time) -> timedelta | None:
    if v.tzinfo is None:
        return None
    if isinstance(v, time) and isinstance(v.tzinfo, ZoneInfo):
        return None  # a zone's offset depends on the date, which a time lacks
    return v.utcoffset()


def temporal_property(v: Any, name: str) -> Any:
    """`.year`, `.weekday`, `.hours`, `.time offset`, ... (None for a property the kind does not have)."""
    if isinstance(v, date):
        if name in ("year", "month", "day"):
            return Decimal(getattr(v, name))
        if name == "weekday":
            return Decimal(v.isoweekday())
    if isinstance(v, datetime | time):
        if name in ("hour", "minute", "second"):
            return Decimal(getattr(v, name))
        if name == "time offset":
            return _offset_duration(v)
        if name == "timezone":
            return v.tzinfo.key if isinstance(v.tzinfo, ZoneInfo) else None
    if isinstance(v, timedelta):
        sign = -1 if v < timedelta(0) else 1
        seconds = int(abs(v).total_seconds())
        parts = {"days": seconds // 86400, "hours": seconds % 86400 // 3600, "minutes": seconds % 3600 // 60,
                 "seconds": seconds % 60}
        if name in parts:
            return Decimal(sign * parts[name])
    if isinstance(v, YearsMonths):
        if name == "years":
            return Decimal(v.years)
        if name == "months":
            return Decimal(v.months - v.years * 12)
    return None
