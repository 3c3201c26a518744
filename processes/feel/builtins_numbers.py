"""FEEL number functions (decimal arithmetic in FEEL's decimal128 context)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Decimal,
    InvalidOperation,
)
from typing import Any, Final

from processes.feel.temporal import YearsMonths
from processes.feel.values import DEC, int_arg, is_num

_NUMBER_TEXT: Final = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def fn_number(s: Any, grouping: Any = None, decimal_sep: Any = None) -> Any:
    """number(from[, grouping separator, decimal separator])."""
    if not isinstance(s, str):
        return None
    if grouping is not None:
        if not isinstance(grouping, str) or grouping not in (" ", ",", "."):
            return None
        s = s.replace(grouping, "")
    if decimal_sep is not None:
        if not isinstance(decimal_sep, str) or decimal_sep not in (",", ".") or decimal_sep == grouping:
            return None
        s = s.replace(decimal_sep, ".")
    if not _NUMBER_TEXT.fullmatch(s.strip()):
        return None
    return DEC.plus(Decimal(s.strip()))


def _round(mode: str) -> Callable[..., Any]:
    def fn(n: Any, scale: Any = Decimal(0)) -> Any:
        sc = int_arg(scale)
        if not is_num(n) or sc is None or not -6111 <= sc <= 6176:
            return None
        try:
            return n.quantize(Decimal(1).scaleb(-sc), rounding=mode, context=DEC)
        except InvalidOperation:
            return None
    return fn


def _decimal(n: Any, scale: Any) -> Any:
    """decimal(n, scale): half-even rounding; the scale is required."""
    return _round(ROUND_HALF_EVEN)(n, scale)


def _abs(n: Any) -> Any:
    if is_num(n):
        return abs(n)
    if isinstance(n, timedelta):
        return abs(n)
    if isinstance(n, YearsMonths):
        return YearsMonths(abs(n.months))
    return None


def _modulo(dividend: Any, divisor: Any) -> Any:
    """modulo: the result has the sign of the divisor (FEEL, unlike Decimal's `%`)."""
    if not (is_num(dividend) and is_num(divisor)) or divisor == 0:
        return None
    quotient = DEC.divide(dividend, divisor).to_integral_value(rounding=ROUND_FLOOR)
    return DEC.subtract(dividend, DEC.multiply(divisor, quotient))


def _sqrt(n: Any) -> Any:
    return DEC.sqrt(n) if is_num(n) and n >= 0 else None


def _log(n: Any) -> Any:
    return DEC.ln(n) if is_num(n) and n > 0 else None


def _exp(n: Any) -> Any:
    return DEC.exp(n) if is_num(n) else None


def _parity(even: bool) -> Callable[[Any], Any]:
    def fn(n: Any) -> Any:
        i = int_arg(n)
        return None if i is None else (i % 2 == 0) is even
    return fn


NUMBER_FUNCTIONS: Final[dict[str, tuple[Callable[..., Any], int, int | None]]] = {
    "number": (fn_number, 1, 3),
    "decimal": (_decimal, 2, 2),
    "floor": (_round(ROUND_FLOOR), 1, 2),
    "ceiling": (_round(ROUND_CEILING), 1, 2),
    "round up": (_round(ROUND_UP), 2, 2),
    "round down": (_round(ROUND_DOWN), 2, 2),
    "round half up": (_round(ROUND_HALF_UP), 2, 2),
    "round half down": (_round(ROUND_HALF_DOWN), 2, 2),
    "abs": (_abs, 1, 1),
    "modulo": (_modulo, 2, 2),
    "sqrt": (_sqrt, 1, 1),
    "log": (_log, 1, 1),
    "exp": (_exp, 1, 1),
    "odd": (_parity(False), 1, 1),
    "even": (_parity(True), 1, 1),
}
