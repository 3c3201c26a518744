"""FEEL temporal text: ISO-8601 / FEEL literals parsed into the temporal values, and printed back."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from processes.feel.temporal import YearsMonths

__all__ = ["parse_date", "parse_date_time", "parse_duration", "parse_literal", "parse_time", "temporal_json",
           "temporal_string", "zone_id"]


# ------------------------------------------------------------------------------------------------ parsing

_DATE: Final = re.compile(r"(-?(?:[1-9]\d{4,8}|\d{4}))-(\d\d)-(\d\d)")  # no leading zero past 4 digits
_TIME: Final = re.compile(
    r"(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d\d):(\d\d)(?::(\d\d))?|@([A-Za-z][A-Za-z0-9_+\-/]*))?"
)
_DURATION: Final = re.compile(
    r"(-)?P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d*)?)S)?)?"
)


def _zone(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def parse_date(text: str) -> date | None:
    """`YYYY-MM-DD`; null if malformed or not a calendar date."""
    m = _DATE.fullmatch(text)
    if m is None:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def parse_time(text: str) -> time | None:
    """`hh:mm:ss[.fffffffff][Z|±hh:mm|@zone]`; digits past microseconds are dropped."""
    m = _TIME.fullmatch(text)
    if m is None:
        return None
    hour, minute, second = int(m[1]), int(m[2]), int(m[3])
    micros = int((m[4] or "0").ljust(6, "0")[:6])
    tz: tzinfo | None = None
    if m[5]:
        tz = UTC
    elif m[6]:
        hours, minutes, secs = int(m[7]), int(m[8]), int(m[9] or 0)
        if hours > 18 or minutes > 59:
            return None
        delta = timedelta(hours=hours, minutes=minutes, seconds=secs)
        tz = timezone(-delta if m[6] == "-" else delta)
    elif m[10]:
        tz = _zone(m[10])
        if tz is None:
            return None
    try:
        return time(hour, minute, second, micros, tzinfo=tz)
    except ValueError:
        return None


def parse_date_time(text: str) -> datetime | None:
    """`date 'T' time` (a bare date is midnight, as FEEL's `date and time("2017-01-01")`)."""
    day_text, sep, time_text = text.partition("T")
    day = parse_date(day_text)
    if day is None:
        return None
    if not sep:
        return datetime(day.year, day.month, day.day)
    clock = parse_time(time_text)
    return None if clock is None else datetime.combine(day, clock)


def parse_duration(text: str) -> timedelta | YearsMonths | None:
    """ISO 8601 duration: years/months only give a YearsMonths, otherwise a days-time duration."""
    m = _DURATION.fullmatch(text)
    if m is None:
        return None
    sign = -1 if m[1] else 1
    years, months = int(m[2] or 0), int(m[3] or 0)
    if m[2] or m[3]:
        if m[4] or m[5] or m[6] or m[7]:
            return None  # mixing calendar and exact parts has no single FEEL type
        return YearsMonths(sign * (years * 12 + months))
    seconds = Decimal(m[7] or 0)
    try:
        td = timedelta(days=int(m[4] or 0), hours=int(m[5] or 0), minutes=int(m[6] or 0),
                       microseconds=int((seconds * 1_000_000).to_integral_value()))
        return -td if sign < 0 else td
    except OverflowError:
        return None


def parse_literal(text: str) -> Any:
    """An `@"..."` literal: a date, time, date and time or duration (None if none fits)."""
    if text.startswith(("P", "-P")):
        return parse_duration(text)
    if "T" in text:
        return parse_date_time(text)
    if ":" in text:
        return parse_time(text)
    return parse_date(text)


# ----------------------------------------------------------------------------------------------- printing

def zone_id(tz: tzinfo | None) -> str | None:
    """The IANA zone id of a zone (None for a fixed offset or no zone)."""
    return tz.key if isinstance(tz, ZoneInfo) else None


def _offset_text(offset: timedelta) -> str:
    if not offset:
        return "Z"
    sign = "-" if offset < timedelta(0) else "+"
    total = int(abs(offset).total_seconds())
    text = f"{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"
    return text + (f":{total % 60:02d}" if total % 60 else "")


def _clock_text(t: time) -> str:
    text = f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if t.microsecond:
        text += "." + f"{t.microsecond:06d}".rstrip("0")
    zone = zone_id(t.tzinfo)
    if zone is not None:
        return f"{text}@{zone}"
    offset = t.utcoffset()
    return text if offset is None else text + _offset_text(offset)


def _date_text(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def _duration_text(td: timedelta) -> str:
    sign = "-" if td < timedelta(0) else ""
    micros = abs(td) // timedelta(microseconds=1)
    days, rest = divmod(micros, 86_400_000_000)
    hours, rest = divmod(rest, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds = Decimal(rest) / 1_000_000
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if rest:
        clock += format(seconds.normalize(), "f") + "S"
    text = (f"{days}D" if days else "") + (f"T{clock}" if clock else "")
    return f"{sign}P{text or 'T0S'}"


def temporal_string(v: Any) -> str:
    """FEEL's `string()` of a temporal value (`2017-09-03T09:45:30@Europe/Paris`, `P1DT2H`, `P1Y2M`)."""
    if isinstance(v, datetime):
        return f"{_date_text(v)}T{_clock_text(v.timetz())}"
    if isinstance(v, date):
        return _date_text(v)
    if isinstance(v, time):
        return _clock_text(v)
    if isinstance(v, timedelta):
        return _duration_text(v)
    assert isinstance(v, YearsMonths)
    sign, months = ("-" if v.months < 0 else ""), abs(v.months)
    years, months = divmod(months, 12)
    text = (f"{years}Y" if years else "") + (f"{months}M" if months or not years else "")
    return f"{sign}P{text}"


def temporal_json(v: Any) -> str:
    """The ISO text a temporal value is stored as in process variables (date-times with their UTC offset)."""
    if isinstance(v, datetime):
        return v.isoformat()
    return temporal_string(v)
