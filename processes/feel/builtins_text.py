"""FEEL string functions; regular expressions run on RE2 (linear time: a pattern cannot stall the engine)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

import re2

from processes.feel.values import int_arg, to_string

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a bad pattern in a process variable is null, not a line on stderr
_OPTIONS.max_mem = 8 << 20
_INLINE_FLAGS: Final = frozenset("ism")  # XPath flags RE2 takes inline; `x` and `q` are applied to the pattern


def _translate(pattern: str, flags: str) -> str:
    """An XPath pattern for RE2: the `x` flag drops whitespace outside classes (even after a backslash), and
    without the `s` flag `.` excludes CR as well as LF, as in XPath (RE2's `.` only excludes LF)."""
    out: list[str] = []
    in_class = escaped = False
    for c in pattern:
        if "x" in flags and c in " \t\n\r" and not in_class:
            continue
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c in "[]":
            in_class = c == "["
        elif c == "." and not in_class and "s" not in flags:
            out.append("[^\\n\\r]")
            continue
        out.append(c)
    return "".join(out)


@lru_cache(maxsize=512)
def _regex(pattern: str, flags: str) -> re2._Regexp[str] | None:
    if any(f not in _INLINE_FLAGS and f not in "xq" for f in flags):
        return None
    pattern = re2.escape(pattern) if "q" in flags else _translate(pattern, flags)
    inline = "".join(sorted(set(flags) & _INLINE_FLAGS))
    try:
        return re2.compile((f"(?{inline})" if inline else "") + pattern, _OPTIONS)
    except re2.error:
        return None


def str_args(*args: Any) -> bool:
    """All arguments are strings."""
    return all(isinstance(a, str) for a in args)


def _str_fn(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any) -> Any:
        return fn(*args) if str_args(*args) else None
    return wrapped


def fn_substring(s: Any, start: Any, length: Any = ...) -> Any:
    """substring(string, start position[, length]): 1-based, negative start counts from the end."""
    st = int_arg(start)
    if not isinstance(s, str) or st is None or st == 0:
        return None
    chars = list(s)  # code points
    begin = max(st - 1 if st > 0 else len(chars) + st, 0)
    if length is ...:
        return "".join(chars[begin:])
    ln = int_arg(length)
    if ln is None or ln < 0:
        return None
    return "".join(chars[begin:begin + ln])


def fn_matches(s: Any, pattern: Any, flags: Any = None) -> Any:
    """matches(input, pattern[, flags]): a search, as XPath's fn:matches (null flags are no flags)."""
    flags = "" if flags is None else flags
    if not str_args(s, pattern, flags):
        return None
    rx = _regex(pattern, flags)
    return None if rx is None else rx.search(s) is not None


def fn_replace(s: Any, pattern: Any, replacement: Any, flags: Any = None) -> Any:
    """replace(input, pattern, replacement[, flags]); `$1` in the replacement is group 1."""
    flags = "" if flags is None else flags
    if not str_args(s, pattern, replacement, flags):
        return None
    rx = _regex(pattern, flags)
    if rx is None:
        return None
    template = replacement.replace("\\", "\\\\")
    out, i = [], 0
    while i < len(template):  # XPath `$n` becomes RE2's `\n`
        c = template[i]
        if c == "$" and i + 1 < len(template) and template[i + 1].isdigit():
            out.append("\\" + template[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return rx.sub("".join(out), s)


def fn_split(s: Any, delimiter: Any) -> Any:
    """split(string, delimiter): the delimiter is a regular expression."""
    if not str_args(s, delimiter) or delimiter == "":
        return None
    rx = _regex(delimiter, "")
    return None if rx is None else list(rx.split(s))


def fn_extract(s: Any, pattern: Any) -> Any:
    """extract(string, pattern): every match, in order."""
    if not str_args(s, pattern):
        return None
    rx = _regex(pattern, "")
    return None if rx is None else [m.group(0) for m in rx.finditer(s)]


def fn_string_join(lst: Any, delimiter: Any = "", prefix: Any = "", suffix: Any = "") -> Any:
    """string join(list[, delimiter[, prefix, suffix]]): null items are skipped."""
    delimiter = "" if delimiter is None else delimiter
    if not isinstance(lst, list) or not str_args(delimiter, prefix, suffix):
        return None
    items = [x for x in lst if x is not None]
    if not str_args(*items):
        return None
    return prefix + delimiter.join(items) + suffix


def fn_substring_before(s: Any, match: Any) -> Any:
    """substring before(string, match): "" when match does not occur."""
    if not str_args(s, match):
        return None
    i = s.find(match)
    return "" if i < 0 else s[:i]


def fn_substring_after(s: Any, match: Any) -> Any:
    """substring after(string, match): "" when match does not occur."""
    if not str_args(s, match):
        return None
    i = s.find(match)
    return "" if i < 0 else s[i + len(match):]


TEXT_FUNCTIONS: Final[dict[str, tuple[Callable[..., Any], int, int | None]]] = {
    "string length": (_str_fn(lambda s: Decimal(len(s))), 1, 1),
    "substring": (fn_substring, 2, 3),
    "substring before": (fn_substring_before, 2, 2),
    "substring after": (fn_substring_after, 2, 2),
    "upper case": (_str_fn(str.upper), 1, 1),
    "lower case": (_str_fn(str.lower), 1, 1),
    "contains": (_str_fn(lambda s, m: m in s), 2, 2),
    "starts with": (_str_fn(str.startswith), 2, 2),
    "ends with": (_str_fn(str.endswith), 2, 2),
    "matches": (fn_matches, 2, 3),
    "replace": (fn_replace, 3, 4),
    "split": (fn_split, 2, 2),
    "extract": (fn_extract, 2, 2),
    "trim": (_str_fn(str.strip), 1, 1),
    "string join": (fn_string_join, 1, 4),
    "string": (to_string, 1, 1),
    "is blank": (_str_fn(lambda s: not s.strip()), 1, 1),
}

