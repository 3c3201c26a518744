"""FEEL values: conversion from and to Python, equality, ordering, arithmetic and `string()`.

Numbers are `Decimal` inside (34 significant digits, like FEEL's decimal128). Temporal values are the Python
types of processes.feel.temporal. Any operation FEEL does not define for its operands gives null (None).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any, Final

from processes.feel.temporal import YearsMonths, is_temporal, temporal_arith, temporal_compare, temporal_equal
from processes.feel.temporal_text import temporal_json, temporal_string

DEC: Final = Context(prec=34, rounding=ROUND_HALF_EVEN, Emax=6144, Emin=-6143)  # decimal128, as FEEL


@dataclass(frozen=True)
class Range:
    """A FEEL range value such as `[1..5]` or `(0..10]`."""

    start: Any
    end: Any
    start_included: bool = True
    end_included: bool = True


@dataclass(frozen=True)
class Function:
    """A function value: a FEEL lambda `function(a, b) a < b` bound to the scope it was written in."""

    params: tuple[str, ...]
    call: Callable[[list[Any]], Any]


def from_py(value: Any) -> Any:
    """A Python value (from the variables context) as a FEEL value."""
    if value is None or isinstance(value, bool | str | Decimal | Range):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): from_py(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [from_py(v) for v in value]
    return value  # temporal values pass as they are; anything else is opaque: equal only to itself


def to_py(value: Any) -> Any:
    """A FEEL value as JSON-ready Python: numbers int or float, temporal values ISO strings, lambdas null."""
    if value is None or isinstance(value, str | bool):
        return value  # the common results, first
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, dict):
        return {k: to_py(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_py(v) for v in value]
    if isinstance(value, Range):
        return Range(to_py(value.start), to_py(value.end), value.start_included, value.end_included)
    if is_temporal(value):
        return temporal_json(value)
    if isinstance(value, Function):
        return None  # a lambda has no JSON form; it only lives inside one evaluation
    return value


def is_num(v: Any) -> bool:
    """A FEEL number (bool is not one)."""
    return isinstance(v, Decimal)


def int_arg(v: Any) -> int | None:
    """An integral FEEL number as int, else None."""
    if is_num(v) and v.is_finite() and v == v.to_integral_value():
        return int(v)
    return None


def all3(results: Iterable[bool | None]) -> bool | None:
    """Three-valued conjunction of many."""
    seen_null = False
    for r in results:
        if r is False:
            return False
        if r is None:
            seen_null = True
    return None if seen_null else True


def any3(results: Iterable[bool | None]) -> bool | None:
    """Three-valued disjunction of many."""
    seen_null = False
    for r in results:
        if r is True:
            return True
        if r is None:
            seen_null = True
    return None if seen_null else False


def and3(a: Any, b: Any) -> bool | None:
    """FEEL `and`: a non-boolean counts as null."""
    return all3([a if isinstance(a, bool) else None, b if isinstance(b, bool) else None])


def or3(a: Any, b: Any) -> bool | None:
    """FEEL `or`: a non-boolean counts as null."""
    return any3([a if isinstance(a, bool) else None, b if isinstance(b, bool) else None])


def feel_eq(a: Any, b: Any) -> bool | None:
    """FEEL equality: null equals only null; values of different kinds give null."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b if isinstance(a, bool) and isinstance(b, bool) else None
    if is_num(a) and is_num(b):
        return bool(a == b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if is_temporal(a) or is_temporal(b):
        return temporal_equal(a, b)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return False
        return all3(feel_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return False
        return all3(feel_eq(a[k], b[k]) for k in a)
    if isinstance(a, Range) and isinstance(b, Range):
        return a == b
    if type(a) is type(b):
        return bool(a == b)
    return None


def order(a: Any, b: Any) -> int | None:
    """-1, 0 or 1 for two numbers, two strings or two comparable temporal values; else None."""
    if (is_num(a) and is_num(b)) or (isinstance(a, str) and isinstance(b, str)):
        return -1 if a < b else (1 if a > b else 0)
    if is_temporal(a) and is_temporal(b):
        return temporal_compare(a, b)
    return None


def compare(op: str, a: Any, b: Any) -> bool | None:
    """A comparison operator `= != < <= > >=` with FEEL's null rules."""
    if op == "=":
        return feel_eq(a, b)
    if op == "!=":
        eq = feel_eq(a, b)
        return None if eq is None else not eq
    if (is_num(a) and is_num(b)) or (isinstance(a, str) and isinstance(b, str)):
        left, right = a, b  # the hot path (gateway conditions): compare directly
    else:
        c = order(a, b)
        if c is None:
            return None
        left, right = c, 0
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


TYPE_NAMES: Final = ("Any", "number", "string", "boolean", "date", "time", "date and time",
                      "days and time duration", "years and months duration", "list", "context", "range", "function")


def instance_of(v: Any, type_name: str) -> bool:
    """`v instance of T` for the FEEL built-in type names (null is an instance of none of them)."""
    checks: dict[str, Callable[[Any], bool]] = {
        "Any": lambda x: x is not None,
        "number": is_num,
        "string": lambda x: isinstance(x, str),
        "boolean": lambda x: isinstance(x, bool),
        "date": lambda x: isinstance(x, date) and not isinstance(x, datetime),
        "time": lambda x: isinstance(x, time),
        "date and time": lambda x: isinstance(x, datetime),
        "days and time duration": lambda x: isinstance(x, timedelta),
        "years and months duration": lambda x: isinstance(x, YearsMonths),
        "list": lambda x: isinstance(x, list),
        "context": lambda x: isinstance(x, dict),
        "range": lambda x: isinstance(x, Range),
        "function": lambda x: isinstance(x, Function),
    }
    return checks[type_name](v)


def in_range(x: Any, r: Range) -> bool | None:
    """Whether x lies in r (null when not comparable)."""
    lower = compare(">=" if r.start_included else ">", x, r.start)
    upper = compare("<=" if r.end_included else "<", x, r.end)
    return and3(lower, upper)


def matches_test(x: Any, test: Any) -> bool | None:
    """x against one positive unary test value: a range or a value to equal."""
    if isinstance(test, Range):
        return in_range(x, test)
    return feel_eq(x, test)


def arith(op: str, a: Any, b: Any) -> Any:
    """`+ - * / **` on numbers, `+` on strings, and temporal arithmetic; otherwise null."""
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    try:
        if is_temporal(a) or is_temporal(b):
            return temporal_arith(op, a, b) if op != "**" else None
        if not (is_num(a) and is_num(b)):
            return None
        if op == "+":
            return DEC.add(a, b)
        if op == "-":
            return DEC.subtract(a, b)
        if op == "*":
            return DEC.multiply(a, b)
        if op == "/":
            return None if b == 0 else DEC.divide(a, b)
        return DEC.power(a, b)
    except (InvalidOperation, ArithmeticError, ValueError):
        return None  # overflow, or a date outside years 1..9999


def negate(v: Any) -> Any:
    """Unary minus of a number or a duration."""
    if is_num(v):
        return DEC.minus(v)
    if isinstance(v, timedelta):
        return -v
    if isinstance(v, YearsMonths):
        return YearsMonths(-v.months)
    return None


def format_number(d: Decimal) -> str:
    """A number as FEEL prints it: no exponent, no trailing zeros."""
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")


def to_string(v: Any) -> str | None:
    """FEEL `string()`."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if is_num(v):
        return format_number(v)
    if is_temporal(v):
        return temporal_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(literal(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {literal(x)}" for k, x in v.items()) + "}"
    if isinstance(v, Range):
        left, right = ("[" if v.start_included else "("), ("]" if v.end_included else ")")
        return f"{left}{literal(v.start)}..{literal(v.end)}{right}"
    return str(v)


def literal(v: Any) -> str:
    """A value as it would be written in FEEL (strings quoted)."""
    if v is None:
        return "null"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return to_string(v) or "null"
