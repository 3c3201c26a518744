"""Look at and control a running distributed stack from another shell: status, down, wipe its data."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from infra.process import pid_alive

DEFAULT_DATA_DIR = Path(".data") / "stack"


def read_status(data_dir: Path) -> dict[str, Any] | None:
    """The supervisor's status file, if a supervisor that is still alive wrote it."""
    path = data_dir / "status.json"
    try:
        status: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return status if pid_alive(int(status.get("pid", 0))) else None


def lag(urls: list[str]) -> dict[str, Any] | None:
    """The read models' and the relay's lag as /readyz reports it: from the front door, else from the first API
    replica that answers (the edge sends /readyz to one replica, which may be restarting); None when none does."""
    for url in urls:
        try:
            found: dict[str, Any] | None = httpx.get(f"{url}/readyz", timeout=3).json().get("lag")
        except (httpx.HTTPError, ValueError, AttributeError):
            continue
        if found:
            return found
    return None


def format_status(status: dict[str, Any], measured: dict[str, Any] | None) -> list[str]:
    """Lines for `casestream status`: the front door, then one line per child, then the lag."""
    age = time.time() - float(status["updated"])
    lines = [f"stack: supervisor pid {status['pid']}, status {age:.1f}s old, data {status['data_dir']}",
             f"front door: {status['front_door']}  (portal {status['front_door']}/, API {status['front_door']}/api)",
             f"{'child':<15} {'role':<15} {'state':<11} {'pid':>7} {'restarts':>8}  {'up':>8}  last exit"]
    for child in status["children"]:
        lines.append(f"{child['name']:<15} {child['role']:<15} {child['state']:<11} {child['pid']:>7} "
                     f"{child['restarts']:>8}  {child['up_seconds']:>7.0f}s  {child['last_exit'] or '-'}")
    if not measured:
        lines.append("lag: neither the front door nor an API replica answered /readyz")
        return lines
    relay = measured.get("relay") or {}
    lines.append(f"lag ({measured.get('mode', '?')}): {measured.get('events_behind', '?')} events, "
                 f"{measured.get('seconds_behind', '?')} s behind; relay {relay.get('events', '?')} events, "
                 f"{relay.get('seconds', '?')} s")
    for name, partitions in sorted((measured.get("read_models") or {}).items()):
        events = sum(int(p.get("events", 0)) for p in partitions)
        seconds = max((float(p.get("seconds", 0.0)) for p in partitions), default=0.0)
        lines.append(f"  {name:<14} {events:>7} events  {seconds:>7.1f} s  ({len(partitions)} partitions)")
    return lines


def stop_running(data_dir: Path, say: Callable[[str], None], timeout: float = 120) -> bool:
    """SIGTERM the stack's supervisor (it stops its children and the servers it started) and wait; False if none."""
    status = read_status(data_dir)
    if status is None:
        return False
    pid = int(status["pid"])
    say(f"stopping the stack (supervisor pid {pid}) …")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the stack's supervisor (pid {pid}) did not stop within {timeout:.0f}s")
        time.sleep(0.2)
    return True


def drop_stored(names: dict[str, str], env: dict[str, str], say: Callable[[str], None]) -> None:
    """Drop what the stack stored in the servers that answer: its PostgreSQL database, MongoDB database, topics."""
    import psycopg

    host, port = env.get("CASESTREAM_POSTGRES_HOST", "127.0.0.1"), env.get("CASESTREAM_POSTGRES_PORT", "25432")
    user, password = env.get("CASESTREAM_POSTGRES_USER", "casestream"), env.get("CASESTREAM_POSTGRES_PASSWORD",
                                                                               "casestream")
    try:
        with psycopg.connect(f"postgresql://{user}:{password}@{host}:{port}/postgres", autocommit=True,
                             connect_timeout=3) as conn:
            conn.execute(f'drop database if exists "{names["postgres_db"]}" with (force)')
        say(f"  dropped PostgreSQL database {names['postgres_db']}")
    except psycopg.OperationalError:
        say("  PostgreSQL is not running: its database goes with the data directory (or the next infra start)")
    mongo_url = env.get("CASESTREAM_MONGO_URL", "mongodb://127.0.0.1:27517/")
    try:
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        client: MongoClient[dict[str, Any]] = MongoClient(mongo_url, serverSelectionTimeoutMS=3000)
        try:
            client.drop_database(names["mongo_database"])
            say(f"  dropped MongoDB database {names['mongo_database']}")
        finally:
            client.close()
    except PyMongoError:
        say("  the MongoDB-wire store is not running: its database goes with the data directory")
    bootstrap = env.get("CASESTREAM_KAFKA_BOOTSTRAP", "127.0.0.1:29092")
    try:
        deleted = asyncio.run(asyncio.wait_for(_delete_topics(bootstrap, names["topic_prefix"]), 30))
        say(f"  deleted {deleted} Kafka topics {names['topic_prefix']}.*")
    except Exception as exc:  # aiokafka raises many kinds for an absent broker
        say(f"  Kafka did not answer ({exc.__class__.__name__}): its topics go with the data directory")


async def _delete_topics(bootstrap: str, prefix: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(f"{prefix}.")]
        if mine:
            await admin.delete_topics(mine)
        return len(mine)
    finally:
        await admin.close()


def wipe(data_dir: Path, env: dict[str, str], say: Callable[[str], None], keep: tuple[str, ...] = ()) -> None:
    """Erase the stack's data: what it stored in the running servers, then its data directory (but `keep`)."""
    identity = data_dir / "stack.json"
    if identity.exists():
        from casestream.stack import Names

        drop_stored(Names.of(data_dir).__dict__, env, say)
    if data_dir.exists():
        for entry in data_dir.iterdir():
            if entry.name in keep:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        say(f"  erased {data_dir.resolve()}" + (f" (kept {', '.join(keep)}: in use)" if keep else ""))
