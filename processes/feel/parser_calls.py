"""Grammar of calls (positional and named arguments), `for`/`some`/`every` iteration contexts and lambdas."""

from __future__ import annotations

from processes.feel.builtins import BUILTINS, MULTIWORD, PARAMETERS, SPECIAL_FUNCTIONS, UNSUPPORTED_FUNCTIONS
from processes.feel.lexer import KEYWORDS, Token
from processes.feel.nodes import Call, IsDefined, Literal, Node, RangeLit
from processes.feel.nodes_iteration import FunctionLit, Iteration
from processes.feel.parser_base import ParserBase


class CallGrammar(ParserBase):
    """Rules for built-in calls and the constructs that bind names."""

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
