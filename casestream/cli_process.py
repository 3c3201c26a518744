"""What each long-running casestream command does at start: time-stamped log lines, stop on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_info() -> None:
    """Log INFO and above to stderr with a time stamp and the logger's name."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)


def on_stop_signal(callback: Callable[[], object]) -> None:
    """Call callback in the running event loop on SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, callback)


def stop_event() -> asyncio.Event:
    """An event that SIGINT or SIGTERM sets (for a `run(stop)` loop)."""
    stop = asyncio.Event()
    on_stop_signal(stop.set)
    return stop
