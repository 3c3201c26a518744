"""FEEL (DMN 1.4 "Friendly Enough Expression Language") for BPMN conditions, mappings, scripts and headers.

The package: `lexer` (tokens), `parser` (syntax tree, refusing what we do not support with a position),
`nodes` (evaluation), `values` (equality, order, arithmetic), `temporal` (dates, times, durations) and the
`builtins*` function library. Anything outside the supported language is refused at compile time with a
`FeelError`, so a process that deploys never meets an unsupported expression at run time; runtime problems
(wrong types, division by zero, a missing variable, a bad date) give null, as FEEL defines. docs/feel.md lists
what is supported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from processes.feel.builtins_temporal import feel_clock
from processes.feel.lexer import FeelError, tokenize
from processes.feel.nodes import Name, Node, Scope
from processes.feel.parser import Parser
from processes.feel.temporal import YearsMonths
from processes.feel.unary import UnaryTests, compile_unary_tests
from processes.feel.values import Function, Range, to_py

__all__ = ["Expression", "FeelError", "Function", "Range", "UnaryTests", "YearsMonths", "compile_feel",
           "compile_unary_tests", "evaluate", "feel_clock", "is_true"]


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
        """The value as JSON-ready Python: numbers int/float, temporal values ISO-8601 strings."""
        return to_py(self.value(variables))

    def value(self, variables: Mapping[str, Any] | None = None) -> Any:
        """The FEEL value itself: numbers `Decimal`, temporal values as datetime types or `YearsMonths`."""
        return self.ast.eval(Scope(variables or {}, raw=True))

    def test(self, variables: Mapping[str, Any] | None = None) -> bool:
        """As a condition: only `true` counts; false, null and non-booleans are false."""
        return self.ast.eval(Scope(variables or {}, raw=True)) is True


def compile_feel(text: str) -> Expression:
    """Parse a FEEL expression (a leading '=' as in Zeebe BPMN is stripped). Raises FeelError."""
    body, offset = text, 0
    stripped = body.lstrip()
    if stripped.startswith("="):
        offset = len(body) - len(stripped) + 1
        body = stripped[1:]
    if not body.strip():
        raise FeelError("empty expression", len(text), text)
    tokens = tokenize(body, offset, text)
    try:
        return Expression(text, Parser(tokens, text).parse())
    except RecursionError:
        raise FeelError("expression nested too deeply", 0, text) from None


def evaluate(text: str, variables: Mapping[str, Any] | None = None) -> Any:
    """Compile and evaluate in one step (compile once and reuse `Expression` on hot paths)."""
    return compile_feel(text).evaluate(variables)


def is_true(value: Any) -> bool:
    """FEEL condition semantics: only `true` is true; null counts as false."""
    return value is True
