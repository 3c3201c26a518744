"""The decoder hands the folds the event id's stored text only when it is exactly what str() gives back."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from adapters.codec import event_uuid
from projections import texts


def test_a_canonical_event_id_text_is_remembered_for_the_folds() -> None:
    text = str(uuid4())
    value = event_uuid(text)
    assert value == UUID(text)
    assert texts._uuids[id(value)] == (value, text)
    assert texts.uuid_text(value) == str(value)


def test_an_all_digit_id_is_canonical_too() -> None:
    value = event_uuid("12345678-1234-5678-1234-567812345678")
    assert texts._uuids[id(value)] == (value, "12345678-1234-5678-1234-567812345678") == (value, str(value))


def test_other_spellings_are_parsed_but_formatted_again() -> None:
    arabic_indic = "".join(chr(0x660 + int(c)) if c.isdigit() else c for c in "12345678-1234-5678-1234-56781234abcd")
    for text in (str(uuid4()).upper(), "{" + str(uuid4()) + "}", uuid4().hex, arabic_indic,
                 "1234567_-1234-5678-1234-567812345678"[:36]):
        try:
            expected = UUID(text)
        except ValueError:
            with pytest.raises(ValueError):
                event_uuid(text)
            continue
        value = event_uuid(text)
        assert value == expected
        # upper case, braces, no dashes, digits int() reads that str() writes otherwise: not str()'s form
        assert id(value) not in texts._uuids
        assert texts.uuid_text(value) == str(value)
