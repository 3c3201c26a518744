"""FEEL unary tests (decision-table input cells): expected outcomes worked out by hand from DMN 1.4 §10.3.2.9."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from processes.feel import FeelError, compile_feel, compile_unary_tests

CASES: list[tuple[str, Any, bool]] = [
    ("-", 42, True),
    ("", None, True),
    ("< 10", 5, True),
    ("< 10", 10, False),
    ("<= 10", 10, True),
    ("!= 3", 4, True),
    ("= 3", 3, True),
    ("[1..5]", 5, True),
    ("[1..5)", 5, False),
    ("]1..5]", 1, False),
    ("(1..5]", 1.5, True),
    ("5", 5, True),
    ('"gold"', "gold", True),
    ('"gold", "silver"', "silver", True),
    ('"gold", "silver"', "bronze", False),
    ("> 100, < 0", -1, True),
    ("> 100, < 0", 50, False),
    ('not("gold")', "silver", True),
    ('not("gold")', "gold", False),
    ('not("gold", "silver")', "bronze", True),
    ("not(< 5)", 7, True),
    ("not(< 5)", None, False),  # null is not comparable: neither the test nor its negation holds
    ("< 5", None, False),
    ("null", None, True),
    ("true", True, True),
    ("true", "true", False),
    ('["a", "b"]', "b", True),  # a list value: the input is one of its items
    ("[[1..3], [7..9]]", 8, True),
    ('>= date("2026-01-01")', date(2026, 3, 1), True),
    ('[date("2026-01-01")..date("2026-12-31")]', date(2027, 1, 1), False),
    ("? > 3 and ? < 6", 5, True),  # an expression that reads ? is a condition on the input
    ("? > 3 and ? < 6", 6, False),
    ("count(?) > 1", [1, 2], True),
    ('starts with(?, "INV-")', "INV-7", True),
    ("> limit", 5, True),  # limit comes from the variables
    ("limit", 3, True),
    ("not(1) = 2", 1, False),  # `not(...)` that does not close at the end is the function
]


@pytest.mark.parametrize(("text", "value", "expected"), CASES, ids=[f"{c[0]!r}<-{c[1]!r}" for c in CASES])
def test_unary_tests(text: str, value: Any, expected: bool) -> None:
    assert compile_unary_tests(text).matches(value, {"limit": 3}) is expected


def test_variables_are_the_names_besides_the_input() -> None:
    assert compile_unary_tests("> limit, ? = special").variables == {"limit", "special"}


@pytest.mark.parametrize(("text", "fragment"), [
    ("< ", "unexpected end of expression"),
    ("not(1, 2", "expected ')' to close the call of 'not'"),
    ("1 2", "unexpected number '2'"),
    ("- 1, -", "unexpected end of expression"),
    ("a ? b", "unexpected name '?'"),
])
def test_bad_cells_are_refused_naming_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(FeelError) as info:
        compile_unary_tests(text)
    assert fragment in str(info.value)


def test_the_input_placeholder_is_not_feel_outside_unary_tests() -> None:
    with pytest.raises(FeelError, match="unexpected character '\\?'"):
        compile_feel("? > 1")
