"""User-task completions handed to an engine in a batch (the process manager gathers those of a window of the log)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class TaskCompletion:
    """A task completed by a person: its tenant, id and form data (the user task's result variables)."""

    tenant: str
    task_id: str
    variables: Mapping[str, Any]


@runtime_checkable
class BatchCompletions(Protocol):
    """An engine that completes many user tasks and saves their steps in one batch (the embedded one): per
    completion True, False if no open user task has that id, or the domain error that refused its step."""

    def complete_user_tasks(self, completions: Sequence[TaskCompletion]) -> list[bool | Exception]: ...
