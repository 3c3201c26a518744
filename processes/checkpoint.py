"""What the engine knew of its open instances at a clean stop, so a restart knows them again without folding each.

At a clean stop (threads joined, nothing in flight outside the lock) the engine writes, next to a SQLite event
log, every open instance's wait-index entries (key, tenant, announced user tasks, message subscriptions, pending
timers) with the log position they hold for. The next start reads the file and deletes it (a crash later must not
find it stale), takes those entries as they are, and folds from its events only what the log changed after that
position, and the instances that had work in flight at the stop (a queued job is offered again). Recovery is then
proportional to what was in flight, not to every open instance. Without a file (first start, after a crash, on
PostgreSQL) the engine scans the log instead (processes/recovery.py).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

log = logging.getLogger("casestream.engine")
FORMAT = 1


@dataclass(frozen=True)
class SavedInstance:
    """One open instance as the checkpoint holds it."""

    instance_id: UUID
    key: str
    tenant: str
    fold: bool  # had work in flight (or was not indexed yet): fold it from its events at the restart
    tasks: tuple[tuple[UUID, UUID, str], ...]  # (task id, SpiffWorkflow task id, element id)
    subscriptions: tuple[tuple[str, str], ...]  # (message name, correlation key)
    timers: tuple[tuple[str, datetime], ...]  # (timer ref, due)


@dataclass(frozen=True)
class Checkpoint:
    """The open instances at a log position; `head` is the id of the event there (the same log, not one rebuilt)."""

    position: int
    head: str
    instances: list[SavedInstance]


def _entry(saved: SavedInstance) -> list[Any]:
    return [saved.instance_id.hex, saved.key, saved.tenant, saved.fold,
            [[t.hex, s.hex, element] for t, s, element in saved.tasks],
            [list(subscription) for subscription in saved.subscriptions],
            [[ref, due.isoformat()] for ref, due in saved.timers]]


def _saved(entry: list[Any]) -> SavedInstance:
    iid, key, tenant, fold, tasks, subscriptions, timers = entry
    return SavedInstance(UUID(hex=iid), key, tenant, bool(fold),
                         tuple((UUID(hex=t), UUID(hex=s), element) for t, s, element in tasks),
                         tuple((name, correlation) for name, correlation in subscriptions),
                         tuple((ref, datetime.fromisoformat(due)) for ref, due in timers))


def write_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Write atomically (a stop killed half-way leaves no half file)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(orjson.dumps({"format": FORMAT, "position": checkpoint.position, "head": checkpoint.head,
                                        "instances": [_entry(i) for i in checkpoint.instances]}))
    os.replace(temporary, path)


def take_checkpoint(path: Path) -> Checkpoint | None:
    """Read and delete the checkpoint; None if there is none or it cannot be read (the log is scanned then)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    finally:
        path.unlink(missing_ok=True)
    try:
        data = orjson.loads(raw)
        if data.get("format") != FORMAT:
            return None
        return Checkpoint(int(data["position"]), str(data["head"]), [_saved(entry) for entry in data["instances"]])
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("process checkpoint %s unreadable (%r): scanning the log instead", path, exc)
        return None
