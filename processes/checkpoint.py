"""What the engine knew of its open instances at a clean stop, so a restart knows them again without folding each.

At a clean stop (threads joined, nothing in flight outside the lock) the engine writes, next to a SQLite event
log, every open instance's wait-index entries (key, tenant, announced user tasks, message subscriptions, pending
timers) with the log position they hold for. The next start reads the file and deletes it (a crash later must not
find it stale), takes those entries as they are, and folds from its events only what the log changed after that
position, and the instances that had work in flight at the stop (a queued job is offered again). Recovery is then
proportional to what was in flight, not to every open instance. Without a file (first start, after a crash, on
PostgreSQL) the engine scans the log instead (processes/recovery.py).

The followers of the log at start (processes/deployment_follower.py, processes/message_buffer.py) keep a `LogMark`
instead: what they had taken up to a position, purely from the log, so any mark (even one written before a crash)
is right, and a start reads only the aggregates it names and the log after its position.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import orjson

from domain.events import Positioned

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


@dataclass(frozen=True)
class LogMark:
    """What a follower of the log had taken up to `position`: the aggregates it must read again at a restart, each
    up to the version it had taken (their later events come with the scan from `position`)."""

    position: int
    head: str  # the id of the event at `position`: a mark for another log (a new one, a restored backup) is ignored
    versions: dict[UUID, int]


class MarkStore(Protocol):
    """Where marks are kept by name (adapters/log_marks.py)."""

    def load_mark(self, name: str) -> str | None: ...

    def save_mark(self, name: str, text: str) -> None: ...


class EventIds(Protocol):
    """Enough of the event store to tell which log a mark was made for."""

    def read(self, after: int, limit: int) -> list[Positioned]: ...


def event_id_at(store: EventIds, position: int) -> str:
    """The id of the event at a log position ("" for none)."""
    found = store.read(position - 1, 1) if position > 0 else []
    return str(found[0].event.event_id) if found and found[0].position == position else ""


def save_mark(marks: MarkStore, name: str, store: EventIds, position: int, versions: Mapping[UUID, int]) -> None:
    """Store what a follower had taken up to `position`."""
    marks.save_mark(name, orjson.dumps({"format": FORMAT, "position": position, "head": event_id_at(store, position),
                                        "versions": {k.hex: v for k, v in versions.items()}}).decode())


def load_mark(marks: MarkStore, name: str, store: EventIds) -> LogMark | None:
    """The follower's mark, if there is one for this log (None: read the log from its beginning)."""
    text = marks.load_mark(name)
    if text is None:
        return None
    try:
        data = orjson.loads(text)
        if data.get("format") != FORMAT:
            return None
        mark = LogMark(int(data["position"]), str(data["head"]),
                       {UUID(hex=k): int(v) for k, v in data["versions"].items()})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("log mark %s unreadable (%r): reading the log from its beginning", name, exc)
        return None
    if event_id_at(store, mark.position) != mark.head:
        log.info("log mark %s was made for another log: reading this one from its beginning", name)
        return None
    return mark
