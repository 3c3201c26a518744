"""FEEL tokens: numbers, strings, names, operators and `@"..."` temporal literals; comments are skipped."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

KEYWORDS: Final = frozenset(
    {"true", "false", "null", "and", "or", "if", "then", "else", "between", "in", "for", "some", "every",
     "satisfies", "return", "instance", "of", "function", "external"}
)


class FeelError(ValueError):
    """An expression outside the supported subset, or not FEEL at all. `position` is a 0-based offset."""

    def __init__(self, message: str, position: int, text: str) -> None:
        self.reason = message
        self.position = position
        self.text = text
        super().__init__(f"{message} at position {position} in {text!r}")


@dataclass(frozen=True)
class Token:
    """One token; kind is "num", "str", "at" (a temporal literal's text), "name", "qname" (a `quoted` name), "op"
    or "eof"."""

    kind: str
    value: str
    pos: int


_OPERATORS: Final = ("**", "..", "!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "(", ")", "[", "]", "{",
                      "}", ",", ":", ".")
_ESCAPES: Final = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "'": "'"}
_NUMBER: Final = re.compile(r"\d*(?:\.\d+)?")


def _string(text: str, i: int, offset: int, original: str) -> tuple[str, int]:
    """The string literal starting at the quote at i, and the index after its closing quote."""
    j, n = i + 1, len(text)
    buf: list[str] = []
    while True:
        if j >= n:
            raise FeelError("unterminated string literal", i + offset, original)
        ch = text[j]
        if ch == '"':
            return "".join(buf), j + 1
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
            buf.append("\\")  # other escapes stay as written, so regex patterns such as "\\d+" read as in Camunda
            j += 1
            continue
        buf.append(ch)
        j += 1


def tokenize(text: str, offset: int, original: str, *, placeholder: bool = False) -> list[Token]:
    """The tokens of text (a body that starts `offset` characters into `original`); with `placeholder`, `?`
    (the input value of a unary test) is a name."""
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
            m = _NUMBER.match(text, i)
            assert m is not None
            tokens.append(Token("num", m.group(), i + offset))
            i = m.end()
            continue
        if c == '"':
            value, i2 = _string(text, i, offset, original)
            tokens.append(Token("str", value, i + offset))
            i = i2
            continue
        if c == "@":
            if i + 1 >= n or text[i + 1] != '"':
                raise fail("expected a string after '@' (a temporal literal such as @\"2026-01-01\")", i)
            value, i2 = _string(text, i + 1, offset, original)
            tokens.append(Token("at", value, i + offset))
            i = i2
            continue
        if c.isalpha() or c == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(Token("name", text[i:j], i + offset))
            i = j
            continue
        if c == "?" and placeholder:
            tokens.append(Token("name", "?", i + offset))
            i += 1
            continue
        if c == "`":  # Camunda's quoted name: `first name`, `order-id`
            end = text.find("`", i + 1)
            if end < 0:
                raise fail("unterminated backtick-quoted name", i)
            if end == i + 1:
                raise fail("empty backtick-quoted name", i)
            tokens.append(Token("qname", text[i + 1:end], i + offset))
            i = end + 1
            continue
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
