"""Shared helpers for the bench/ scripts: tables, percentiles, a `casestream serve` subprocess, tokens,
a fresh PostgreSQL database, and a fast generator of realistic event logs (cached by size).

Nothing here changes production code: the generator builds events with the domain classes and appends
them with `RecorderEventStore.append`, exactly the records the command bus would store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform as _platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TENANT = "acme"
AUDIENCE = "casestream"
USERS = ("alice", "carol", "dave", "erin")
CITIES = ("lyon", "paris", "nantes", "lille", "rennes", "nice", "brest", "dijon", "metz", "tours")
PRODUCTS = ("home", "car", "travel", "health", "pet")

# ----------------------------------------------------------------------------------------------------------------
# output


def machine_line() -> str:
    load = os.getloadavg()
    return (
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"python {_platform.python_version()}; {datetime.now(UTC):%Y-%m-%d %H:%M:%SZ}"
    )


def banner(title: str, detail: str = "") -> None:
    print(f"== {title} ==")
    if detail:
        print(detail)
    print(machine_line())
    print(flush=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a plain fixed-width table (numbers right-aligned, text left-aligned)."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    numeric = [[False] * len(headers)] + [[isinstance(v, int | float) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str], nums: list[bool]) -> str:
        return "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(r, widths, nums, strict=True)).rstrip()

    print(line(cells[0], numeric[0]))
    print("  ".join("-" * w for w in widths))
    for r, nums in zip(cells[1:], numeric[1:], strict=True):
        print(line(r, nums))
    print(flush=True)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of values; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def ms(seconds: float) -> float:
    return seconds * 1000.0


def verdict(value: float, target: float, *, higher_is_better: bool) -> str:
    ok = value >= target if higher_is_better else value < target
    return "meets target" if ok else "MISSES target"


# ----------------------------------------------------------------------------------------------------------------
# processes and ports


def process_cpu_seconds(pid: int) -> float:
    """User+system CPU seconds used so far by process pid (Linux /proc), nan if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def process_tree_cpu_seconds(pid: int) -> float:
    """process_cpu_seconds of pid and every process below it (a server's workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += process_cpu_seconds(current)
        todo.extend(children.get(current, []))
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cache_root() -> Path:
    """~/.cache/casestream/bench (or $CASESTREAM_CACHE_DIR/bench)."""
    from infra.paths import cache_dir

    path = cache_dir() / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"casestream-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Served:
    """A running `casestream serve` subprocess."""

    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    ready_seconds: float
    log_path: Path

    def token(self, user: str = "alice", roles: tuple[str, ...] = ("caseworker",)) -> str:
        from adapters.issuer import BuiltinIssuer

        issuer = BuiltinIssuer(self.data_dir / "issuer-key.json", self.url, AUDIENCE, 8 * 3600)
        return issuer.issue(user, TENANT, list(roles))

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def serve_env(data_dir: Path, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASESTREAM_")}
    env.update({
        "CASESTREAM_DATA_DIR": str(data_dir), "CASESTREAM_HOST": "127.0.0.1", "CASESTREAM_PORT": str(port),
    })
    env.update(extra or {})
    return env


def casestream_exe() -> list[str]:
    exe = Path(sys.executable).parent / "casestream"
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from casestream.cli import main; main()"]


@contextlib.contextmanager
def casestream_serve(
    data_dir: Path, extra_env: dict[str, str] | None = None, timeout: float = 60.0, args: Sequence[str] = (),
) -> Iterator[Served]:
    """Start `casestream serve` on a free loopback port, wait for /readyz, stop it (by its pid) afterwards."""
    import httpx

    port = free_port()
    log_path = data_dir.parent / f"serve-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            [*casestream_exe(), "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            env=serve_env(data_dir, port, extra_env), stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT),
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    served = Served(url, data_dir, process, float("nan"), log_path)
    try:
        deadline = started + timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"casestream serve exited ({process.returncode}):\n{served.log_tail()}")
                try:
                    if client.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"casestream serve not ready within {timeout}s:\n{served.log_tail()}")
                time.sleep(0.02)
        served.ready_seconds = time.perf_counter() - started
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        with contextlib.suppress(OSError):
            log_path.unlink()


# ----------------------------------------------------------------------------------------------------------------
# the load client


class RawHttp:
    """A minimal HTTP/1.1 keep-alive client on one asyncio connection.

    The load generator must cost far less CPU than the server it measures: httpx spends milliseconds of CPU
    per request on a loaded machine (and its pool degrades with hundreds of queued requests), so the timed
    requests go through this instead; httpx is used for the untimed setup only.
    """

    def __init__(self, url: str, token: str | None = None, headers: dict[str, str] | None = None) -> None:
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        self.host, self.port = host, int(port)
        extra = dict(headers or {})
        if token is not None:
            extra["Authorization"] = f"Bearer {token}"
        self.head = "".join(f"{name}: {value}\r\n" for name, value in extra.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict[str, Any]) -> str:
        """Send one POST and read the whole answer; the status code, or the error's name."""
        return (await self.exchange(path, body))[0]

    async def exchange(self, path: str, body: dict[str, Any]) -> tuple[str, bytes]:
        """Send one POST; the status code (or the error's name) and the answer's body."""
        import orjson

        return await self.request("POST", path, orjson.dumps(body))

    async def request(self, method: str, path: str, payload: bytes | None = None) -> tuple[str, bytes]:
        """Send one request (a JSON body when payload is given); the status code (or the error's name) and the
        answer's body."""
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.head}"
            if payload is None:
                self.writer.write(f"{head}\r\n".encode())
            else:
                head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
                self.writer.write(head.encode() + payload)
            status = (await self.reader.readline()).split(b" ", 2)[1].decode()
            length, chunked, close = 0, False, False
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif name == b"connection":
                    close = b"close" in value.lower()
            content = b""
            if chunked:
                while size := int((await self.reader.readline()).split(b";")[0], 16):
                    content += (await self.reader.readexactly(size + 2))[:-2]
                await self.reader.readline()
            else:
                content = await self.reader.readexactly(length)
            if close:
                await self.close()
            return status, content
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            await self.close()
            return type(exc).__name__, b""

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


