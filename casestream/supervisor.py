"""Keep the stack's own processes running: restart a crashed child with backoff, give up on a crash loop."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.process import stop_children

# A child that crashes more often than this within the window is crash-looping: restarting it again would only
# hide the bug, so the stack stops and says which child and why.
CRASH_LIMIT = 5
CRASH_WINDOW = 120.0
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
# a child that ran this long before it crashed starts its backoff from the beginning again
STABLE_AFTER = 60.0
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)
# SIGTERM grace for the whole stop, shared by the roles in order (not per role): a child that ignores SIGTERM or
# hangs in its shutdown is SIGKILLed, so stopping the stack (also after a crash loop) takes a bounded time
STOP_GRACE = 30.0
LAST_ROLE_GRACE = 2.0  # what a role still gets when the ones before it used up the grace


class CrashLoop(RuntimeError):
    """A child crashed more than CRASH_LIMIT times within CRASH_WINDOW seconds."""


@dataclass(frozen=True)
class ChildSpec:
    """How to start one child: its name, role (relay, worker, api, publisher, process-worker), argv, env, log."""

    name: str
    role: str
    argv: Sequence[str]
    env: dict[str, str]
    log: Path


@dataclass
class Child:
    """A supervised child: its current process, restarts so far, recent crashes, why it last exited."""

    spec: ChildSpec
    proc: subprocess.Popen[bytes]
    started_at: float
    restarts: int = 0
    crashes: deque[float] = field(default_factory=deque)
    consecutive: int = 0
    last_exit: str | None = None
    restart_at: float | None = None  # set while the child waits out its backoff

    @property
    def state(self) -> str:
        if self.restart_at is not None:
            return "restarting"
        return "running" if self.proc.poll() is None else "exited"


def describe_exit(code: int) -> str:
    """`exit 1`, or the signal's name for a child killed by one (`SIGKILL`)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


def last_line(log: Path, tail: int = 8192) -> str:
    """The last non-empty line of a child's log (why it exited, often: a server it needs, named with its address)."""
    try:
        with log.open("rb") as file:
            file.seek(max(0, file.seek(0, 2) - tail))
            lines = [line.strip() for line in file.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:500] if lines else ""


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies (even by SIGKILL), so no child outlives it."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(spec: ChildSpec) -> subprocess.Popen[bytes]:
    """Start a child in its own session (a Ctrl-C at the terminal reaches the supervisor only, which stops the
    children in order), appending its output to its log."""
    spec.log.parent.mkdir(parents=True, exist_ok=True)
    with spec.log.open("ab") as log:
        return subprocess.Popen(list(spec.argv), env=spec.env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)


class Supervisor:
    """Starts children, restarts the ones that exit (backoff doubling from BACKOFF_FIRST to BACKOFF_MAX), and raises
    CrashLoop when one exits more than CRASH_LIMIT times within CRASH_WINDOW seconds."""

    def __init__(self, say: Callable[[str], None], *, crash_limit: int = CRASH_LIMIT,
                 crash_window: float = CRASH_WINDOW, backoff_first: float = BACKOFF_FIRST,
                 backoff_max: float = BACKOFF_MAX, clock: Callable[[], float] = time.monotonic) -> None:
        self.say = say
        self.crash_limit = crash_limit
        self.crash_window = crash_window
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self.clock = clock
        self.children: dict[str, Child] = {}

    def start(self, spec: ChildSpec) -> Child:
        """Start a child now and supervise it from here on."""
        child = Child(spec, spawn(spec), self.clock())
        self.children[spec.name] = child
        return child

    def poll(self) -> None:
        """Restart what exited (after its backoff); raise CrashLoop for a child past the limit."""
        now = self.clock()
        for child in self.children.values():
            if child.restart_at is None:
                code = child.proc.poll()
                if code is not None:
                    self._crashed(child, code, now)
            elif now >= child.restart_at:
                child.proc = spawn(child.spec)
                child.started_at = now
                child.restart_at = None
                child.restarts += 1
                self.say(f"{child.spec.name}: restarted (pid {child.proc.pid}, restart {child.restarts})")

    def _crashed(self, child: Child, code: int, now: float) -> None:
        child.last_exit = describe_exit(code)
        if now - child.started_at >= STABLE_AFTER:
            child.consecutive = 0
        child.consecutive += 1
        child.crashes.append(now)
        while child.crashes and now - child.crashes[0] > self.crash_window:
            child.crashes.popleft()
        said = last_line(child.spec.log)
        why = f"\n    its log ends: {said}" if said else ""
        if len(child.crashes) > self.crash_limit:
            raise CrashLoop(f"{child.spec.name} exited {len(child.crashes)} times within {self.crash_window:.0f}s "
                            f"(last: {child.last_exit}); stopping the stack. Its log: {child.spec.log}{why}")
        delay = min(self.backoff_max, self.backoff_first * 2 ** (child.consecutive - 1))
        child.restart_at = now + delay
        self.say(f"{child.spec.name} ({child.spec.role}) {child.last_exit}; restarting in {delay:.1f}s "
                 f"(log {child.spec.log}){why}")

    def stop(self, roles: Sequence[str], grace: float = STOP_GRACE) -> None:
        """SIGTERM the children role by role in the given order (the rest last), SIGKILL what has not exited when
        the grace (shared by all roles) is over."""
        ordered = [role for role in roles] + sorted({c.spec.role for c in self.children.values()} - set(roles))
        deadline = time.monotonic() + grace
        for role in ordered:
            group = [c for c in self.children.values() if c.spec.role == role]
            for child in group:
                child.restart_at = None
            stop_children([c.proc for c in group if c.proc.poll() is None],
                          timeout=max(LAST_ROLE_GRACE, deadline - time.monotonic()))
            for child in group:
                self.children.pop(child.spec.name)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every child as plain data (the status file)."""
        return [{
            "name": c.spec.name, "role": c.spec.role, "state": c.state, "pid": c.proc.pid,
            "restarts": c.restarts, "last_exit": c.last_exit, "log": str(c.spec.log),
            "up_seconds": round(self.clock() - c.started_at, 1) if c.state == "running" else 0.0,
        } for c in self.children.values()]
