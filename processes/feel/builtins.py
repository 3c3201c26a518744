"""The registry of built-in functions: name -> implementation and arity (checked when an expression compiles)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from processes.feel.builtins_contexts import CONTEXT_FUNCTIONS
from processes.feel.builtins_lists import LIST_FUNCTIONS
from processes.feel.builtins_numbers import NUMBER_FUNCTIONS
from processes.feel.builtins_temporal import TEMPORAL_FUNCTIONS
from processes.feel.builtins_text import TEXT_FUNCTIONS


@dataclass(frozen=True)
class Builtin:
    """One built-in: a run-time null for wrong argument kinds, a compile error for a wrong count."""

    impl: Callable[..., Any]
    min_args: int
    max_args: int | None  # None = varargs


BUILTINS: Final[dict[str, Builtin]] = {
    name: Builtin(*spec)
    for table in (TEXT_FUNCTIONS, NUMBER_FUNCTIONS, LIST_FUNCTIONS, CONTEXT_FUNCTIONS, TEMPORAL_FUNCTIONS)
    for name, spec in table.items()
}

# `is defined` looks at whether a variable exists, not at a value, so the parser builds a node for it.
SPECIAL_FUNCTIONS: Final = frozenset({"is defined"})

# Names FEEL (or Camunda's FEEL) defines that we refuse with a specific message. `uuid` and `random number` would
# make an expression give a different value on every evaluation; the interval functions compare ranges.
UNSUPPORTED_FUNCTIONS: Final = frozenset(
    {"uuid", "to base64", "is", "random number", "string format", "met by", "overlaps", "before", "after",
     "includes", "during", "starts", "finishes", "coincides", "meets", "overlaps before", "overlaps after",
     "finished by", "started by", "range", "environment variable", "assert"}
)
MULTIWORD: Final = sorted(
    (n for n in (*BUILTINS, *SPECIAL_FUNCTIONS, *UNSUPPORTED_FUNCTIONS) if " " in n),
    key=lambda n: -len(n.split()),
)

# Parameter names (DMN 1.4 §10.3.4) for calls with named arguments, `substring(string: s, start position: 2)`;
# a function with overloads lists each signature.
_L: Final = (("list",),)
PARAMETERS: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    "date": (("from",), ("year", "month", "day")),
    "time": (("from",), ("hour", "minute", "second", "offset")),
    "date and time": (("from",), ("date", "time")),
    "duration": (("from",),),
    "years and months duration": (("from", "to"),),
    "substring": (("string", "start position", "length"),),
    "string length": (("string",),),
    "upper case": (("string",),),
    "lower case": (("string",),),
    "substring before": (("string", "match"),),
    "substring after": (("string", "match"),),
    "contains": (("string", "match"),),
    "starts with": (("string", "match"),),
    "ends with": (("string", "match"),),
    "matches": (("input", "pattern", "flags"),),
    "replace": (("input", "pattern", "replacement", "flags"),),
    "split": (("string", "delimiter"),),
    "string join": (("list", "delimiter"),),
    "string": (("from",),),
    "number": (("from", "grouping separator", "decimal separator"),),
    "decimal": (("n", "scale"),),
    "floor": (("n", "scale"),),
    "ceiling": (("n", "scale"),),
    "round up": (("n", "scale"),),
    "round down": (("n", "scale"),),
    "round half up": (("n", "scale"),),
    "round half down": (("n", "scale"),),
    "abs": (("n",),),
    "modulo": (("dividend", "divisor"),),
    "sqrt": (("number",),),
    "log": (("number",),),
    "exp": (("number",),),
    "odd": (("number",),),
    "even": (("number",),),
    "list contains": (("list", "element"),),
    "count": _L, "min": _L, "max": _L, "sum": _L, "mean": _L, "median": _L, "stddev": _L, "mode": _L,
    "product": _L, "all": _L, "any": _L, "reverse": _L, "distinct values": _L, "flatten": _L,
    "concatenate": _L, "union": _L, "is empty": _L,
    "sublist": (("list", "start position", "length"),),
    "append": (("list", "item"),),
    "insert before": (("list", "position", "newItem"),),
    "remove": (("list", "position"),),
    "index of": (("list", "match"),),
    "sort": (("list", "precedes"),),
    "get value": (("m", "key"),),
    "get entries": (("m",),),
    "context put": (("context", "key", "value"),),
    "context merge": (("contexts",),),
    "context": (("entries",),),
    "duplicate values": _L,
    "partition": (("list", "size"),),
    "list replace": (("list", "position", "newItem"),),
    "to json": (("value",),),
    "from json": (("value",),),
    "not": (("negand",),),
    "is defined": (("value",),),
    "get or else": (("value", "default"),),
    "day of week": (("date",),),
    "day of year": (("date",),),
    "week of year": (("date",),),
    "month of year": (("date",),),
}
