"""The FEEL parser: tokens to a syntax tree; anything outside the supported language is a FeelError here."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Final

from processes.feel.builtins import BUILTINS, MULTIWORD, PARAMETERS, SPECIAL_FUNCTIONS, UNSUPPORTED_FUNCTIONS
from processes.feel.lexer import KEYWORDS, FeelError, Token
from processes.feel.nodes import (
    Between,
    Binary,
    Call,
    ContextLit,
    Filter,
    If,
    In,
    IsDefined,
    ListLit,
    Literal,
    Name,
    Node,
    Path,
    RangeLit,
    Unary,
)
from processes.feel.nodes_iteration import For, FunctionLit, Iteration, Quantified
from processes.feel.temporal_text import parse_literal
from processes.feel.values import is_num, literal

_MULTIWORD_PROPERTIES: Final = frozenset({"time offset", "start included", "end included"})
COMPARISON: Final = frozenset({"=", "!=", "<", "<=", ">", ">="})


class Parser:
    """Recursive descent over the tokens of one expression."""

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
            raise self.error("'instance of' is not supported")
        else:
            return left
        if (self.tok.kind == "op" and self.tok.value in COMPARISON) or self.is_kw("between", "in"):
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
                n == 1 or candidate in MULTIWORD
            ):
                return candidate
        return None

    def iterations(self, closing: str) -> list[Iteration]:
        """`x in domain, y in domain` up to the closing keyword (`return` or `satisfies`)."""
        out: list[Iteration] = []
        while True:
            if self.tok.kind != "name" or self.tok.value in KEYWORDS:
                raise self.error(f"expected a variable name, found {self.describe(self.tok)}")
            name = self.advance().value
            self.expect_kw("in", f"after iteration variable {name!r}")
            domain = self.additive()
            if self.is_op(".."):
                t = self.advance()
                domain = RangeLit(domain, self.additive(), True, True, t.pos)
            out.append(Iteration(name, domain))
            if self.is_op(","):
                self.advance()
                continue
            self.expect_kw(closing, "after the iteration contexts")
            return out

    def function_literal(self) -> Node:
        t = self.advance()  # 'function'
        self.expect_op("(", "after 'function'")
        params: list[str] = []
        while not self.is_op(")"):
            if self.tok.kind != "name" or self.tok.value in KEYWORDS:
                raise self.error(f"expected a parameter name, found {self.describe(self.tok)}")
            params.append(self.advance().value)
            if self.is_op(":"):
                raise self.error("typed function parameters are not supported")
            if not self.is_op(")"):
                self.expect_op(",", "between parameters")
        self.advance()
        if self.is_kw("external"):
            raise self.error("external functions are not supported")
        return FunctionLit(params, self.expression(), t.pos)

    def call(self, name: str, start: Token) -> Node:
        if name in UNSUPPORTED_FUNCTIONS:
            raise self.error(f"function '{name}' is not in the supported FEEL subset", start)
        if name not in BUILTINS and name not in SPECIAL_FUNCTIONS:
            raise self.error(f"unknown function '{name}'", start)
        self.i += len(name.split())
        self.expect_op("(", "after function name")
        args: list[Node] = []
        named: dict[str, Node] = {}
        if not self.is_op(")"):
            while True:
                label = self.argument_name()
                if label is not None:
                    if label in named:
                        raise self.error(f"argument '{label}' given twice")
                    named[label] = self.nested_expression()
                elif named:
                    raise self.error("a positional argument cannot follow named ones")
                else:
                    args.append(self.nested_expression())
                if self.is_op(","):
                    self.advance()
                    continue
                break
        self.expect_op(")", f"to close the call of '{name}'")
        if named:
            args = self.by_position(name, named, start)
        if name == "is defined":
            if len(args) != 1:
                raise self.error(f"function 'is defined' takes 1 argument, got {len(args)}", start)
            return IsDefined(args[0], start.pos)
        b = BUILTINS[name]
        if len(args) < b.min_args or (b.max_args is not None and len(args) > b.max_args):
            expected = (f"{b.min_args}" if b.min_args == b.max_args else
                        f"{b.min_args} or more" if b.max_args is None else f"{b.min_args} to {b.max_args}")
            noun = "argument" if expected == "1" else "arguments"
            raise self.error(f"function '{name}' takes {expected} {noun}, got {len(args)}", start)
        return Call(name, args, start.pos)

    def argument_name(self) -> str | None:
        """The name of a named argument at the cursor (`start position:`), consumed with its ':'."""
        k = 0
        while self.peek(k).kind == "name" and k < 4:
            k += 1
        if k == 0 or not (self.peek(k).kind == "op" and self.peek(k).value == ":"):
            return None
        words = [self.advance().value for _ in range(k)]
        self.advance()  # ':'
        return " ".join(words)

    def by_position(self, name: str, named: dict[str, Node], start: Token) -> list[Node]:
        """Named arguments in the order of the first signature that has all their names."""
        for signature in PARAMETERS.get(name, ()):
            if set(named) <= set(signature):
                last = max(signature.index(n) for n in named)
                return [named.get(p, Literal(None, start.pos)) for p in signature[:last + 1]]
        known = " or ".join("(" + ", ".join(sig) + ")" for sig in PARAMETERS.get(name, ()))
        raise self.error(f"function '{name}' has no parameters named {', '.join(sorted(named))}"
                         + (f"; it takes {known}" if known else ""), start)

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


