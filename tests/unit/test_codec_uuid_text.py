"""The decoder hands the folds the event id's stored text only when it is exactly what str() gives back."""

from __future__ import annotations

from uuid import UUID, uuid4

from adapters.codec import event_uuid
from projections import texts


def test_a_canonical_event_id_text_is_remembered_for_the_folds() -> None:
    text = str(uuid4())
    value = event_uuid(text)
    assert value == UUID(text)
    assert texts._uuids[id(value)] == (value, text)
    assert texts.uuid_text(value) == str(value)


def test_other_spellings_are_parsed_but_formatted_again() -> None:
    for text in (str(uuid4()).upper(), "{" + str(uuid4()) + "}", uuid4().hex, "12345678-1234-5678-1234-567812345678"):
        value = event_uuid(text)
        assert value == UUID(text)
        assert id(value) not in texts._uuids  # all digits, upper case, braces, no dashes: not str()'s form
        assert texts.uuid_text(value) == str(value)
