"""The registry of built-in functions: name -> implementation and arity (checked when an expression compiles)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

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
    for table in (TEXT_FUNCTIONS, NUMBER_FUNCTIONS, LIST_FUNCTIONS, TEMPORAL_FUNCTIONS)
    for name, spec in table.items()
}

# `is defined` looks at whether a variable exists, not at a value, so the parser builds a node for it.
SPECIAL_FUNCTIONS: Final = frozenset({"is defined"})

# Names FEEL (or Camunda's FEEL) defines that we refuse with a specific message.
UNSUPPORTED_FUNCTIONS: Final = frozenset(
    {"uuid", "to base64", "from json", "to json", "is", "random number", "list replace", "duplicate values",
     "partition", "string format", "met by", "overlaps", "before", "after", "includes", "during", "starts",
     "finishes", "coincides", "meets", "overlaps before", "overlaps after", "finished by", "started by", "range",
     "environment variable", "assert"}
)
MULTIWORD: Final = sorted(
    (n for n in (*BUILTINS, *SPECIAL_FUNCTIONS, *UNSUPPORTED_FUNCTIONS) if " " in n),
    key=lambda n: -len(n.split()),
)
