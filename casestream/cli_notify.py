"""`casestream notify`: the Novu publisher as its own process (docs/notifications.md)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer

from casestream.cli_process import log_info, stop_event
from casestream.settings import Settings


async def _notify_until_signalled(settings: Settings, from_beginning: bool) -> None:
    from adapters.novu_audience import MongoAudiences
    from adapters.novu_publisher import NovuPublisher, dead_letter_topic, notify_config
    from adapters.novu_triggers import NovuTriggers

    sender = NovuTriggers(settings.novu_url, settings.novu_api_key, settings.novu_timeout_seconds)
    audiences = MongoAudiences(settings.mongo_url, settings.mongo_database)
    publisher = NovuPublisher(notify_config(settings, from_beginning=from_beginning), sender, audiences)
    stop = stop_event()
    typer.echo(f"notify: group {settings.notify_group}, Kafka {settings.kafka_bootstrap} -> Novu {settings.novu_url}; "
               f"dead letters to {dead_letter_topic(settings.kafka_topic_prefix)}; Ctrl-C stops")
    try:
        await publisher.run(stop)
    finally:
        await asyncio.to_thread(audiences.close)
        c = publisher.counters
        typer.echo(f"notify: stopped ({c.sent} sent, {c.duplicates} duplicates, {c.dead_lettered} dead-lettered)")


def register(app: typer.Typer) -> None:
    """Add `notify` to the casestream command."""

    @app.command()
    def notify(
        from_beginning: Annotated[bool, typer.Option(
            "--from-beginning", help="A new consumer group starts at the oldest event instead of the newest "
            "(notifies the whole history once).",
        )] = False,
    ) -> None:
        """Send Novu notifications for case events (own consumer group, retries, dead-letter) until Ctrl-C."""
        log_info()
        settings = Settings()
        if not settings.novu_api_key:
            typer.echo("error: novu_api_key is empty (set CASESTREAM_NOVU_API_KEY)", err=True)
            raise typer.Exit(2)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_notify_until_signalled(settings, from_beginning))
