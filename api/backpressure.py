"""Backpressure: while the read models (or the process manager) are further behind than the operator allows,
commands get 429.

Queries keep working (they read what is there, or wait with `wait_for`); only command intake (POST under
/api/) is refused, with `Retry-After`, so read models cannot fall hours behind under a burst. The decision
reads the lag measured in the background (adapters/lag.py): it costs nothing per request. Until a first
measurement succeeds, commands are admitted (no figures, no reason to refuse).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.lag import LagMonitor, LagReport
from api import problems
from casestream.bootstrap import Platform

MAX_RETRY_AFTER = 30
COMMAND_PREFIX = "/api/"


@dataclass(frozen=True)
class Limits:
    """Operator-set thresholds (0: that limit is off)."""

    events: int = 0
    seconds: float = 0.0

    @property
    def active(self) -> bool:
        return self.events > 0 or self.seconds > 0


@dataclass(frozen=True)
class Decision:
    """Whether a command is admitted; if not, how long to wait and why."""

    admit: bool
    retry_after: int = 0
    detail: str = ""
    code: str = "read-models-behind"


ADMIT = Decision(True)


def decide(report: LagReport | None, limits: Limits, interval: float = 1.0) -> Decision:
    """Refuse while lag is above a limit. Retry-After: the seconds above the limit (at least one measurement
    interval, at most 30 s), so clients come back about when the read models may be within it again. The process
    manager's lag counts the same way: its backlog is work the commands already accepted still owe."""
    if report is None or not limits.active:
        return ADMIT
    decision = _over(report.events_behind, report.seconds_behind, limits, interval, "the read models are")
    if decision.admit and report.processes is not None:
        decision = _over(report.processes.events, report.processes.seconds, limits, interval,
                         "the process manager is", "processes-behind")
    return decision


def _over(events: int, seconds: float, limits: Limits, interval: float, who: str,
          code: str = "read-models-behind") -> Decision:
    over_events = limits.events > 0 and events > limits.events
    over_seconds = limits.seconds > 0 and seconds > limits.seconds
    if not (over_events or over_seconds):
        return ADMIT
    wait = max(1, math.ceil(interval))
    if over_seconds:
        wait = max(wait, math.ceil(seconds - limits.seconds))
    wait = min(wait, MAX_RETRY_AFTER)
    reasons = []
    if over_events:
        reasons.append(f"{events:,} events behind (limit {limits.events:,})")
    if over_seconds:
        reasons.append(f"{seconds:.1f}s behind (limit {limits.seconds:g}s)")
    detail = f"{who} {' and '.join(reasons)}; commands are paused, retry after {wait}s"
    return Decision(False, wait, detail, code)


class Gate:
    """The shared state of the backpressure: the monitor, the limits and how many commands were refused."""

    def __init__(self, monitor: LagMonitor, limits: Limits) -> None:
        self.monitor = monitor
        self.limits = limits
        self.refused = 0

    def decision(self) -> Decision:
        report = self.monitor.report if self.monitor.measured else None
        return decide(report, self.limits, self.monitor.interval)


class Backpressure:
    """Pure-ASGI middleware: answers 429 problem+json to command POSTs while the gate refuses."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].startswith(COMMAND_PREFIX):
            decision = self.gate.decision()
            if not decision.admit:
                self.gate.refused += 1
                response = problems.problem(429, decision.code, decision.detail,
                                            headers={"Retry-After": str(decision.retry_after)})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install(app: FastAPI, platform: Platform) -> None:
    """Measure lag while the app runs (its lifespan), refuse commands above the limits, serve /metrics."""
    from api import routes_metrics

    monitor = platform.lag
    if monitor is None:
        return
    settings = platform.settings
    gate = Gate(monitor, Limits(settings.backpressure_lag_events, settings.backpressure_lag_seconds))
    app.state.gate = gate
    app.add_middleware(Backpressure, gate=gate)
    app.include_router(routes_metrics.router)
    app.router.lifespan_context = _with_monitor(app.router.lifespan_context, monitor)


def _with_monitor(
    inner: Callable[[Any], AbstractAsyncContextManager[Any]], monitor: LagMonitor,
) -> Callable[[Any], AbstractAsyncContextManager[Any]]:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        monitor.start()
        try:
            async with inner(app) as state:
                yield state
        finally:
            await monitor.stop()

    return lifespan
