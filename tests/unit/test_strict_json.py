"""Request bodies: numbers that cannot be stored faithfully and absurd nesting are refused (issue #12)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.strict_json import MAX_DEPTH, StrictJsonError, loads


@pytest.mark.parametrize("body", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}', b'{"a": 1e309}',
                                  b'{"a": -1e309}'])
def test_non_finite_numbers_are_refused(body: bytes) -> None:
    with pytest.raises(json.JSONDecodeError):
        loads(body)


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 10**30, -(10**40)])
def test_integers_beyond_64_bits_are_refused_not_rounded(number: int) -> None:
    with pytest.raises(StrictJsonError, match="64-bit"):
        loads(f'{{"a": {number}}}'.encode())


@pytest.mark.parametrize("number", [2**63 - 1, -(2**63), 0, 10**18])
def test_integers_within_64_bits_are_exact(number: int) -> None:
    assert loads(f'{{"a": {number}}}'.encode()) == {"a": number}


def test_long_digit_strings_are_only_strings() -> None:
    assert loads(b'{"iban": "123456789012345678901234567890", "n": 1.5}') == {
        "iban": "123456789012345678901234567890", "n": 1.5}


def test_nesting_is_bounded() -> None:
    assert loads(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    with pytest.raises(StrictJsonError, match="nested deeper"):
        loads(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    with pytest.raises(json.JSONDecodeError):
        loads(b'{"a":' * 5000 + b"1" + b"}" * 5000)


def test_deep_nesting_with_a_long_number_takes_the_exact_path_and_is_still_refused() -> None:
    with pytest.raises(json.JSONDecodeError):
        loads(b"[" * 3000 + b"12345678901234567890" + b"]" * 3000)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


@given(json_values)
def test_every_storable_value_parses_to_itself(value: object) -> None:
    assert loads(json.dumps(value).encode()) == value