# ----------------------------------------------------------------------------------------------------------------
# PostgreSQL


@contextlib.contextmanager
def fresh_postgres_db(name: str) -> Iterator[dict[str, str]]:
    """A new database on the private PostgreSQL (started if needed; left running); dropped afterwards."""
    import psycopg

    from infra.postgres import PostgresServer

    server = PostgresServer()
    started = server.up()
    if started:
        print(f"(started the private PostgreSQL on 127.0.0.1:{server.info()['port']}; it is left running)")
    server.create_database(name)
    info = {**server.info(), "dbname": name}
    try:
        yield info
    finally:
        with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def postgres_env(info: dict[str, str]) -> dict[str, str]:
    return {
        "CASESTREAM_EVENT_STORE": "postgres", "CASESTREAM_POSTGRES_HOST": info["host"],
        "CASESTREAM_POSTGRES_PORT": info["port"], "CASESTREAM_POSTGRES_DB": info["dbname"],
        "CASESTREAM_POSTGRES_USER": info["user"], "CASESTREAM_POSTGRES_PASSWORD": info["password"],
    }


# ----------------------------------------------------------------------------------------------------------------
# realistic event logs, generated with the domain classes


def claim_spec() -> Any:
    from domain.definition import DefinitionSpec, Stage

    return DefinitionSpec(
        key="claim", name="Insurance claim",
        schema={
            "type": "object",
            "properties": {
                "claimant": {"type": "string"}, "city": {"type": "string"}, "product": {"type": "string"},
                "amount": {"type": "number", "minimum": 0}, "priority": {"type": "integer"},
                "notes": {"type": "string"},
            },
            "required": ["claimant"],
        },
        stages=(
            Stage("triage", "Triage", ("review", "rejected")),
            Stage("review", "Review", ("decision", "triage")),
            Stage("decision", "Decision", ("review", "paid", "rejected")),
            Stage("paid", "Paid", ()),
            Stage("rejected", "Rejected", ("triage",)),
        ),
        queues=("intake", "fraud"), card_fields=("claimant", "amount"), number_prefix="CLAIM",
    )


