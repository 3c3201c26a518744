"""FEEL unary tests, the cells of a DMN decision table's input columns: `< 10`, `[1..5]`, `"a", "b"`, `-`,
`not("x")`, `date("2026-01-01")`, `? > limit` (an expression that reads `?`, the input value, is a condition).

`compile_unary_tests(text)` raises FeelError for anything that is not unary-test syntax; `matches(value)` says
whether the input value passes (only true counts, as for a condition).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from processes.feel.lexer import FeelError, tokenize
from processes.feel.nodes import In, Name, Node, Scope
from processes.feel.parser import COMPARISON, Parser
from processes.feel.values import any3, from_py, matches_test

__all__ = ["UnaryTests", "compile_unary_tests"]

INPUT = "?"


@dataclass
class _Test:
    """One positive unary test: a comparison with the input, or an expression to match (or, reading `?`, to hold)."""

    node: Node
    reads_input: bool

    def holds(self, scope: Scope) -> bool | None:
        value = self.node.eval(scope)
        if self.reads_input:
            return value if isinstance(value, bool) else None
        given = scope.lookup(INPUT)
        if isinstance(value, list):
            return any3(matches_test(given, v) for v in value)
        return matches_test(given, value)


@dataclass(frozen=True)
class UnaryTests:
    """Compiled unary tests. `source` is the cell text."""

    source: str
    tests: tuple[_Test, ...] = field(repr=False, compare=False)
    negated: bool = field(default=False, compare=False)
    any_input: bool = field(default=False, compare=False)

    @property
    def variables(self) -> frozenset[str]:
        """Names the tests read besides the input value."""
        return frozenset(n.name for t in self.tests for n in t.node.walk() if isinstance(n, Name) and n.name != INPUT)

    def matches(self, value: Any, variables: Mapping[str, Any] | None = None) -> bool:
        """Whether the input value passes: `-` always; a list of tests if any holds; `not(...)` if none does."""
        if self.any_input:
            return True
        scope = Scope({INPUT: from_py(value)}, Scope(variables or {}, raw=True))
        result = any3(t.holds(scope) for t in self.tests)
        if self.negated:
            return result is False
        return result is True


class _UnaryParser(Parser):
    """The unary-tests grammar on top of the expression parser."""

    def unary_tests(self) -> tuple[list[_Test], bool, bool]:
        if self.is_op("-") and self.peek().kind == "eof":
            return [], False, True
        if self.is_kw("not") and self.peek().kind == "op" and self.peek().value == "(" and self._closes_at_end():
            self.advance()
            self.advance()
            tests = self.positive_tests(")")
            self.expect_op(")", "to close 'not('")
            if self.tok.kind != "eof":
                raise self.error(f"unexpected {self.describe(self.tok)}")
            return tests, True, False
        tests = self.positive_tests("eof")
        if self.tok.kind != "eof":
            raise self.error(f"unexpected {self.describe(self.tok)}")
        return tests, False, False

    def _closes_at_end(self) -> bool:
        """Whether the '(' after `not` closes at the very end (else `not(x) = y` is an expression)."""
        depth, k = 0, self.i + 1
        while k < len(self.tokens):
            t = self.tokens[k]
            if t.kind == "op" and t.value in "([{":
                depth += 1
            elif t.kind == "op" and t.value in ")]}":
                depth -= 1
                if depth == 0:
                    return self.tokens[k + 1].kind == "eof"
            k += 1
        return False

    def positive_tests(self, closing: str) -> list[_Test]:
        tests = [self.positive_test()]
        while self.is_op(","):
            self.advance()
            tests.append(self.positive_test())
        if closing == ")" and not self.is_op(")"):
            raise self.error(f"expected ',' or ')', found {self.describe(self.tok)}")
        return tests

    def positive_test(self) -> _Test:
        t = self.tok
        if t.kind == "op" and t.value in COMPARISON:
            self.advance()
            endpoint = self.additive()
            return _Test(In(Name(INPUT, t.pos), endpoint, t.pos, test_op=t.value), reads_input=True)
        node = self.nested_expression()
        return _Test(node, reads_input=any(isinstance(n, Name) and n.name == INPUT for n in node.walk()))


def compile_unary_tests(text: str) -> UnaryTests:
    """Parse a decision-table input cell (empty or `-` matches anything). Raises FeelError."""
    if not text.strip():
        return UnaryTests(text, (), any_input=True)
    tokens = tokenize(text, 0, text, placeholder=True)
    try:
        tests, negated, any_input = _UnaryParser(tokens, text).unary_tests()
    except RecursionError:
        raise FeelError("unary tests nested too deeply", 0, text) from None
    return UnaryTests(text, tuple(tests), negated=negated, any_input=any_input)
