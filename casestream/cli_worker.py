"""`casestream worker` (Kafka -> MongoDB read models), `worker retry-dead-letters`, `worker rebuild`."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from casestream.cli_process import log_info
from casestream.settings import Settings

if TYPE_CHECKING:  # aiokafka and pymongo belong to the distributed mode: imported only when a command runs
    from adapters.stream_worker.app import WorkerConfig


class Source(StrEnum):
    kafka = "kafka"
    store = "store"


def worker_config(settings: Settings, name: str = "") -> WorkerConfig:
    """The worker's configuration, from the one Settings object (CASESTREAM_KAFKA_* / MONGO_* / WORKER_*)."""
    from adapters.stream_worker.app import WorkerConfig

    return WorkerConfig(
        bootstrap=settings.kafka_bootstrap,
        prefix=settings.kafka_topic_prefix,
        partitions=settings.kafka_partitions,
        replication_factor=settings.kafka_replication_factor,
        group=settings.worker_group,
        mongo_url=settings.mongo_url,
        database=settings.mongo_database,
        batch_size=settings.worker_batch_size,
        within=settings.worker_batch_within,
        rebalance_timeout=settings.worker_rebalance_timeout,
        name=name,
    )


def register(app: typer.Typer) -> None:
    """Add `worker` and its sub-commands to the casestream command."""
    worker_app = typer.Typer(help="Fold the Kafka event topics into the MongoDB read models.")

    @worker_app.callback(invoke_without_command=True)
    def worker(
        ctx: typer.Context,
        name: Annotated[str, typer.Option(help="This worker's name in tracking documents (default host-pid).")] = "",
    ) -> None:
        """Run one worker of the consumer group until SIGINT/SIGTERM (several share the partitions)."""
        if ctx.invoked_subcommand is not None:
            return
        from adapters.stream_worker.app import StreamWorker

        log_info()
        settings = Settings()
        config = worker_config(settings, name)
        runner = StreamWorker(config)
        typer.echo(f"worker {runner.name}: group {config.group}, Kafka {config.bootstrap} (prefix {config.prefix}) "
                   f"-> MongoDB {config.mongo_url} database {config.database}; Ctrl-C stops", err=False)
        runner.run()
        typer.echo(f"worker {runner.name}: stopped after {runner.folded} events folded, {runner.parked} parked")

    @worker_app.command("retry-dead-letters")
    def retry_dead_letters(
        key: Annotated[list[str] | None, typer.Option(help="Only this case (aggregate id); repeatable.")] = None,
        list_only: Annotated[bool, typer.Option("--list", help="Show what is parked; change nothing.")] = False,
    ) -> None:
        """Apply the parked events of each parked case in order (after the fix is deployed) and unpark it."""
        from adapters.stream_worker.rebuild import retry_parked

        log_info()
        failed = retry_parked(worker_config(Settings()), keys=key or None, list_only=list_only, echo=typer.echo)
        if failed:
            raise typer.Exit(1)

    @worker_app.command("rebuild")
    def rebuild(
        source: Annotated[Source, typer.Option("--from", help="kafka: the topics from the start; store: the "
                                                              "event store's log.")] = Source.store,
    ) -> None:
        """Drop the MongoDB read models and fold every event again (stop the workers first); prints events/s."""
        from adapters.stream_worker import rebuild as rb

        log_info()
        settings = Settings()
        config = worker_config(settings, "rebuild")
        if source is Source.kafka:
            result = rb.run_rebuild_from_kafka(config)
        else:
            from casestream.bootstrap import build_event_store

            store = build_event_store(settings)
            try:
                result = rb.rebuild_from_store(config, store)
            finally:
                store.close()
        typer.echo(result.line(source.value))

    app.add_typer(worker_app, name="worker")