def complaint_spec() -> Any:
    from domain.definition import DefinitionSpec, Stage

    return DefinitionSpec(
        key="complaint", name="Customer complaint",
        schema={
            "type": "object",
            "properties": {"customer": {"type": "string"}, "city": {"type": "string"}, "channel": {"type": "string"}},
            "required": ["customer"],
        },
        stages=(Stage("new", "New", ("answered",)), Stage("answered", "Answered", ("new",))),
        queues=("front",), number_prefix="CMP",
    )


def context(user: str, now: datetime, roles: tuple[str, ...] = ("caseworker",)) -> Any:
    from domain.events import Context

    command_id = str(uuid.uuid4())
    return Context(user, TENANT, command_id, command_id, command_id, now, roles)


@dataclass(frozen=True)
class LogShape:
    """How big a generated log is: cases, and extra commands per case on average (assign/comment/data/move)."""

    cases: int
    commands_per_case: float
    seed: int = 7

    @property
    def key(self) -> str:
        return f"log-v1-{self.cases}c-{self.commands_per_case:g}cmd-s{self.seed}"


class LogWriter:
    """Appends what one command would store: the aggregates' events plus the command-log entry."""

    def __init__(self, store: Any, batch: int = 20_000) -> None:
        self.store = store
        self.batch = batch
        self.pending: list[Any] = []
        self.written = 0

    def command(self, ctx: Any, name: str, *aggregates: Any, result: dict[str, Any] | None = None) -> None:
        from domain.command_log import CommandEntry

        for aggregate in aggregates:
            self.pending.extend(aggregate.collect())
        entry = CommandEntry.handled(ctx, name, uuid.uuid4().hex, result or {})
        self.pending.extend(entry.collect())
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.store.append(self.pending)
            self.written += len(self.pending)
            self.pending = []


def generate_log(path: Path, shape: LogShape, progress: bool = True) -> dict[str, int]:
    """Write a realistic log into a new SQLite event store at path; return counts."""
    from adapters.event_store import sqlite_event_store
    from domain.case import Case
    from domain.definition import CaseDefinition
    from domain.numbering import CaseNumberSequence, sequence_id

    rng = random.Random(shape.seed)
    store = sqlite_event_store(path, synchronous="NORMAL")
    writer = LogWriter(store)
    specs = [claim_spec(), complaint_spec()]
    clock = datetime(2025, 1, 1, tzinfo=UTC)
    tick = timedelta(seconds=1)
    sequences = {}
    for spec in specs:
        ctx = context("admin", clock, ("admin",))
        writer.command(ctx, "PublishCaseDefinition", CaseDefinition.create(ctx, spec))
        sequences[spec.key] = CaseNumberSequence(sequence_id(TENANT, spec.key))
    live: list[tuple[Case, Any]] = []
    counts = {"cases": 0, "commands": 0}
    started = time.perf_counter()
    extra_total = int(shape.cases * shape.commands_per_case)
    extra_done = 0
    for i in range(shape.cases):
        clock += tick
        spec = specs[0] if rng.random() < 0.75 else specs[1]
        ctx = context(rng.choice(USERS), clock)
        sequence = sequences[spec.key]
        if spec.key == "claim":
            data = {
                "claimant": f"{rng.choice(('ana', 'ben', 'chloe', 'dan', 'eva'))} {rng.randint(1, 99_999)}",
                "city": rng.choice(CITIES), "product": rng.choice(PRODUCTS),
                "amount": round(rng.uniform(50, 20_000), 2), "priority": rng.randint(1, 4),
            }
        else:
            data = {"customer": f"cust-{rng.randint(1, 99_999)}", "city": rng.choice(CITIES), "channel": "phone"}
        case = Case.open(ctx, spec, 1, sequence.last + 1, f"{spec.name} #{i} in {data['city']}", data)
        sequence.issue(ctx, case.id)
        writer.command(ctx, "OpenCase", case, sequence, result={"number": case.number})
        counts["cases"] += 1
        counts["commands"] += 1
        live.append((case, spec))
        # interleave follow-up commands on recent-ish cases so the log looks like real traffic
        target_extra = int((i + 1) * shape.commands_per_case)
        while extra_done < min(target_extra, extra_total):
            extra_done += 1
            clock += tick
            case, spec = live[max(0, len(live) - 1 - int(rng.expovariate(1 / 50)))] if rng.random() < 0.7 \
                else rng.choice(live)
            _follow_up(writer, rng, case, spec, clock)
            counts["commands"] += 1
        if progress and i and i % 20_000 == 0:
            rate = writer.written / (time.perf_counter() - started)
            print(f"  generated {i:,} cases, {writer.written:,} events ({rate:,.0f} events/s)", flush=True)
    writer.flush()
    counts["events"] = store.max_position()
    store.close()
    return counts


