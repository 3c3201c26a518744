"""Waiting in async tests for something another task, thread or process does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll condition every 20 ms until it holds; fail naming `what` after timeout seconds."""
    give_up = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
