"""FEEL subset: expected values below are worked out by hand from the FEEL rules, not copied from a run."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processes.feel import FeelError, Range, compile_feel, evaluate

VARS: dict[str, Any] = {
    "amount": 1500,
    "priority": "high",
    "case_id": "C-1",
    "tags": ["a", "b"],
    "orders": [{"id": 1, "amount": 5}, {"id": 2, "amount": 50}, {"id": 3, "amount": 500}],
    "customer": {"address": {"city": "Oslo"}},
    "nothing": None,
    "rate": 0.1,
    "n": 2,
    "tags_count": [3],
}

CASES: list[tuple[str, Any]] = [
    # comparisons
    ("=amount > 1000", True),
    ("amount >= 1500", True),
    ("amount < 1500", False),
    ("amount != 1500", False),
    ('priority = "high"', True),
    ('"a" < "b"', True),
    ("1 = 1.0", True),
    # arithmetic (decimal, so 0.1 + 0.2 is exactly 0.3)
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("2 ** 10", 1024),
    ("-2 ** 2", 4),  # unary minus binds tighter than ** in FEEL's precedence table
    ("10 / 4", 2.5),
    ("7 - 10", -3),
    ("0.1 + 0.2 = 0.3", True),
    ("rate * 3", 0.3),
    ("-amount", -1500),
    (".5 + .5", 1),
    ("1 + /* two */ 2", 3),
    ('"case " + case_id', "case C-1"),
    # between / in / ranges
    ("amount between 1000 and 2000", True),
    ("5 between 6 and 10", False),
    ("3 in [1, 2, 3]", True),
    ("4 in [1, 2, 3]", False),
    ("5 in [1..5]", True),
    ("5 in [1..5)", False),
    ("1 in (1..5]", False),
    ("1 in ]1..5]", False),
    ("0.5 in ]0..1[", True),
    ("5 in [1..5[", False),
    ("2 in [1..(tags_count[1])]", True),
    ("n in [1..3]", True),
    ('priority in ["low", "high"]', True),
    ("amount in > 1000", True),
    ("7 in [1, [5..10]]", True),
    # lists, contexts, paths, filters, indexing
    ("[1, 2, 3]", [1, 2, 3]),
    ("[]", []),
    ('{a: 1, "b c": 2}', {"a": 1, "b c": 2}),
    ("{a: 1, b: a + 1}.b", 2),
    ("{first name: \"Ada\"}", {"first name": "Ada"}),
    ("[1, 5, 10][item > 2]", [5, 10]),
    ("orders[amount > 10].id", [2, 3]),
    ("orders[1].id", 1),
    ("orders[-1].id", 3),
    ("[1, 2, 3][0]", None),
    ("[1, 2, 3][4]", None),
    ("[1, 2, 3][n]", 2),
    ("orders.amount", [5, 50, 500]),
    ("customer.address.city", "Oslo"),
    ("customer.phone", None),
    ("sum(orders.amount) > 500", True),
    ("count(orders[amount >= 50]) = 2", True),
    # if
    ('if amount > 1000 then "senior" else "standard"', "senior"),
    ("if nothing then 1 else 2", 2),
    # string functions
    ('string length("hello")', 5),
    ('substring("foobar", 3)', "obar"),
    ('substring("foobar", 3, 3)', "oba"),
    ('substring("foobar", -2, 1)', "a"),
    ('upper case("abc")', "ABC"),
    ('lower case("ABC")', "abc"),
    ('contains("foobar", "ob")', True),
    ('starts with("foobar", "fo")', True),
    ('ends with("foobar", "r")', True),
    ('matches("C-123", "^C-[0-9]+$")', True),
    ('matches("ABC", "b", "i")', True),
    ("string(1.50)", "1.5"),
    ("string(true)", "true"),
    ("string(null)", None),
    # number functions
    ('number("12.5")', 12.5),
    ('number("abc")', None),
    ('number("1 000,5", " ", ",")', 1000.5),
    ("floor(1.7)", 1),
    ("floor(-1.5)", -2),
    ("ceiling(1.2)", 2),
    ("ceiling(-1.5)", -1),
    ("abs(-3)", 3),
    ("min([3, 1, 2])", 1),
    ("max(3, 1, 2)", 3),
    ("sum([1, 2, 3.5])", 6.5),
    ("sum([])", None),
    ("min([])", None),
    ("count([1, 2, 3])", 3),
    ("count([])", 0),
    # list functions
    ('list contains(tags, "a")', True),
    ('list contains(tags, "z")', False),
    ("list contains([1, null], null)", True),
    ("append([1], 2, 3)", [1, 2, 3]),
    ("distinct values([1, 2, 1, 3, 2])", [1, 2, 3]),
    ("flatten([[1, 2], [[3]], 4])", [1, 2, 3, 4]),
    ("index of([1, 2, 3, 2], 2)", [2, 4]),
    # context functions
    ('get value({a: 1}, "a")', 1),
    ('get value({a: 1}, "b")', None),
    ('context put({a: 1}, "b", 2)', {"a": 1, "b": 2}),
    # instance of
    ("amount instance of number", True),
    ('priority instance of number', False),
    ("tags instance of list", True),
    ("nothing instance of Any", False),
    # boolean
    ("not(true)", False),
    ("true and false", False),
    ("true or false", True),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_expression_values(text: str, expected: Any) -> None:
    result = compile_feel(text).evaluate(VARS)
    assert result == expected
    assert type(result) is type(expected)


NULL_CASES: list[tuple[str, Any]] = [
    ("nothing = null", True),  # '=' with null is FEEL's null check
    ("undefined_variable = null", True),  # a missing variable is null
    ("amount = null", False),
    ("undefined_variable > 1", None),  # ordering with null is null
    ("nothing <= 1", None),
    ("undefined_variable + 1", None),
    ("-nothing", None),
    ("true and nothing", None),
    ("false and nothing", False),
    ("true or nothing", True),
    ("false or nothing", None),
    ("not(nothing)", None),
    ("nothing between 1 and 2", None),
    ('1 = "1"', None),  # different kinds: null, not false
    ('1 < "2"', None),
    ('1 + "a"', None),
    ("1 / 0", None),
    ("10 ** 7000", None),  # beyond decimal128's exponent range
    ("nothing in [1, 2]", False),
    ("string length(nothing)", None),
    ("nothing.field", None),
    ("nothing[1]", None),
    ("undefined_variable.a.b", None),
]


@pytest.mark.parametrize(("text", "expected"), NULL_CASES, ids=[c[0] for c in NULL_CASES])
def test_null_semantics(text: str, expected: Any) -> None:
    assert compile_feel(text).evaluate(VARS) is expected


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("amount > 1000", True),
        ("amount > 2000", False),
        ("undefined_variable > 1", False),  # null in a condition counts as false
        ('1 = "1"', False),
        ("1", False),  # a non-boolean is not true
        ("nothing", False),
    ],
)
def test_condition_counts_only_true(text: str, holds: bool) -> None:
    assert compile_feel(text).test(VARS) is holds


ERRORS: list[tuple[str, str, int]] = [
    ("for x in [1, 2] x", "expected 'return' after the iteration contexts", 16),
    ("some x [1] satisfies x > 0", "expected 'in' after iteration variable 'x'", 7),
    ("every x in [1] x > 0", "expected 'satisfies'", 15),
    ('@"2026-13-01"', "is not a date, time, date and time or duration", 0),
    ('@2026', "expected a string after '@'", 0),
    ("x > now(1)", "function 'now' takes 0 arguments, got 1", 4),
    ('=date("2026-01-01", 1, 2, 3)', "function 'date' takes 1 to 3 arguments, got 4", 1),
    ("foo(1)", "unknown function 'foo'", 0),
    ("amount > 1 and bar(2)", "unknown function 'bar'", 15),
    ('uuid()', "function 'uuid' is not in the supported FEEL subset", 0),
    ("is defined(a, b)", "function 'is defined' takes 1 argument, got 2", 0),
    ("x instance of numbers", "expected a type name", 14),
    ("x instance of list<number>", "generic types", 18),
    ("function(a: number) a + 1", "typed function parameters", 10),
    ('substring("a")', "takes 2 to 3 arguments, got 1", 0),
    ("not(true, false)", "takes 1 argument, got 2", 0),
    ("a < b < c", "chained comparison", 6),
    ("1 +", "unexpected end of expression", 3),
    ("1 2", "unexpected number '2'", 2),
    ("'single'", "single-quoted strings", 0),
    ('"unterminated', "unterminated string literal", 0),
    ("a.b(1)", "only built-in functions", 3),
    ("x in (1, 2)", "parenthesized test lists", 5),
    ('string length(text: "x")', "function 'string length' has no parameters named text; it takes (string)", 0),
    ('substring(string: "x", 1)', "a positional argument cannot follow named ones", 23),
    ("a ? b", "unexpected character '?'", 2),
    ("`order-id", "unterminated backtick-quoted name", 0),
    ("1 + ``", "empty backtick-quoted name", 4),
    ("", "empty expression", 0),
    ("=", "empty expression", 1),
    ("[1, 2", "expected ']' to close the list", 5),
    ("{a 1}", "expected ':'", 3),
    ("{a: 1, a: 2}", "duplicate context key 'a'", 7),
    ("(" * 5000 + "1" + ")" * 5000, "nested too deeply", 0),
]


@pytest.mark.parametrize(("text", "fragment", "position"), ERRORS, ids=[e[0][:40] or "<empty>" for e in ERRORS])
def test_unsupported_constructs_are_named_with_position(text: str, fragment: str, position: int) -> None:
    with pytest.raises(FeelError) as info:
        compile_feel(text)
    assert fragment in str(info.value)
    assert info.value.position == position
    assert f"at position {position}" in str(info.value)


def test_leading_equals_is_optional_and_kept_as_source() -> None:
    assert compile_feel("= amount > 1000").source == "= amount > 1000"
    assert evaluate("amount > 1000", {"amount": 1001}) is True
    assert evaluate("=amount > 1000", {"amount": 1001}) is True


def test_variables_read() -> None:
    expr = compile_feel('=amount > 1000 and priority = "high" or customer.address.city = "Oslo"')
    assert expr.variables == {"amount", "priority", "customer"}


def test_ranges_are_values() -> None:
    assert evaluate("[1..n]", {"n": 3}) == Range(1, 3, True, True)
    assert evaluate("(0..1]") == Range(0, 1, False, True)


def test_caller_variables_are_not_mutated() -> None:
    variables = {"ctx": {"a": 1}, "xs": [3, 1]}
    assert evaluate('context put(ctx, "b", 2)', variables) == {"a": 1, "b": 2}
    assert evaluate("append(xs, 4)", variables) == [3, 1, 4]
    assert variables == {"ctx": {"a": 1}, "xs": [3, 1]}


@given(st.integers(-10**6, 10**6), st.integers(-10**6, 10**6))
def test_integer_arithmetic_and_order_match_python(a: int, b: int) -> None:
    variables = {"a": a, "b": b}
    assert evaluate("a + b * 2", variables) == a + b * 2
    assert evaluate("a - b", variables) == a - b
    assert evaluate("a < b", variables) is (a < b)
    assert evaluate("a = b", variables) is (a == b)
    assert evaluate("a between min(a, b) and max(a, b)", variables) is True
