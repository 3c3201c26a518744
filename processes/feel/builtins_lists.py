"""FEEL list, context and boolean functions."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import cmp_to_key
from typing import Any, Final

from processes.feel.values import DEC, Function, all3, any3, feel_eq, int_arg, is_num, order

Impl = Callable[..., Any]


def varargs_list(args: tuple[Any, ...]) -> list[Any] | None:
    """One list argument, or the arguments themselves as the list (`max(1, 2)` = `max([1, 2])`)."""
    if len(args) == 1:
        if isinstance(args[0], list):
            return args[0]
        return None if args[0] is None else [args[0]]
    return list(args)


def _minmax(pick_max: bool) -> Impl:
    def fn(*args: Any) -> Any:
        items = varargs_list(args)
        if not items:
            return None
        best = items[0]
        if order(best, best) is None:
            return None
        for x in items[1:]:
            c = order(x, best)
            if c is None:
                return None
            if (c > 0) if pick_max else (c < 0):
                best = x
        return best
    return fn


def _numbers(args: tuple[Any, ...]) -> list[Decimal] | None:
    items = varargs_list(args)
    if not items or not all(is_num(x) for x in items):
        return None
    return items


def _sum(*args: Any) -> Any:
    items = _numbers(args)
    if items is None:
        return None
    total = Decimal(0)
    for x in items:
        total = DEC.add(total, x)
    return total


def _product(*args: Any) -> Any:
    items = _numbers(args)
    if items is None:
        return None
    total = Decimal(1)
    for x in items:
        total = DEC.multiply(total, x)
    return total


def _mean(*args: Any) -> Any:
    items = _numbers(args)
    return None if items is None else DEC.divide(_sum(items), Decimal(len(items)))


def _median(*args: Any) -> Any:
    items = _numbers(args)
    if items is None:
        return None
    s, mid = sorted(items), len(items) // 2
    return s[mid] if len(s) % 2 else DEC.divide(DEC.add(s[mid - 1], s[mid]), Decimal(2))


def _stddev(*args: Any) -> Any:
    items = _numbers(args)
    if items is None or len(items) < 2:
        return None
    mean = _mean(items)
    squares = Decimal(0)
    for x in items:
        squares = DEC.add(squares, DEC.power(DEC.subtract(x, mean), 2))
    return DEC.sqrt(DEC.divide(squares, Decimal(len(items) - 1)))


def _mode(*args: Any) -> Any:
    items = _numbers(args)
    if items is None:
        return None if varargs_list(args) is None else []
    counts: dict[Decimal, int] = {}
    for x in items:
        counts[x] = counts.get(x, 0) + 1
    top = max(counts.values())
    return sorted(x for x, c in counts.items() if c == top)


def _count(*args: Any) -> Any:
    items = varargs_list(args)
    return None if items is None else Decimal(len(items))


def _all(*args: Any) -> Any:
    items = varargs_list(args)
    if items is None:
        return None
    return all3(x if isinstance(x, bool) else None for x in items)


def _any(*args: Any) -> Any:
    items = varargs_list(args)
    if items is None:
        return None
    return any3(x if isinstance(x, bool) else None for x in items)


def _list_contains(lst: Any, element: Any) -> Any:
    if not isinstance(lst, list):
        return None
    return any(feel_eq(x, element) is True for x in lst)


def _append(lst: Any, *items: Any) -> Any:
    return [*lst, *items] if isinstance(lst, list) else None


def _concatenate(*lists: Any) -> Any:
    if not all(isinstance(x, list) for x in lists):
        return None
    return [x for lst in lists for x in lst]


def _position(lst: list[Any], position: Any, *, insert: bool = False) -> int | None:
    """A 1-based (negative from the end) position as a 0-based index, or None out of range."""
    p = int_arg(position)
    if p is None or p == 0 or abs(p) > len(lst) + (1 if insert and p > 0 else 0):
        return None
    return p - 1 if p > 0 else len(lst) + p


def _sublist(lst: Any, start: Any, length: Any = None) -> Any:
    if not isinstance(lst, list):
        return None
    begin = _position(lst, start)
    if begin is None:
        return None
    if length is None:
        return lst[begin:]
    n = int_arg(length)
    if n is None or n < 0 or begin + n > len(lst):
        return None
    return lst[begin:begin + n]


def _insert_before(lst: Any, position: Any, item: Any) -> Any:
    if not isinstance(lst, list):
        return None
    at = _position(lst, position, insert=True)
    return None if at is None else [*lst[:at], item, *lst[at:]]


def _remove(lst: Any, position: Any) -> Any:
    if not isinstance(lst, list):
        return None
    at = _position(lst, position)
    return None if at is None else [*lst[:at], *lst[at + 1:]]


def _reverse(lst: Any) -> Any:
    return lst[::-1] if isinstance(lst, list) else None


def _distinct(lst: Any) -> Any:
    if not isinstance(lst, list):
        return None
    out: list[Any] = []
    for x in lst:
        if not any(feel_eq(x, y) is True for y in out):
            out.append(x)
    return out


def _union(*lists: Any) -> Any:
    joined = _concatenate(*lists)
    return None if joined is None else _distinct(joined)


def _duplicates(lst: Any) -> Any:
    """duplicate values(list): each value that occurs more than once, once, in order of first occurrence."""
    if not isinstance(lst, list):
        return None
    seen: list[Any] = []
    out: list[Any] = []
    for x in lst:
        if any(feel_eq(x, y) is True for y in seen):
            if not any(feel_eq(x, y) is True for y in out):
                out.append(x)
        else:
            seen.append(x)
    return out


def _partition(lst: Any, size: Any) -> Any:
    """partition(list, size): consecutive sublists of at most size items."""
    n = int_arg(size)
    if not isinstance(lst, list) or n is None or n <= 0:
        return None
    return [lst[i:i + n] for i in range(0, len(lst), n)]


def _list_replace(lst: Any, position: Any, item: Any) -> Any:
    """list replace(list, position, newItem): a copy with the item at the 1-based position replaced."""
    if not isinstance(lst, list):
        return None
    at = _position(lst, position)
    return None if at is None else [*lst[:at], item, *lst[at + 1:]]


def _flatten(lst: Any) -> Any:
    if not isinstance(lst, list):
        return None
    out: list[Any] = []
    for x in lst:
        if isinstance(x, list):
            out.extend(_flatten(x))
        else:
            out.append(x)
    return out


def _index_of(lst: Any, match: Any) -> Any:
    if not isinstance(lst, list):
        return None
    return [Decimal(i + 1) for i, x in enumerate(lst) if feel_eq(x, match) is True]


class _Unsortable(Exception):
    """Two items the order cannot compare: the sort is null."""


def _sort(lst: Any, precedes: Any = None) -> Any:
    """sort(list[, precedes]): natural order of numbers, strings or temporal values, or a lambda `function(x, y)`."""
    if not isinstance(lst, list) or (precedes is not None and not isinstance(precedes, Function)):
        return None

    def cmp(a: Any, b: Any) -> int:
        if precedes is None:
            c = order(a, b)
            if c is None:
                raise _Unsortable
            return c
        if precedes.call([a, b]) is True:
            return -1
        return 1 if precedes.call([b, a]) is True else 0

    try:
        return sorted(lst, key=cmp_to_key(cmp))
    except _Unsortable:
        return None


def _is_empty(lst: Any) -> Any:
    return (not lst) if isinstance(lst, list) else None


LIST_FUNCTIONS: Final[dict[str, tuple[Impl, int, int | None]]] = {
    "min": (_minmax(False), 1, None),
    "max": (_minmax(True), 1, None),
    "sum": (_sum, 1, None),
    "product": (_product, 1, None),
    "mean": (_mean, 1, None),
    "median": (_median, 1, None),
    "stddev": (_stddev, 1, None),
    "mode": (_mode, 1, None),
    "count": (_count, 1, None),
    "all": (_all, 1, None),
    "any": (_any, 1, None),
    "list contains": (_list_contains, 2, 2),
    "append": (_append, 1, None),
    "concatenate": (_concatenate, 1, None),
    "sublist": (_sublist, 2, 3),
    "insert before": (_insert_before, 3, 3),
    "remove": (_remove, 2, 2),
    "reverse": (_reverse, 1, 1),
    "distinct values": (_distinct, 1, 1),
    "union": (_union, 1, None),
    "flatten": (_flatten, 1, 1),
    "index of": (_index_of, 2, 2),
    "sort": (_sort, 1, 2),
    "is empty": (_is_empty, 1, 1),
    "duplicate values": (_duplicates, 1, 1),
    "partition": (_partition, 2, 2),
    "list replace": (_list_replace, 3, 3),
}
