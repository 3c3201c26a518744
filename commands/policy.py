"""The authorization port: a policy decides every command and every query; deny by default.

The request handed to `Policy.decide` is a plain JSON-able mapping (the Rego `input`), documented field by field
in docs/authorization.md. Its shape:

    {
      "subject":  {"user": str, "tenant": str, "roles": [str], "groups": [str]},
      "action":   str,            # a command type ("AddComment", "CompleteTask", ...) or a query ("read")
      "resource": {               # the state the action applies to, as stored before the action
        "kind": "case" | "task" | "definition" | "queue" | "record_type" | "record" | "process" | "tenant",
        ...                       # kind-specific attributes (stage, status, queue, assignee, owner,
                                  # definition_key, the definition's `access` rules, the task's candidate groups)
      }
    }

The answer is a Decision: allowed or not, with the reasons a denial names. An implementation that cannot reach
its engine raises domain.errors.PolicyUnavailable (503), never answers allow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Decision:
    """A policy's answer: allow, or deny with the reasons."""

    allow: bool
    reasons: tuple[str, ...] = ()


class Policy(Protocol):
    """Decides one request (see the module docstring for its shape)."""

    def decide(self, request: Mapping[str, Any]) -> Decision: ...
