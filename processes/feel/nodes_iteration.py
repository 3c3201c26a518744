"""Syntax-tree nodes that bind names: `for`, `some`/`every` and lambdas `function(a, b) ...`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from processes.feel.nodes import Name, Node, Scope
from processes.feel.values import Function, Range, from_py, int_arg

# An expression's loops may take this many steps in all; past it the expression is null. A range bound read
# from a process variable (`for i in 1..n`) must not let one evaluation stall the engine or fill its memory.
MAX_STEPS: Final = 100_000


@dataclass
class Iteration:
    """One `name in domain` of a for, some or every expression (domain: a list, or a range of integers)."""

    name: str
    domain: Node


def _domain_items(v: Any) -> list[Any] | None:
    if isinstance(v, list):
        return v
    if isinstance(v, Range):
        start, end = int_arg(v.start), int_arg(v.end)
        if start is None or end is None:
            return None
        step = 1 if end >= start else -1
        first = start if v.start_included else start + step
        last = end if v.end_included else end - step
        if (last - first) * step < 0:
            return []
        if abs(last - first) >= MAX_STEPS:
            return None
        return [from_py(i) for i in range(first, last + step, step)]
    return None if v is None else [v]


def _bindings(iterations: list[Iteration], scope: Scope, budget: list[int] | None = None) -> Iterator[Scope] | None:
    """Every combination of the iteration variables (the first varies slowest), as scopes; None on a bad domain.
    `budget` counts the steps taken across the nesting (MAX_STEPS in all)."""
    budget = [0] if budget is None else budget
    first, rest = iterations[0], iterations[1:]
    items = _domain_items(first.domain.eval(scope))
    if items is None:
        return None

    def combos() -> Iterator[Scope]:
        for item in items:
            budget[0] += 1
            if budget[0] > MAX_STEPS:
                raise _BadDomain
            inner = Scope({first.name: item}, scope)
            if not rest:
                yield inner
                continue
            nested = _bindings(rest, inner, budget)
            if nested is None:
                raise _BadDomain
            yield from nested
    return combos()


class _BadDomain(Exception):
    """A nested domain that is not a list or an integer range, or too many steps: the whole expression is null."""


@dataclass
class For(Node):
    """`for x in xs, y in 1..3 return e`: a list; `partial` is the list built so far."""

    iterations: list[Iteration]
    body: Node
    pos: int

    def eval(self, scope: Scope) -> Any:
        out: list[Any] = []
        bindings = _bindings(self.iterations, scope)
        if bindings is None:
            return None
        try:
            for inner in bindings:
                out.append(self.body.eval(Scope({"partial": out}, inner)))
        except _BadDomain:
            return None
        return out

    def walk(self) -> Iterator[Node]:
        yield self
        bound = {it.name for it in self.iterations} | {"partial"}
        for it in self.iterations:
            yield from it.domain.walk()
        yield from (n for n in self.body.walk() if not (isinstance(n, Name) and n.name in bound))


@dataclass
class Quantified(Node):
    """`some x in xs satisfies c` / `every x in xs satisfies c`."""

    every: bool
    iterations: list[Iteration]
    condition: Node
    pos: int

    def eval(self, scope: Scope) -> Any:
        bindings = _bindings(self.iterations, scope)
        if bindings is None:
            return None
        try:
            for inner in bindings:
                holds = self.condition.eval(inner) is True
                if holds != self.every:
                    return not self.every
        except _BadDomain:
            return None
        return self.every

    def walk(self) -> Iterator[Node]:
        yield self
        bound = {it.name for it in self.iterations}
        for it in self.iterations:
            yield from it.domain.walk()
        yield from (n for n in self.condition.walk() if not (isinstance(n, Name) and n.name in bound))


@dataclass
class FunctionLit(Node):
    """`function(a, b) a < b`: a lambda, passed to built-ins such as `sort`."""

    params: list[str]
    body: Node
    pos: int

    def eval(self, scope: Scope) -> Any:
        params, body = tuple(self.params), self.body

        def call(args: list[Any]) -> Any:
            if len(args) != len(params):
                return None
            return body.eval(Scope(dict(zip(params, args, strict=True)), scope))
        return Function(params, call)

    def walk(self) -> Iterator[Node]:
        yield self
        for n in self.body.walk():
            if not (isinstance(n, Name) and n.name in self.params):
                yield n
