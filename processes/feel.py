"""A FEEL subset: tokenizer, recursive-descent parser (AST) and evaluator.

Only the part of FEEL (DMN 1.3/1.4 "Friendly Enough Expression Language") that our BPMN processes use in
gateway conditions, io mappings, correlation keys and task headers. Anything outside the subset is refused
at compile time with a `FeelError` naming the construct and its position, so a process that deploys never
meets an unsupported expression at run time. docs/feel.md lists exactly what is supported.

Values: numbers are `decimal.Decimal` inside the evaluator (34 significant digits, like FEEL's decimal128),
so `0.1 + 0.2 = 0.3` holds; `Expression.evaluate` converts results back to `int`/`float`. Runtime problems
(type mismatch, division by zero, missing variable, bad argument) give `null` (`None`), as FEEL defines;
`Expression.test` counts only `true` as true, so a null condition is false.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any, Final

__all__ = ["Expression", "FeelError", "Range", "compile_feel", "evaluate", "is_true"]

_DEC: Final = Context(prec=34, rounding=ROUND_HALF_EVEN, Emax=6144, Emin=-6143)  # decimal128, as FEEL


class FeelError(ValueError):
    """An expression outside the supported subset, or not FEEL at all. `position` is a 0-based offset."""

    def __init__(self, message: str, position: int, text: str) -> None:
        self.reason = message
        self.position = position
        self.text = text
        super().__init__(f"{message} at position {position} in {text!r}")


@dataclass(frozen=True)
class Range:
    """A FEEL range value such as `[1..5]` or `(0..10]`."""

    start: Any
    end: Any
    start_included: bool = True
    end_included: bool = True


# --------------------------------------------------------------------------------------------------- tokens

KEYWORDS: Final = frozenset(
    {"true", "false", "null", "and", "or", "if", "then", "else", "between", "in", "for", "some", "every",
     "satisfies", "return", "instance", "of", "function", "external"}
)


@dataclass(frozen=True)
class Token:
    kind: str  # "num", "str", "name", "op", "eof"
    value: str
    pos: int


_OPERATORS: Final = ("**", "..", "!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "(", ")", "[", "]", "{",
                      "}", ",", ":", ".")
_ESCAPES: Final = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "'": "'"}


def _tokenize(text: str, offset: int, original: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)

    def fail(message: str, at: int) -> FeelError:
        return FeelError(message, at + offset, original)

    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise fail("unterminated comment", i)
            i = end + 2
            continue
        prev = tokens[-1] if tokens else None
        after_value = prev is not None and (prev.kind in ("num", "str", "name") or prev.value in (")", "]", "}"))
        if c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit() and not after_value):
            m = re.compile(r"\d*(?:\.\d+)?").match(text, i)
            assert m is not None
            tokens.append(Token("num", m.group(), i + offset))
            i = m.end()
            continue
        if c == '"':
            j, buf = i + 1, []
            while True:
                if j >= n:
                    raise fail("unterminated string literal", i)
                ch = text[j]
                if ch == '"':
                    break
                if ch == "\\":
                    esc = text[j + 1] if j + 1 < n else ""
                    if esc in _ESCAPES:
                        buf.append(_ESCAPES[esc])
                        j += 2
                        continue
                    if esc == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[j + 2:j + 6]):
                        buf.append(chr(int(text[j + 2:j + 6], 16)))
                        j += 6
                        continue
                    raise fail(f"unknown escape sequence '\\{esc}' in string literal", j)
                buf.append(ch)
                j += 1
            tokens.append(Token("str", "".join(buf), i + offset))
            i = j + 1
            continue
        if c.isalpha() or c == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(Token("name", text[i:j], i + offset))
            i = j
            continue
        if c == "@":
            raise fail('temporal literal (@"...") is not supported', i)
        if c == "`":
            raise fail("backtick-quoted names are not supported", i)
        if c == "'":
            raise fail("single-quoted strings are not FEEL (use double quotes)", i)
        for op in _OPERATORS:
            if text.startswith(op, i):
                tokens.append(Token("op", op, i + offset))
                i += len(op)
                break
        else:
            raise fail(f"unexpected character {c!r}", i)
    tokens.append(Token("eof", "", n + offset))
    return tokens


# ------------------------------------------------------------------------------------------------ values

def _from_py(value: Any) -> Any:
    """A Python value (from the variables context) as a FEEL value."""
    if value is None or isinstance(value, bool | str | Decimal | Range):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _from_py(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_from_py(v) for v in value]
    return value  # opaque: equal only to itself, otherwise null in operators


def _to_py(value: Any) -> Any:
    """A FEEL value as plain Python: integral numbers become int, others float."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, dict):
        return {k: _to_py(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_py(v) for v in value]
    if isinstance(value, Range):
        return Range(_to_py(value.start), _to_py(value.end), value.start_included, value.end_included)
    return value


def _is_num(v: Any) -> bool:
    return isinstance(v, Decimal)


def _feel_eq(a: Any, b: Any) -> bool | None:
    """FEEL equality: null equals only null; values of different kinds give null."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b if isinstance(a, bool) and isinstance(b, bool) else None
    if _is_num(a) and _is_num(b):
        return bool(a == b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return False
        return _all3(_feel_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return False
        return _all3(_feel_eq(a[k], b[k]) for k in a)
    if isinstance(a, Range) and isinstance(b, Range):
        return a == b
    if type(a) is type(b):
        return bool(a == b)
    return None


def _all3(results: Iterator[bool | None] | Sequence[bool | None]) -> bool | None:
    seen_null = False
    for r in results:
        if r is False:
            return False
        if r is None:
            seen_null = True
    return None if seen_null else True


def _any3(results: Iterator[bool | None] | Sequence[bool | None]) -> bool | None:
    seen_null = False
    for r in results:
        if r is True:
            return True
        if r is None:
            seen_null = True
    return None if seen_null else False


def _compare(op: str, a: Any, b: Any) -> bool | None:
    if op == "=":
        return _feel_eq(a, b)
    if op == "!=":
        eq = _feel_eq(a, b)
        return None if eq is None else not eq
    if not ((_is_num(a) and _is_num(b)) or (isinstance(a, str) and isinstance(b, str))):
        return None
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _in_range(x: Any, r: Range) -> bool | None:
    lower = _compare(">=" if r.start_included else ">", x, r.start)
    upper = _compare("<=" if r.end_included else "<", x, r.end)
    return _and3(lower, upper)


def _matches_test(x: Any, test: Any) -> bool | None:
    if isinstance(test, Range):
        return _in_range(x, test)
    return _feel_eq(x, test)


def _and3(a: Any, b: Any) -> bool | None:
    a = a if isinstance(a, bool) else None
    b = b if isinstance(b, bool) else None
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def _or3(a: Any, b: Any) -> bool | None:
    a = a if isinstance(a, bool) else None
    b = b if isinstance(b, bool) else None
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def _arith(op: str, a: Any, b: Any) -> Any:
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    if not (_is_num(a) and _is_num(b)):
        return None
    try:
        if op == "+":
            return _DEC.add(a, b)
        if op == "-":
            return _DEC.subtract(a, b)
        if op == "*":
            return _DEC.multiply(a, b)
        if op == "/":
            return None if b == 0 else _DEC.divide(a, b)
        return _DEC.power(a, b)
    except (InvalidOperation, ArithmeticError):
        return None


def _format_number(d: Decimal) -> str:
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")


def _to_string(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if _is_num(v):
        return _format_number(v)
    if isinstance(v, list):
        return "[" + ", ".join(_literal(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_literal(x)}" for k, x in v.items()) + "}"
    if isinstance(v, Range):
        left, right = ("[" if v.start_included else "("), ("]" if v.end_included else ")")
        return f"{left}{_literal(v.start)}..{_literal(v.end)}{right}"
    return str(v)


def _literal(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _to_string(v) or "null"


# --------------------------------------------------------------------------------------------- functions

def _str_args(*args: Any) -> bool:
    return all(isinstance(a, str) for a in args)


def _int_arg(v: Any) -> int | None:
    if _is_num(v) and v == v.to_integral_value():
        return int(v)
    return None


def _fn_substring(s: Any, start: Any, length: Any = ...) -> Any:
    st = _int_arg(start)
    if not isinstance(s, str) or st is None or st == 0:
        return None
    chars = list(s)  # code points
    begin = st - 1 if st > 0 else len(chars) + st
    begin = max(begin, 0)
    if length is ...:
        return "".join(chars[begin:])
    ln = _int_arg(length)
    if ln is None or ln < 0:
        return None
    return "".join(chars[begin:begin + ln])


def _fn_matches(s: Any, pattern: Any, flags: Any = "") -> Any:
    if not _str_args(s, pattern, flags):
        return None
    re_flags = 0
    for f in flags:
        mapping = {"i": re.IGNORECASE, "s": re.DOTALL, "m": re.MULTILINE, "x": re.VERBOSE}
        if f not in mapping:
            return None
        re_flags |= mapping[f]
    try:
        return re.search(pattern, s, re_flags) is not None
    except re.error:
        return None


def _fn_number(s: Any, grouping: Any = None, decimal_sep: Any = None) -> Any:
    if not isinstance(s, str):
        return None
    if grouping is not None:
        if not isinstance(grouping, str) or grouping not in (" ", ",", "."):
            return None
        s = s.replace(grouping, "")
    if decimal_sep is not None:
        if not isinstance(decimal_sep, str) or decimal_sep not in (",", ".") or decimal_sep == grouping:
            return None
        s = s.replace(decimal_sep, ".")
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", s.strip()):
        return None
    return Decimal(s.strip())


def _round(mode: str) -> Callable[..., Any]:
    def fn(n: Any, scale: Any = Decimal(0)) -> Any:
        sc = _int_arg(scale)
        if not _is_num(n) or sc is None:
            return None
        try:
            return n.quantize(Decimal(1).scaleb(-sc), rounding=mode, context=_DEC)
        except InvalidOperation:
            return None
    return fn


def _varargs_list(args: tuple[Any, ...]) -> list[Any] | None:
    if len(args) == 1:
        if isinstance(args[0], list):
            return args[0]
        return None if args[0] is None else [args[0]]
    return list(args)


def _fn_minmax(pick_max: bool) -> Callable[..., Any]:
    def fn(*args: Any) -> Any:
        items = _varargs_list(args)
        if not items:
            return None
        best = items[0]
        for x in items[1:]:
            c = _compare(">" if pick_max else "<", x, best)
            if c is None:
                return None
            if c:
                best = x
        if len(items) == 1 and not (_is_num(best) or isinstance(best, str)):
            return None
        return best
    return fn


def _fn_sum(*args: Any) -> Any:
    items = _varargs_list(args)
    if not items or not all(_is_num(x) for x in items):
        return None
    total = Decimal(0)
    for x in items:
        total = _DEC.add(total, x)
    return total


def _fn_count(*args: Any) -> Any:
    items = _varargs_list(args)
    return None if items is None else Decimal(len(items))


def _fn_list_contains(lst: Any, element: Any) -> Any:
    if not isinstance(lst, list):
        return None
    return any(_feel_eq(x, element) is True for x in lst)


def _fn_append(lst: Any, *items: Any) -> Any:
    return [*lst, *items] if isinstance(lst, list) else None


def _fn_distinct(lst: Any) -> Any:
    if not isinstance(lst, list):
        return None
    out: list[Any] = []
    for x in lst:
        if not any(_feel_eq(x, y) is True for y in out):
            out.append(x)
    return out


def _fn_flatten(lst: Any) -> Any:
    if not isinstance(lst, list):
        return None
    out: list[Any] = []
    for x in lst:
        if isinstance(x, list):
            out.extend(_fn_flatten(x))
        else:
            out.append(x)
    return out


def _fn_index_of(lst: Any, match: Any) -> Any:
    if not isinstance(lst, list):
        return None
    return [Decimal(i + 1) for i, x in enumerate(lst) if _feel_eq(x, match) is True]


def _fn_get_value(ctx: Any, key: Any) -> Any:
    keys = key if isinstance(key, list) else [key]
    cur = ctx
    for k in keys:
        if not isinstance(cur, dict) or not isinstance(k, str):
            return None
        cur = cur.get(k)
    return cur


def _fn_context_put(ctx: Any, key: Any, value: Any) -> Any:
    keys = key if isinstance(key, list) else [key]
    if not isinstance(ctx, dict) or not keys or not all(isinstance(k, str) for k in keys):
        return None
    head, rest = keys[0], keys[1:]
    if rest:
        inner = ctx.get(head)
        value = _fn_context_put(inner if isinstance(inner, dict) else {}, rest, value)
    return {**ctx, head: value}


def _str_fn(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any) -> Any:
        return fn(*args) if _str_args(*args) else None
    return wrapped


def _num_fn(fn: Callable[[Decimal], Any]) -> Callable[[Any], Any]:
    def wrapped(n: Any) -> Any:
        return fn(n) if _is_num(n) else None
    return wrapped


def _fn_not(v: Any) -> Any:
    return (not v) if isinstance(v, bool) else None


@dataclass(frozen=True)
class _Builtin:
    impl: Callable[..., Any]
    min_args: int
    max_args: int | None  # None = varargs


BUILTINS: Final[dict[str, _Builtin]] = {
    "not": _Builtin(_fn_not, 1, 1),
    # strings
    "string length": _Builtin(_str_fn(lambda s: Decimal(len(s))), 1, 1),
    "substring": _Builtin(_fn_substring, 2, 3),
    "upper case": _Builtin(_str_fn(str.upper), 1, 1),
    "lower case": _Builtin(_str_fn(str.lower), 1, 1),
    "contains": _Builtin(_str_fn(lambda s, m: m in s), 2, 2),
    "starts with": _Builtin(_str_fn(str.startswith), 2, 2),
    "ends with": _Builtin(_str_fn(str.endswith), 2, 2),
    "matches": _Builtin(_fn_matches, 2, 3),
    "string": _Builtin(_to_string, 1, 1),
    # numbers
    "number": _Builtin(_fn_number, 1, 3),
    "floor": _Builtin(_round(ROUND_FLOOR), 1, 2),
    "ceiling": _Builtin(_round(ROUND_CEILING), 1, 2),
    "abs": _Builtin(_num_fn(lambda n: abs(n)), 1, 1),
    "min": _Builtin(_fn_minmax(False), 1, None),
    "max": _Builtin(_fn_minmax(True), 1, None),
    "sum": _Builtin(_fn_sum, 1, None),
    "count": _Builtin(_fn_count, 1, None),
    # lists
    "list contains": _Builtin(_fn_list_contains, 2, 2),
    "append": _Builtin(_fn_append, 1, None),
    "distinct values": _Builtin(_fn_distinct, 1, 1),
    "flatten": _Builtin(_fn_flatten, 1, 1),
    "index of": _Builtin(_fn_index_of, 2, 2),
    # contexts
    "get value": _Builtin(_fn_get_value, 2, 2),
    "context put": _Builtin(_fn_context_put, 3, 3),
}

# Names FEEL defines that we refuse with a specific message (longest first when matching).
TEMPORAL_FUNCTIONS: Final = frozenset(
    {"date", "time", "date and time", "duration", "years and months duration", "now", "today", "day of week",
     "day of year", "week of year", "month of year", "last day of month"}
)
UNSUPPORTED_FUNCTIONS: Final = frozenset(
    {"mean", "median", "mode", "stddev", "product", "all", "any", "sublist", "concatenate", "insert before",
     "remove", "reverse", "union", "sort", "partition", "string join", "replace", "split", "extract", "trim",
     "substring before", "substring after", "decimal", "round up", "round down", "round half up",
     "round half down", "modulo", "sqrt", "log", "exp", "odd", "even", "is defined", "get entries",
     "context merge", "context", "is empty", "uuid", "to base64", "from json", "to json", "is", "random number",
     "list replace", "duplicate values", "instance of", "met by", "overlaps", "before", "after", "includes",
     "during", "starts", "finishes", "coincides", "meets", "overlaps before", "overlaps after", "finished by",
     "started by", "string format"}
)
_MULTIWORD: Final = sorted(
    (n for n in (*BUILTINS, *TEMPORAL_FUNCTIONS, *UNSUPPORTED_FUNCTIONS) if " " in n),
    key=lambda n: -len(n.split()),
)


# --------------------------------------------------------------------------------------------------- AST

class _Scope:
    __slots__ = ("_raw", "parent", "values")

    def __init__(self, values: Mapping[str, Any], parent: _Scope | None = None, *, raw: bool = False) -> None:
        self.values = values
        self.parent = parent
        self._raw = raw  # raw: values are plain Python (the caller's variables), converted on lookup

    def lookup(self, name: str) -> Any:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.values:
                v = scope.values[name]
                return _from_py(v) if scope._raw else v
            scope = scope.parent
        return None


class Node:
    pos: int

    def eval(self, scope: _Scope) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def walk(self) -> Iterator[Node]:
        yield self


@dataclass
class Literal(Node):
    value: Any
    pos: int

    def eval(self, scope: _Scope) -> Any:
        return self.value


@dataclass
class Name(Node):
    name: str
    pos: int

    def eval(self, scope: _Scope) -> Any:
        return scope.lookup(self.name)


@dataclass
class Path(Node):
    target: Node
    key: str
    pos: int

    def eval(self, scope: _Scope) -> Any:
        return _path(self.target.eval(scope), self.key)

    def walk(self) -> Iterator[Node]:
        yield self
        yield from self.target.walk()


def _path(v: Any, key: str) -> Any:
    if isinstance(v, dict):
        return v.get(key)
    if isinstance(v, list):
        return [_path(x, key) for x in v]
    return None


@dataclass
class Filter(Node):
    target: Node
    condition: Node
    pos: int

    def eval(self, scope: _Scope) -> Any:
        v = self.target.eval(scope)
        if v is None:
            return None
        items = v if isinstance(v, list) else [v]
        outer = self.condition.eval(scope)
        if _is_num(outer):
            idx = _int_arg(outer)
            if idx is None or idx == 0 or abs(idx) > len(items):
                return None
            return items[idx - 1] if idx > 0 else items[idx]
        out = []
        for item in items:
            values = dict(item) if isinstance(item, dict) else {}
            values["item"] = item
            if self.condition.eval(_Scope(values, scope)) is True:
                out.append(item)
        return out

    def walk(self) -> Iterator[Node]:
        yield self
        yield from self.target.walk()
        yield from self.condition.walk()


@dataclass
class Call(Node):
    function: str
    args: list[Node]
    pos: int

    def eval(self, scope: _Scope) -> Any:
        values = [a.eval(scope) for a in self.args]
        try:
            return BUILTINS[self.function].impl(*values)
        except (TypeError, ValueError, ArithmeticError):
            return None

    def walk(self) -> Iterator[Node]:
        yield self
        for a in self.args:
            yield from a.walk()


@dataclass
class Unary(Node):
    operand: Node
    pos: int

    def eval(self, scope: _Scope) -> Any:
        v = self.operand.eval(scope)
        return _DEC.minus(v) if _is_num(v) else None

    def walk(self) -> Iterator[Node]:
        yield self
        yield from self.operand.walk()


@dataclass
class Binary(Node):
    op: str
    left: Node
    right: Node
    pos: int

    def eval(self, scope: _Scope) -> Any:
        if self.op == "and":
            a = self.left.eval(scope)
            if a is False:
                return False
            return _and3(a, self.right.eval(scope))
        if self.op == "or":
            a = self.left.eval(scope)
            if a is True:
                return True
            return _or3(a, self.right.eval(scope))
        a, b = self.left.eval(scope), self.right.eval(scope)
        if self.op in ("=", "!=", "<", "<=", ">", ">="):
            return _compare(self.op, a, b)
        return _arith(self.op, a, b)

    def walk(self) -> Iterator[Node]:
        yield self
        yield from self.left.walk()
        yield from self.right.walk()


@dataclass
class Between(Node):
    value: Node
    low: Node
    high: Node
    pos: int

    def eval(self, scope: _Scope) -> Any:
        v = self.value.eval(scope)
        return _and3(_compare(">=", v, self.low.eval(scope)), _compare("<=", v, self.high.eval(scope)))

    def walk(self) -> Iterator[Node]:
        yield self
        for n in (self.value, self.low, self.high):
            yield from n.walk()


@dataclass
class In(Node):
    value: Node
    test: Node
    pos: int
    test_op: str | None = None  # `x in < 5`: a unary comparison test

    def eval(self, scope: _Scope) -> Any:
        v = self.value.eval(scope)
        t = self.test.eval(scope)
        if self.test_op is not None:
            return _compare(self.test_op, v, t)
        if isinstance(t, list):
            return _any3(_matches_test(v, x) for x in t)
        return _matches_test(v, t)

    def walk(self) -> Iterator[Node]:
        yield self
        yield from self.value.walk()
        yield from self.test.walk()


@dataclass
class ListLit(Node):
    items: list[Node]
    pos: int

    def eval(self, scope: _Scope) -> Any:
        return [i.eval(scope) for i in self.items]

    def walk(self) -> Iterator[Node]:
        yield self
        for i in self.items:
            yield from i.walk()


@dataclass
class RangeLit(Node):
    start: Node
    end: Node
    start_included: bool
    end_included: bool
    pos: int

    def eval(self, scope: _Scope) -> Any:
        return Range(self.start.eval(scope), self.end.eval(scope), self.start_included, self.end_included)

    def walk(self) -> Iterator[Node]:
        yield self
        yield from self.start.walk()
        yield from self.end.walk()


@dataclass
class ContextLit(Node):
    entries: list[tuple[str, Node]]
    pos: int

    def eval(self, scope: _Scope) -> Any:
        result: dict[str, Any] = {}
        inner = _Scope(result, scope)  # later entries may refer to earlier ones
        for key, node in self.entries:
            result[key] = node.eval(inner)
        return result

    def walk(self) -> Iterator[Node]:
        yield self
        for _, n in self.entries:
            yield from n.walk()


@dataclass
class If(Node):
    condition: Node
    then: Node
    otherwise: Node
    pos: int

    def eval(self, scope: _Scope) -> Any:
        return self.then.eval(scope) if self.condition.eval(scope) is True else self.otherwise.eval(scope)

    def walk(self) -> Iterator[Node]:
        yield self
        for n in (self.condition, self.then, self.otherwise):
            yield from n.walk()


# ------------------------------------------------------------------------------------------------ parser

_COMPARISON: Final = frozenset({"=", "!=", "<", "<=", ">", ">="})


class _Parser:
    def __init__(self, tokens: list[Token], original: str) -> None:
        self.tokens = tokens
        self.i = 0
        self.original = original
        self.in_range_end = False  # '[' after a range's end closes the range (`[1..5[`), it is not a filter

    # helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def advance(self) -> Token:
        t = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return t

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.value in ops

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == "name" and self.tok.value in words

    def error(self, message: str, tok: Token | None = None) -> FeelError:
        return FeelError(message, (tok or self.tok).pos, self.original)

    def describe(self, t: Token) -> str:
        if t.kind == "eof":
            return "end of expression"
        if t.kind == "str":
            return f"string {_literal(t.value)}"
        return f"{'name' if t.kind == 'name' else 'number' if t.kind == 'num' else 'symbol'} '{t.value}'"

    def expect_op(self, op: str, context: str) -> Token:
        if not self.is_op(op):
            raise self.error(f"expected '{op}' {context}, found {self.describe(self.tok)}")
        return self.advance()

    def expect_kw(self, word: str, context: str) -> Token:
        if not self.is_kw(word):
            raise self.error(f"expected '{word}' {context}, found {self.describe(self.tok)}")
        return self.advance()

    # grammar
    def parse(self) -> Node:
        node = self.expression()
        if self.tok.kind != "eof":
            raise self.error(f"unexpected {self.describe(self.tok)}")
        return node

    def expression(self) -> Node:
        return self.disjunction()

    def nested_expression(self) -> Node:
        """An expression inside brackets, parentheses or braces: filters are allowed again there."""
        outer, self.in_range_end = self.in_range_end, False
        try:
            return self.expression()
        finally:
            self.in_range_end = outer

    def disjunction(self) -> Node:
        left = self.conjunction()
        while self.is_kw("or"):
            t = self.advance()
            left = Binary("or", left, self.conjunction(), t.pos)
        return left

    def conjunction(self) -> Node:
        left = self.comparison()
        while self.is_kw("and"):
            t = self.advance()
            left = Binary("and", left, self.comparison(), t.pos)
        return left

    def comparison(self) -> Node:
        left = self.additive()
        t = self.tok
        if t.kind == "op" and t.value in _COMPARISON:
            self.advance()
            node: Node = Binary(t.value, left, self.additive(), t.pos)
        elif self.is_kw("between"):
            self.advance()
            low = self.additive()
            self.expect_kw("and", "in 'between ... and ...'")
            node = Between(left, low, self.additive(), t.pos)
        elif self.is_kw("in"):
            self.advance()
            if self.tok.kind == "op" and self.tok.value in _COMPARISON:
                op = self.advance().value
                node = In(left, self.additive(), t.pos, test_op=op)
            else:
                if self.is_op("(") and self._paren_list_ahead():
                    raise self.error("parenthesized test lists 'x in (a, b)' are not supported; use 'x in [a, b]'")
                node = In(left, self.additive(), t.pos)
        elif self.is_kw("instance"):
            raise self.error("'instance of' is not supported")
        else:
            return left
        if (self.tok.kind == "op" and self.tok.value in _COMPARISON) or self.is_kw("between", "in"):
            raise self.error(f"chained comparison with '{self.tok.value}' is not FEEL; use 'and'")
        return node

    def _paren_list_ahead(self) -> bool:
        depth, k = 0, self.i
        while k < len(self.tokens):
            t = self.tokens[k]
            if t.kind == "op" and t.value in "([{":
                depth += 1
            elif t.kind == "op" and t.value in ")]}":
                depth -= 1
                if depth == 0:
                    return False
            elif t.kind == "op" and t.value == "," and depth == 1:
                return True
            k += 1
        return False

    def additive(self) -> Node:
        left = self.multiplicative()
        while self.is_op("+", "-"):
            t = self.advance()
            left = Binary(t.value, left, self.multiplicative(), t.pos)
        return left

    def multiplicative(self) -> Node:
        left = self.exponent()
        while self.is_op("*", "/"):
            t = self.advance()
            left = Binary(t.value, left, self.exponent(), t.pos)
        return left

    def exponent(self) -> Node:
        left = self.unary()
        while self.is_op("**"):
            t = self.advance()
            left = Binary("**", left, self.unary(), t.pos)
        return left

    def unary(self) -> Node:
        if self.is_op("-"):
            t = self.advance()
            operand = self.unary()
            if isinstance(operand, Literal) and _is_num(operand.value):
                return Literal(-operand.value, t.pos)
            return Unary(operand, t.pos)
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        while True:
            if self.is_op("."):
                t = self.advance()
                if self.tok.kind == "str":
                    raise self.error("quoted path segments are not supported; use get value(ctx, \"key\")")
                if self.tok.kind != "name" or self.tok.value in KEYWORDS:
                    raise self.error(f"expected a name after '.', found {self.describe(self.tok)}")
                node = Path(node, self.advance().value, t.pos)
            elif self.is_op("[") and not self.in_range_end:
                t = self.advance()
                cond = self.nested_expression()
                self.expect_op("]", "to close the filter")
                node = Filter(node, cond, t.pos)
            elif self.is_op("("):
                raise self.error("only built-in functions can be invoked")
            else:
                return node

    def primary(self) -> Node:
        t = self.tok
        if t.kind == "num":
            self.advance()
            try:
                return Literal(Decimal(t.value), t.pos)
            except InvalidOperation:
                raise self.error(f"invalid number '{t.value}'", t) from None
        if t.kind == "str":
            self.advance()
            return Literal(t.value, t.pos)
        if t.kind == "op":
            if t.value == "[":
                return self.list_or_range()
            if t.value == "(":
                return self.paren_or_range()
            if t.value == "]":
                return self.range_open_start()
            if t.value == "{":
                return self.context()
            raise self.error(f"unexpected {self.describe(t)}")
        if t.kind == "eof":
            raise self.error("unexpected end of expression")
        # names and keywords
        word = t.value
        if word == "true" or word == "false":
            self.advance()
            return Literal(word == "true", t.pos)
        if word == "null":
            self.advance()
            return Literal(None, t.pos)
        if word == "if":
            self.advance()
            cond = self.expression()
            self.expect_kw("then", "after 'if' condition")
            then = self.expression()
            self.expect_kw("else", "after 'then' branch")
            return If(cond, then, self.expression(), t.pos)
        if word == "for":
            raise self.error("'for' loops ('for x in ... return ...') are not supported")
        if word in ("some", "every"):
            raise self.error(f"quantified expressions ('{word} x in ... satisfies ...') are not supported")
        if word == "function":
            raise self.error("function definitions are not supported")
        fn = self.function_name()
        if fn is not None:
            return self.call(fn, t)
        if word in KEYWORDS:
            raise self.error(f"unexpected keyword '{word}'")
        self.advance()
        return Name(word, t.pos)

    def function_name(self) -> str | None:
        """A (possibly multi-word) function name at the cursor if it is followed by '('."""
        words = [self.tok.value]
        k = 1
        while self.peek(k).kind == "name" and k < 5:
            words.append(self.peek(k).value)
            k += 1
        for n in range(len(words), 0, -1):
            candidate = " ".join(words[:n])
            if self.peek(n).kind == "op" and self.peek(n).value == "(" and (
                n == 1 or candidate in _MULTIWORD
            ):
                return candidate
        return None

    def call(self, name: str, start: Token) -> Node:
        if name in TEMPORAL_FUNCTIONS:
            raise self.error(f"temporal function '{name}' is not supported", start)
        if name in UNSUPPORTED_FUNCTIONS:
            raise self.error(f"function '{name}' is not in the supported FEEL subset", start)
        if name not in BUILTINS:
            raise self.error(f"unknown function '{name}'", start)
        self.i += len(name.split())
        self.expect_op("(", "after function name")
        args: list[Node] = []
        if not self.is_op(")"):
            while True:
                if self.tok.kind == "name" and self.peek().kind == "op" and self.peek().value == ":":
                    raise self.error(f"named arguments ('{self.tok.value}: ...') are not supported")
                args.append(self.nested_expression())
                if self.is_op(","):
                    self.advance()
                    continue
                break
        self.expect_op(")", f"to close the call of '{name}'")
        b = BUILTINS[name]
        if len(args) < b.min_args or (b.max_args is not None and len(args) > b.max_args):
            expected = (f"{b.min_args}" if b.min_args == b.max_args else
                        f"{b.min_args} or more" if b.max_args is None else f"{b.min_args} to {b.max_args}")
            noun = "argument" if expected == "1" else "arguments"
            raise self.error(f"function '{name}' takes {expected} {noun}, got {len(args)}", start)
        return Call(name, args, start.pos)

    def list_or_range(self) -> Node:
        t = self.advance()  # '['
        if self.is_op("]"):
            self.advance()
            return ListLit([], t.pos)
        first = self.nested_expression()
        if self.is_op(".."):
            return self.range_rest(first, True, t)
        items = [first]
        while self.is_op(","):
            self.advance()
            items.append(self.nested_expression())
        self.expect_op("]", "to close the list")
        return ListLit(items, t.pos)

    def paren_or_range(self) -> Node:
        t = self.advance()  # '('
        inner = self.nested_expression()
        if self.is_op(".."):
            return self.range_rest(inner, False, t)
        self.expect_op(")", "to close the parenthesis")
        return inner

    def range_open_start(self) -> Node:
        t = self.advance()  # ']'
        start = self.nested_expression()
        if not self.is_op(".."):
            raise self.error("expected '..' in range")
        return self.range_rest(start, False, t)

    def range_rest(self, start: Node, start_included: bool, t: Token) -> Node:
        self.expect_op("..", "in range")
        outer, self.in_range_end = self.in_range_end, True
        try:
            end = self.expression()
        finally:
            self.in_range_end = outer
        if self.is_op("]"):
            self.advance()
            return RangeLit(start, end, start_included, True, t.pos)
        if self.is_op(")", "["):
            self.advance()
            return RangeLit(start, end, start_included, False, t.pos)
        raise self.error(f"expected ']', ')' or '[' to close the range, found {self.describe(self.tok)}")

    def context(self) -> Node:
        t = self.advance()  # '{'
        entries: list[tuple[str, Node]] = []
        if self.is_op("}"):
            self.advance()
            return ContextLit(entries, t.pos)
        while True:
            key_tok = self.tok
            if self.tok.kind == "str":
                key = self.advance().value
            elif self.tok.kind == "name":
                words = []
                while self.tok.kind == "name":
                    words.append(self.advance().value)
                key = " ".join(words)
            else:
                raise self.error(f"expected a context key, found {self.describe(self.tok)}")
            if any(k == key for k, _ in entries):
                raise self.error(f"duplicate context key {key!r}", key_tok)
            self.expect_op(":", f"after context key {key!r}")
            entries.append((key, self.nested_expression()))
            if self.is_op(","):
                self.advance()
                continue
            self.expect_op("}", "to close the context")
            return ContextLit(entries, t.pos)


# --------------------------------------------------------------------------------------------- public API

@dataclass(frozen=True)
class Expression:
    """A compiled FEEL expression. `source` is the text as written (with any leading '=')."""

    source: str
    ast: Node = field(repr=False, compare=False)

    @property
    def variables(self) -> frozenset[str]:
        """Names the expression reads as variables (including names inside filters and context entries)."""
        return frozenset(n.name for n in self.ast.walk() if isinstance(n, Name))

    def evaluate(self, variables: Mapping[str, Any] | None = None) -> Any:
        """The value, as plain Python (numbers as int/float, lists, dicts, str, bool, None)."""
        return _to_py(self.ast.eval(_Scope(variables or {}, raw=True)))

    def test(self, variables: Mapping[str, Any] | None = None) -> bool:
        """As a condition: only `true` counts; false, null and non-booleans are false."""
        return self.ast.eval(_Scope(variables or {}, raw=True)) is True


def compile_feel(text: str) -> Expression:
    """Parse a FEEL expression (a leading '=' as in Zeebe BPMN is stripped). Raises FeelError."""
    body, offset = text, 0
    stripped = body.lstrip()
    if stripped.startswith("="):
        offset = len(body) - len(stripped) + 1
        body = stripped[1:]
    if not body.strip():
        raise FeelError("empty expression", len(text), text)
    tokens = _tokenize(body, offset, text)
    try:
        return Expression(text, _Parser(tokens, text).parse())
    except RecursionError:
        raise FeelError("expression nested too deeply", 0, text) from None


def evaluate(text: str, variables: Mapping[str, Any] | None = None) -> Any:
    """Compile and evaluate in one step (compile once and reuse `Expression` on hot paths)."""
    return compile_feel(text).evaluate(variables)


def is_true(value: Any) -> bool:
    """FEEL condition semantics: only `true` is true; null counts as false."""
    return value is True
