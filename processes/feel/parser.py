"""The FEEL parser: tokens to a syntax tree; anything outside the supported language is a FeelError here."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Final

from processes.feel.lexer import KEYWORDS, Token
from processes.feel.nodes import (
    Between,
    Binary,
    ContextLit,
    Filter,
    If,
    In,
    InstanceOf,
    ListLit,
    Literal,
    Name,
    Node,
    Path,
    RangeLit,
    Unary,
)
from processes.feel.nodes_iteration import For, Quantified
from processes.feel.parser_calls import CallGrammar
from processes.feel.temporal_text import parse_literal
from processes.feel.values import TYPE_NAMES, is_num, literal

_MULTIWORD_PROPERTIES: Final = frozenset({"time offset", "start included", "end included"})
COMPARISON: Final = frozenset({"=", "!=", "<", "<=", ">", ">="})


class Parser(CallGrammar):
    """Recursive descent over the tokens of one expression."""

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
        if t.kind == "op" and t.value in COMPARISON:
            self.advance()
            node: Node = Binary(t.value, left, self.additive(), t.pos)
        elif self.is_kw("between"):
            self.advance()
            low = self.additive()
            self.expect_kw("and", "in 'between ... and ...'")
            node = Between(left, low, self.additive(), t.pos)
        elif self.is_kw("in"):
            self.advance()
            if self.tok.kind == "op" and self.tok.value in COMPARISON:
                op = self.advance().value
                node = In(left, self.additive(), t.pos, test_op=op)
            else:
                if self.is_op("(") and self._paren_list_ahead():
                    raise self.error("parenthesized test lists 'x in (a, b)' are not supported; use 'x in [a, b]'")
                node = In(left, self.additive(), t.pos)
        elif self.is_kw("instance"):
            self.advance()
            self.expect_kw("of", "after 'instance'")
            node = InstanceOf(left, self.type_name(), t.pos)
        else:
            return left
        if (self.tok.kind == "op" and self.tok.value in COMPARISON) or self.is_kw("between", "in"):
            raise self.error(f"chained comparison with '{self.tok.value}' is not FEEL; use 'and'")
        return node

    def type_name(self) -> str:
        """A FEEL built-in type name (possibly several words) after `instance of`."""
        words: list[str] = []
        k = 0
        while self.peek(k).kind == "name" and k < 4:
            words.append(self.peek(k).value)
            k += 1
        for n in range(len(words), 0, -1):
            candidate = " ".join(words[:n])
            if candidate in TYPE_NAMES:
                self.i += n
                if self.is_op("<"):
                    raise self.error(f"generic types ({candidate}<...>) are not supported; use '{candidate}'")
                return candidate
        raise self.error(f"expected a type name ({', '.join(TYPE_NAMES)}), found {self.describe(self.tok)}")

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
            if isinstance(operand, Literal) and is_num(operand.value):
                return Literal(-operand.value, t.pos)
            return Unary(operand, t.pos)
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        while True:
            if self.is_op("."):
                t = self.advance()
                if self.tok.kind == "str":
                    raise self.error("quoted path segments are not supported; use get value(ctx, \"key\")")
                if self.tok.kind == "qname":
                    node = Path(node, self.advance().value, t.pos)
                    continue
                if self.tok.kind != "name" or self.tok.value in KEYWORDS:
                    raise self.error(f"expected a name after '.', found {self.describe(self.tok)}")
                key = self.advance().value
                if self.tok.kind == "name" and f"{key} {self.tok.value}" in _MULTIWORD_PROPERTIES:
                    key = f"{key} {self.advance().value}"
                node = Path(node, key, t.pos)
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
        if t.kind == "qname":
            self.advance()
            return Name(t.value, t.pos)
        if t.kind == "at":
            self.advance()
            value = parse_literal(t.value)
            if value is None:
                raise self.error(f"{literal(t.value)} is not a date, time, date and time or duration", t)
            return Literal(value, t.pos)
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
        if word == "for" and self.peek().kind == "name":
            self.advance()
            iterations = self.iterations("return")
            return For(iterations, self.expression(), t.pos)
        if word in ("some", "every") and self.peek().kind == "name":
            self.advance()
            iterations = self.iterations("satisfies")
            return Quantified(word == "every", iterations, self.expression(), t.pos)
        if word == "function" and self.peek().kind == "op" and self.peek().value == "(":
            return self.function_literal()
        fn = self.function_name()
        if fn is not None:
            return self.call(fn, t)
        if word in KEYWORDS:
            raise self.error(f"unexpected keyword '{word}'")
        self.advance()
        return Name(word, t.pos)

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
            if self.tok.kind in ("str", "qname"):
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


