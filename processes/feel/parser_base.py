"""The parser's cursor over the tokens: look-ahead, expectations and errors naming the position."""

from __future__ import annotations

from processes.feel.lexer import FeelError, Token
from processes.feel.nodes import Node
from processes.feel.values import literal


class ParserBase:
    """Token cursor and error helpers shared by the grammar classes."""

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
            return f"string {literal(t.value)}"
        if t.kind == "qname":
            return f"name `{t.value}`"
        if t.kind == "at":
            return f"literal @{literal(t.value)}"
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

    # grammar entry points the call and binder rules use (defined by Parser)
    def expression(self) -> Node:  # pragma: no cover - abstract
        """Any expression."""
        raise NotImplementedError

    def nested_expression(self) -> Node:  # pragma: no cover - abstract
        """An expression inside brackets, parentheses or braces."""
        raise NotImplementedError

    def additive(self) -> Node:  # pragma: no cover - abstract
        """A sum or difference (what an iteration domain or a comparison endpoint is)."""
        raise NotImplementedError
