"""The FEEL syntax tree: each node evaluates itself in a scope; runtime problems give null, never raise."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import InvalidOperation
from typing import Any

from processes.feel.builtins import BUILTINS
from processes.feel.temporal import is_temporal, temporal_property
from processes.feel.values import (
    Range,
    and3,
    any3,
    arith,
    compare,
    from_py,
    instance_of,
    int_arg,
    is_num,
    matches_test,
    negate,
    or3,
)


class Scope:
    """Variables visible to an expression: a chain of mappings, innermost first."""

    __slots__ = ("_raw", "parent", "values")

    def __init__(self, values: Mapping[str, Any], parent: Scope | None = None, *, raw: bool = False) -> None:
        self.values = values
        self.parent = parent
        self._raw = raw  # raw: values are plain Python (the caller's variables), converted on lookup

    def has(self, name: str) -> bool:
        """Whether a variable of this name exists (with any value, null included)."""
        scope: Scope | None = self
        while scope is not None:
            if name in scope.values:
                return True
            scope = scope.parent
        return False

    def lookup(self, name: str) -> Any:
        """The variable's value; null when it does not exist."""
        scope: Scope | None = self
        while scope is not None:
            if name in scope.values:
                v = scope.values[name]
                return from_py(v) if scope._raw else v
            scope = scope.parent
        return None


class Node:
    """A node of the syntax tree; `pos` is its offset in the source text."""

    pos: int

    def eval(self, scope: Scope) -> Any:  # pragma: no cover - abstract
        """The node's FEEL value in scope."""
        raise NotImplementedError

    def walk(self) -> Iterator[Node]:
        """This node and every node below it."""
        yield self


@dataclass
class Literal(Node):
    """A constant: number, string, boolean, null or a temporal literal."""

    value: Any
    pos: int

    def eval(self, scope: Scope) -> Any:
        return self.value


@dataclass
class Name(Node):
    """A variable reference (null when it does not exist)."""

    name: str
    pos: int

    def eval(self, scope: Scope) -> Any:
        return scope.lookup(self.name)


@dataclass
class Path(Node):
    """`target.key`: a context entry, a property of a temporal value or range, or a map over a list."""

    target: Node
    key: str
    pos: int

    def eval(self, scope: Scope) -> Any:
        return _path(self.target.eval(scope), self.key)

    def walk(self) -> Iterator[Node]:
        yield self
        yield from self.target.walk()


_RANGE_PROPERTIES = {"start": "start", "end": "end", "start included": "start_included",
                     "end included": "end_included"}


def _path(v: Any, key: str) -> Any:
    if isinstance(v, dict):
        return v.get(key)
    if isinstance(v, list):
        return [_path(x, key) for x in v]
    if is_temporal(v):
        return temporal_property(v, key)
    if isinstance(v, Range) and key in _RANGE_PROPERTIES:
        return getattr(v, _RANGE_PROPERTIES[key])
    return None


@dataclass
class Filter(Node):
    """`list[condition]` or `list[index]`."""

    target: Node
    condition: Node
    pos: int

    def eval(self, scope: Scope) -> Any:
        v = self.target.eval(scope)
        if v is None:
            return None
        items = v if isinstance(v, list) else [v]
        outer = self.condition.eval(scope)
        if is_num(outer):
            idx = int_arg(outer)
            if idx is None or idx == 0 or abs(idx) > len(items):
                return None
            return items[idx - 1] if idx > 0 else items[idx]
        out = []
        for item in items:
            values = dict(item) if isinstance(item, dict) else {}
            values["item"] = item
            if self.condition.eval(Scope(values, scope)) is True:
                out.append(item)
        return out

    def walk(self) -> Iterator[Node]:
        yield self
        yield from self.target.walk()
        yield from self.condition.walk()


@dataclass
class Call(Node):
    """A call of a built-in function."""

    function: str
    args: list[Node]
    pos: int

    def eval(self, scope: Scope) -> Any:
        values = [a.eval(scope) for a in self.args]
        try:
            return BUILTINS[self.function].impl(*values)
        except (TypeError, ValueError, ArithmeticError, InvalidOperation):
            return None  # FEEL: a function applied to arguments it does not accept is null

    def walk(self) -> Iterator[Node]:
        yield self
        for a in self.args:
            yield from a.walk()


@dataclass
class Unary(Node):
    """Unary minus."""

    operand: Node
    pos: int

    def eval(self, scope: Scope) -> Any:
        v = self.operand.eval(scope)
        return negate(v)

    def walk(self) -> Iterator[Node]:
        yield self
        yield from self.operand.walk()


