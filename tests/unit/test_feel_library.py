"""FEEL iteration, quantifiers, `is defined`, lambdas and the built-in library; expected values worked out by hand."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processes.feel import FeelError, compile_feel, evaluate

VARS: dict[str, Any] = {
    "order-id": 41,
    "orders": [{"id": 1, "amount": 5}, {"id": 2, "amount": 50}],
    "nothing": None,
    "customer": {"name": "Ada", "address": None},
    "names": ["b", "a", "c"],
}

CASES: list[tuple[str, Any]] = [
    # for, some, every, ranges
    ("for x in [1, 2, 3] return x * x", [1, 4, 9]),
    ("for i in 1..3 return i", [1, 2, 3]),
    ("for i in 3..1 return i", [3, 2, 1]),
    ("for i in [1..3) return i", [1, 2]),
    ("for x in [1, 2], y in [10, 20] return x + y", [11, 21, 12, 22]),
    ("for o in orders return o.amount * 2", [10, 100]),
    ("for i in 1..4 return if i = 1 then 1 else i * partial[-1]", [1, 2, 6, 24]),
    ("for x in [] return x", []),
    ("count(for i in 1..50000 return i)", 50000),
    ("some x in [1, 5, 9] satisfies x > 8", True),
    ("some x in [1, 5] satisfies x > 8", False),
    ("every o in orders satisfies o.amount > 1", True),
    ("every o in orders satisfies o.amount > 10", False),
    ("every x in [] satisfies x > 1", True),
    ("some x in 1..10, y in 1..10 satisfies x * y = 42", True),
    ("5 in [1..10]", True),
    ("[1..10].start + [1..10].end", 11),
    ("(1..10].start included", False),
    # is defined, get or else
    ("is defined(orders)", True),
    ("is defined(nothing)", True),  # defined, with the value null
    ("is defined(missing)", False),
    ("is defined(customer.address)", True),
    ("is defined(customer.phone)", False),
    ("is defined(missing.phone)", False),
    ("is defined(1 + 1)", True),
    ('get or else(nothing, "fallback")', "fallback"),
    ('get or else(customer.name, "fallback")', "Ada"),
    ('get or else(missing, 0) + 1', 1),
    # strings
    ('string join(["a", "b", "c"], ", ")', "a, b, c"),
    ('string join(["a", null, "c"])', "ac"),
    ('string join(["a", "b"], "-", "[", "]")', "[a-b]"),
    ('split("a, b,c", ",\\s*")', ["a", "b", "c"]),
    ('split("John Doe", "\\s")', ["John", "Doe"]),
    ('substring before("foobar", "bar")', "foo"),
    ('substring after("foobar", "ob")', "ar"),
    ('substring after("foobar", "x")', ""),
    ('replace("abcd", "(ab)|(a)", "[1=$1][2=$2]")', "[1=ab][2=]cd"),
    ('replace("HELLO", "l", "x", "i")', "HExxO"),
    ('extract("a1b22c333", "[0-9]+")', ["1", "22", "333"]),
    ('trim("  x  ")', "x"),
    ('matches("Case-42", "^case-\\d+$", "i")', True),
    ('contains("foobar", "oba")', True),
    ('string length("héllo")', 5),
    # numbers
    ("decimal(1/3, 2)", 0.33),
    ("decimal(2.5, 0)", 2),  # half even
    ("round half up(2.5, 0)", 3),
    ("round half down(2.5, 0)", 2),
    ("round up(5.01, 1)", 5.1),
    ("round down(-5.19, 1)", -5.1),
    ("modulo(12, 5)", 2),
    ("modulo(-12, 5)", 3),  # the sign of the divisor
    ("modulo(12, -5)", -3),
    ("sqrt(16)", 4),
    ("odd(5) and even(4)", True),
    ("abs(-2.5)", 2.5),
    # lists
    ("sort([3, 1, 2])", [1, 2, 3]),
    ("sort([3, 1, 2], function(a, b) a > b)", [3, 2, 1]),
    ("sort(orders, function(x, y) x.amount > y.amount).id", [2, 1]),
    ("sort(names)", ["a", "b", "c"]),
    ("sublist([1, 2, 3, 4], 2, 2)", [2, 3]),
    ("sublist([1, 2, 3, 4], -2)", [3, 4]),
    ("insert before([1, 3], 2, 2)", [1, 2, 3]),
    ("remove([1, 2, 3], 2)", [1, 3]),
    ("reverse([1, 2, 3])", [3, 2, 1]),
    ("concatenate([1], [2, 3], [])", [1, 2, 3]),
    ("union([1, 2], [2, 3])", [1, 2, 3]),
    ("product([2, 3, 4])", 24),
    ("mean([1, 2, 3, 4])", 2.5),
    ("median([3, 1, 2])", 2),
    ("median([4, 1, 3, 2])", 2.5),
    ("mode([1, 2, 2, 3, 3])", [2, 3]),
    ("stddev(2, 4, 7, 5)", 2.0816659994661326),
    ("all([true, true])", True),
    ("all([true, null])", None),
    ("any([false, true])", True),
    ("is empty([])", True),
    ("list contains([date(\"2026-01-01\")], date(\"2026-01-01\"))", True),
    ("duplicate values([1, 2, 1, 3, 2, 1])", [1, 2]),
    ("partition([1, 2, 3, 4, 5], 2)", [[1, 2], [3, 4], [5]]),
    ("list replace([1, 2, 3], -1, 9)", [1, 2, 9]),
    # contexts
    ('to json({a: date("2026-01-01"), b: [1, 2.5, null]})', '{"a":"2026-01-01","b":[1,2.5,null]}'),
    ('from json("{\\"a\\": [1, true]}").a[2]', True),
    ('context merge([{a: 1}, {b: 2}, {a: 3}])', {"a": 3, "b": 2}),
    ("get entries({a: 1})", [{"key": "a", "value": 1}]),
    ('context([{key: "a", value: 1}])', {"a": 1}),
    # backtick-quoted names (Camunda)
    ("`order-id` + 1", 42),
    ("`customer`.`name`", "Ada"),
    ("{`first name`: \"Ada\"}.`first name`", "Ada"),
    # named arguments
    ('substring(string: "foobar", start position: 3, length: 2)', "ob"),
    ('date(year: 2026, month: 12, day: 7)', "2026-12-07"),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:60] for c in CASES])
def test_library_values(text: str, expected: Any) -> None:
    assert compile_feel(text).evaluate(VARS) == expected


NULLS = [
    "for x in 5.5..7 return x",  # a range to iterate must have integer ends
    "for i in 1..1000000000 return i",  # past 100,000 steps a loop is null (a variable bound cannot stall us)
    "for i in 1..1000, j in 1..1000 return 1",
    "some x in null satisfies x",
    'string join(["a", 1])',
    "string join(null)",
    'split("abc", "")',
    'split("abc", "(")',  # not a regular expression: null, not an exception
    'matches("aa", "(a)\\1")',  # back-references are not RE2: null instead of a slow backtracking match
    'matches("a", "a", "p")',  # not an XPath flag
    'substring before(1, "a")',
    "sort([1, \"a\"])",
    "sort([1, 2], 3)",
    "sublist([1, 2], 3)",
    "remove([1], 0)",
    "decimal(1, \"2\")",
    "modulo(1, 0)",
    "sqrt(-1)",
    "mean([])",
    "mean([1, \"a\"])",
    "context([{key: 1, value: 2}])",
    "get or else(null, null)",
    'from json("{not json")',
    "partition([1, 2], 0)",
    "to json([1..2])",
]


@pytest.mark.parametrize("text", NULLS)
def test_wrong_arguments_give_null(text: str) -> None:
    assert compile_feel(text).evaluate(VARS) is None


def test_only_syntax_errors_raise() -> None:
    with pytest.raises(FeelError, match="expected 'return'"):
        compile_feel("for x in [1] x")
    for text, _ in CASES:
        compile_feel(text).evaluate({})  # no variables at all: null somewhere, never an exception


def test_iteration_variables_are_not_read_from_the_caller() -> None:
    expr = compile_feel("for x in items return x + offset")
    assert expr.variables == {"items", "offset"}
    assert compile_feel("sort(xs, function(a, b) a < b)").variables == {"xs"}
    assert compile_feel("some o in orders satisfies o.amount > limit").variables == {"orders", "limit"}


@given(st.lists(st.integers(-1000, 1000), max_size=30))
def test_for_some_every_and_sort_agree_with_python(xs: list[int]) -> None:
    variables = {"xs": xs}
    assert evaluate("for x in xs return x * 2", variables) == [x * 2 for x in xs]
    assert evaluate("some x in xs satisfies x > 500", variables) is any(x > 500 for x in xs)
    assert evaluate("every x in xs satisfies x > 0", variables) is all(x > 0 for x in xs)
    assert evaluate("sort(xs, function(a, b) a < b)", variables) == sorted(xs)
    assert evaluate('string join(for x in xs return string(x), ",")', variables) == ",".join(map(str, xs))


@pytest.mark.parametrize(("text", "expected"), [
    ('matches("hello world", "hel lo[ ]w orld", "x")', True),  # x: whitespace outside a class is ignored
    ('matches("a.b", "a.b", "q")', True),  # q: the pattern is literal text
    ('matches("axb", "a.b", "q")', False),
    ('matches("Mary\\u000DJones", "Mary.Jones")', False),  # XPath's '.' matches neither CR nor LF
    ('matches("Mary\\u000DJones", "Mary.Jones", "s")', True),
    ('matches("abracadabra", "bra", null)', True),  # null flags are no flags
])
def test_xpath_regex_flags(text: str, expected: bool) -> None:
    assert evaluate(text) is expected
