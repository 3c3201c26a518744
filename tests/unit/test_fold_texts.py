"""The memoised text forms used by the folds equal str() / isoformat() of the very value asked about."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from projections import texts


def test_uuid_text_is_str_of_that_value_even_past_the_memo_size() -> None:
    values = [uuid.uuid4() for _ in range(texts._MEMO_SIZE + 10)]
    assert [texts.uuid_text(v) for v in values] == [str(v) for v in values]
    assert [texts.uuid_text(v) for v in values[-5:]] == [str(v) for v in values[-5:]]
    twin = uuid.UUID(str(values[-1]))  # equal value, another object: same text
    assert texts.uuid_text(twin) == str(values[-1])


def test_iso_text_follows_the_value_asked_about() -> None:
    first = datetime(2026, 1, 1, 12, tzinfo=UTC)
    second = first + timedelta(microseconds=1)
    assert [texts.iso_text(t) for t in (first, first, second, first)] == [
        first.isoformat(), first.isoformat(), second.isoformat(), first.isoformat(),
    ]