@dataclass
class Binary(Node):
    """An arithmetic, comparison, `and` or `or` operator."""

    op: str
    left: Node
    right: Node
    pos: int

    def eval(self, scope: Scope) -> Any:
        if self.op == "and":
            a = self.left.eval(scope)
            if a is False:
                return False
            return and3(a, self.right.eval(scope))
        if self.op == "or":
            a = self.left.eval(scope)
            if a is True:
                return True
            return or3(a, self.right.eval(scope))
        a, b = self.left.eval(scope), self.right.eval(scope)
        if self.op in ("=", "!=", "<", "<=", ">", ">="):
            return compare(self.op, a, b)
        return arith(self.op, a, b)

    def walk(self) -> Iterator[Node]:
        yield self
        yield from self.left.walk()
        yield from self.right.walk()


@dataclass
class Between(Node):
    """`value between low and high`."""

    value: Node
    low: Node
    high: Node
    pos: int

    def eval(self, scope: Scope) -> Any:
        v = self.value.eval(scope)
        return and3(compare(">=", v, self.low.eval(scope)), compare("<=", v, self.high.eval(scope)))

    def walk(self) -> Iterator[Node]:
        yield self
        for n in (self.value, self.low, self.high):
            yield from n.walk()


@dataclass
class In(Node):
    """`value in tests` (a value, a list, a range or a unary comparison)."""

    value: Node
    test: Node
    pos: int
    test_op: str | None = None  # `x in < 5`: a unary comparison test

    def eval(self, scope: Scope) -> Any:
        v = self.value.eval(scope)
        t = self.test.eval(scope)
        if self.test_op is not None:
            return compare(self.test_op, v, t)
        if isinstance(t, list):
            return any3(matches_test(v, x) for x in t)
        return matches_test(v, t)

    def walk(self) -> Iterator[Node]:
        yield self
        yield from self.value.walk()
        yield from self.test.walk()


@dataclass
class InstanceOf(Node):
    """`value instance of type`."""

    value: Node
    type_name: str
    pos: int

    def eval(self, scope: Scope) -> Any:
        return instance_of(self.value.eval(scope), self.type_name)

    def walk(self) -> Iterator[Node]:
        yield self
        yield from self.value.walk()


@dataclass
class ListLit(Node):
    """`[a, b, c]`."""

    items: list[Node]
    pos: int

    def eval(self, scope: Scope) -> Any:
        return [i.eval(scope) for i in self.items]

    def walk(self) -> Iterator[Node]:
        yield self
        for i in self.items:
            yield from i.walk()


@dataclass
class RangeLit(Node):
    """`[a..b]` and its open-ended forms."""

    start: Node
    end: Node
    start_included: bool
    end_included: bool
    pos: int

    def eval(self, scope: Scope) -> Any:
        return Range(self.start.eval(scope), self.end.eval(scope), self.start_included, self.end_included)

    def walk(self) -> Iterator[Node]:
        yield self
        yield from self.start.walk()
        yield from self.end.walk()


@dataclass
class ContextLit(Node):
    """`{key: value, ...}`; an entry may read the entries before it."""

    entries: list[tuple[str, Node]]
    pos: int

    def eval(self, scope: Scope) -> Any:
        result: dict[str, Any] = {}
        inner = Scope(result, scope)  # later entries may refer to earlier ones
        for key, node in self.entries:
            result[key] = node.eval(inner)
        return result

    def walk(self) -> Iterator[Node]:
        yield self
        for _, n in self.entries:
            yield from n.walk()


@dataclass
class If(Node):
    """`if c then a else b`."""

    condition: Node
    then: Node
    otherwise: Node
    pos: int

    def eval(self, scope: Scope) -> Any:
        return self.then.eval(scope) if self.condition.eval(scope) is True else self.otherwise.eval(scope)

    def walk(self) -> Iterator[Node]:
        yield self
        for n in (self.condition, self.then, self.otherwise):
            yield from n.walk()




@dataclass
class IsDefined(Node):
    """`is defined(x)`: false only when x names a variable or context entry that does not exist."""

    value: Node
    pos: int

    def eval(self, scope: Scope) -> Any:
        return _defined(self.value, scope)

    def walk(self) -> Iterator[Node]:
        yield self
        yield from self.value.walk()


def _defined(node: Node, scope: Scope) -> bool:
    if isinstance(node, Name):
        return scope.has(node.name)
    if isinstance(node, Path):
        if not _defined(node.target, scope):
            return False
        target = node.target.eval(scope)
        return not isinstance(target, dict) or node.key in target
    return True
