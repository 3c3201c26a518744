"""Text forms of ids and times for the folds, memoised: each event is folded into several read models, which
all want `str(event_id)`, `str(aggregate_id)` and `occurred_at.isoformat()`; computing them once is a fair
share of a rebuild's time. The memo is by identity, so a value is never confused with another."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

_MEMO_SIZE = 50_000
# id(value) -> (value, text): holding the value keeps its id from being reused while it is remembered
_uuids: dict[int, tuple[UUID, str]] = {}
_last_time: tuple[datetime | None, str] = (None, "")


def uuid_text(value: UUID) -> str:
    """str(value), remembered for the next folds of the same event or aggregate."""
    found = _uuids.get(id(value))
    if found is not None and found[0] is value:
        return found[1]
    text = str(value)
    if len(_uuids) >= _MEMO_SIZE:
        _uuids.clear()
    _uuids[id(value)] = (value, text)
    return text


def remember_uuid_text(value: UUID, text: str) -> None:
    """Let `uuid_text(value)` answer `text` without formatting it: for a decoder that parsed value from text,
    which must be exactly str(value) (the caller checks it is in canonical form)."""
    if len(_uuids) >= _MEMO_SIZE:
        _uuids.clear()
    _uuids[id(value)] = (value, text)


def iso_text(value: datetime) -> str:
    """value.isoformat(), remembered for the next fold of the same event (the read models fold it in turn)."""
    global _last_time
    last = _last_time
    if last[0] is value:
        return last[1]
    text = value.isoformat()
    _last_time = (value, text)
    return text
