"""The start-up helpers every long-running command shares: SIGINT/SIGTERM reach the running loop."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from casestream.cli_process import on_stop_signal, stop_event


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_a_stop_signal_sets_the_stop_event(sig: signal.Signals) -> None:
    stop = stop_event()
    try:
        os.kill(os.getpid(), sig)
        await asyncio.wait_for(stop.wait(), timeout=5)
    finally:
        loop = asyncio.get_running_loop()
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)
    assert stop.is_set()


async def test_a_stop_signal_calls_the_callback_once() -> None:
    calls: list[str] = []
    on_stop_signal(lambda: calls.append("stop"))
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):
            if calls:
                break
            await asyncio.sleep(0.01)
    finally:
        loop = asyncio.get_running_loop()
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)
    assert calls == ["stop"]
