"""Retry a Kafka admin step with back-off while a broker is unreachable (a node of the cluster restarting)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka.errors import KafkaError


async def with_kafka_retries(step: Callable[[], Awaitable[None]], what: str, log: logging.Logger,
                             attempts: int = 30) -> None:
    """Await step(); on KafkaError wait 0.25 s doubling to 5 s and try again, about two minutes in all for 30
    attempts; the last failure is raised."""
    for attempt in range(attempts):
        try:
            await step()
            return
        except KafkaError as exc:
            if attempt + 1 == attempts:
                raise
            delay = min(5.0, 0.25 * 2**attempt)
            log.warning("%s failed (%s: %s); retrying in %.1fs", what, type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
