"""A request to start a process instance, as the process manager hands a batch of them to an engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class StartRequest:
    """One instance to start: the process, its tenant and variables, the case it runs for, its key."""

    process_id: str
    tenant: str
    variables: Mapping[str, Any]
    case_id: str | None = None
    instance_key: str | None = None


@runtime_checkable
class BatchStarts(Protocol):
    """An engine that starts many instances in one batch (the embedded one): per request its key, or the error
    that refused it."""

    def start_many(self, requests: Sequence[StartRequest]) -> list[str | Exception]: ...
