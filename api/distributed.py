"""The API of `casestream serve --distributed`: the same app, with the live feed read from Kafka.

Commands go to PostgreSQL, queries to the MongoDB read models the workers keep, `wait_for` waits on the relay's
partition heads and the workers' tracking positions (adapters/read_progress.py), and the SSE feed is this
replica's own Kafka consumer (adapters/kafka_live.py) instead of an in-process runner.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.app import create_app
from casestream.bootstrap import DistributedPlatform


def create_distributed_app(platform: DistributedPlatform) -> FastAPI:
    """create_app, plus the Kafka-fed live feed running for the app's lifespan."""
    from adapters.kafka_live import kafka_feed_lifespan

    app = create_app(platform)
    inner: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(target: Any) -> AsyncIterator[Any]:
        async with kafka_feed_lifespan(app.state.broadcaster, platform.settings, platform.store), inner(
            target
        ) as state:
            yield state

    app.router.lifespan_context = lifespan
    return app
