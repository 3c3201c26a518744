"""Where a server's CPU goes during one measured loop: py-spy samples of its process (and children), summed per
thread kind (event loop, bus, read-model runner, other) and per function, printed after the run.

py-spy samples only threads that are running (not waiting), so each kind's share of the samples is its share of
the process's CPU; `bench/peer/run.py --profile DIR` keeps the raw samples in DIR for flame graphs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

# a sample's thread kind: the first of these found in its stack (frames are "function (file:line)")
KINDS = (
    ("runner", ("embedded_runner.py", "read_model_follower.py")),
    ("process manager", ("processes/",)),
    ("bus", ("commands/bus.py", "coalesce.py")),
    ("event loop", ("uvicorn", "granian", "asyncio", "fast_commands.py", "starlette")),
)


_PROCESS = re.compile(r"^Process (\d+):", re.M)
_THREAD = re.compile(r'^Thread (\d+) \([^)]*\): "([^"]*)"', re.M)


def process_tree(pid: int) -> list[int]:
    """pid and every process below it, in pid order (a `serve --workers N` parent and its N processes)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            children.setdefault(int(stat.read_text().rsplit(")", 1)[1].split()[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return sorted(found)


def thread_names(pid: int) -> dict[int, str]:
    """OS thread id -> Python thread name of every thread of pid and its children (from `py-spy dump`; {} without
    py-spy), prefixed with the process's place in the tree when there are several ("1:MainThread")."""
    exe = shutil.which("py-spy")
    if exe is None:
        return {}
    dump = subprocess.run([exe, "dump", "--subprocesses", "-p", str(pid)], capture_output=True, text=True,
                          timeout=60).stdout
    tree = process_tree(pid)
    names: dict[int, str] = {}
    for block in re.split(r"(?m)^(?=Process \d+:)", dump):
        found = _PROCESS.search(block)
        if found is None:
            continue
        place = tree.index(int(found.group(1))) if int(found.group(1)) in tree else -1
        for tid, name in _THREAD.findall(block):
            names[int(tid)] = f"{place}:{name}" if len(tree) > 1 else name
    return names


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of pid and its children, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    cpu: dict[int, float] = {}
    for process in process_tree(pid):
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{process}/task").iterdir():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                    cpu[int(task.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return cpu


def per_thread(before: dict[int, float], after: dict[int, float], names: dict[int, str], requests: int) -> str:
    """CPU ms per request of each thread that used any, busiest first (threads py-spy did not name: 'native')."""
    used: dict[str, float] = {}
    for tid, seconds in after.items():
        name = names.get(tid, "native")
        used[name] = used.get(name, 0.0) + seconds - before.get(tid, 0.0)
    busiest = sorted(used.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {seconds / max(1, requests) * 1000:.3f}" for name, seconds in busiest if seconds > 0.0005)


def kind_of(frames: list[str]) -> str:
    """The thread kind of one sampled stack."""
    for kind, marks in KINDS:
        if any(mark in frame for frame in frames for mark in marks):
            return kind
    return "other"


@contextlib.contextmanager
def profiled(pid: int, out: Path, label: str, rate: int = 200) -> Iterator[Path]:
    """py-spy recording pid (and its children) while the block runs; yields the raw samples' path."""
    exe = shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("--profile needs py-spy (pip install py-spy)")
    out.mkdir(parents=True, exist_ok=True)
    raw = out / f"{label}.raw"
    spy = subprocess.Popen([exe, "record", "-p", str(pid), "-r", str(rate), "-f", "raw", "--subprocesses",
                            "--nonblocking", "-o", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield raw
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


def summary(raw: Path, top: int = 25) -> str:
    """Shares of the samples per thread kind, and the functions with the most samples of their own and in all."""
    kinds: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        kinds[kind_of(frames)] += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return f"{raw}: no samples"
    lines = [f"py-spy samples: {total:,} ({raw})", "per thread kind: " + ", ".join(
        f"{kind} {n / total:.0%}" for kind, n in kinds.most_common())]
    lines.append("most samples of their own:")
    lines.extend(f"  {n / total:6.1%}  {frame}" for frame, n in own.most_common(top))
    lines.append("most samples in all (the function and what it calls):")
    lines.extend(f"  {n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(top * 2))
    return "\n".join(lines)