def _follow_up(writer: LogWriter, rng: random.Random, case: Any, spec: Any, now: datetime) -> None:
    user = rng.choice(USERS)
    ctx = context(user, now)
    if case.status != "open":
        case.add_comment(ctx, f"note after closing by {user}")
        writer.command(ctx, "AddComment", case)
        return
    roll = rng.random()
    if roll < 0.30:
        case.assign(ctx, rng.choice([u for u in USERS if u != case.assignee]))
        writer.command(ctx, "AssignCase", case)
    elif roll < 0.60:
        words = " ".join(rng.choice(("called", "customer", "waiting", "docs", "photo", "ok", "refund"))
                         for _ in range(rng.randint(3, 12)))
        case.add_comment(ctx, f"{words} ({rng.choice(CITIES)})")
        writer.command(ctx, "AddComment", case)
    elif roll < 0.80 and spec.key == "claim":
        case.update_data(ctx, spec, {"amount": round(rng.uniform(50, 20_000), 2), "notes": f"n{rng.randint(1, 999)}"})
        writer.command(ctx, "UpdateCaseData", case)
    else:
        current = spec.stage(case.stage)
        if current and current.transitions:
            case.move_to_stage(ctx, spec, rng.choice(current.transitions))
            writer.command(ctx, "MoveCaseToStage", case)
        else:
            case.add_comment(ctx, "final stage reached")
            writer.command(ctx, "AddComment", case)


def cached_log(shape: LogShape) -> tuple[Path, dict[str, int] | None]:
    """The cached event log for shape (generated on first use); counts when it was generated now."""
    path = cache_root() / f"{shape.key}.events.sqlite"
    if path.exists():
        return path, None
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    for stale in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        stale.unlink(missing_ok=True)
    print(f"generating {shape} into {path} (cached for next runs)...", flush=True)
    started = time.perf_counter()
    try:
        counts = generate_log(tmp, shape)
        _checkpoint(tmp)
        os.replace(tmp, path)
    finally:
        for stale in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            stale.unlink(missing_ok=True)
    elapsed = time.perf_counter() - started
    print(f"generated {counts['events']:,} events ({counts['cases']:,} cases, {counts['commands']:,} commands) "
          f"in {elapsed:.1f}s: {counts['events'] / elapsed:,.0f} events/s", flush=True)
    return path, counts


def _checkpoint(path: Path) -> None:
    """Fold the WAL into the main file, so the cached log is one self-contained file."""
    import sqlite3

    conn = sqlite3.connect(str(path))
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()


def copy_db(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    return target
