"""`casestream process-worker`: the embedded BPMN engine and process manager over a shared event store, no HTTP.

In the distributed stack the API replicas run no processes (`serve --distributed`); one process worker follows the
PostgreSQL log with its own runner (its read models and the manager's position in its data folder) and issues the
processes' commands through the bus, as `serve` does in embedded mode. It also applies what the replicas stored for
the engine (operators' requests, published messages) and records the outcomes they wait for
(processes/request_follower.py; docs/processes.md, "Operations and messages through the log")."""

from __future__ import annotations

import signal
import threading

import typer

from casestream.cli_process import log_info
from casestream.settings import Settings


def register(app: typer.Typer) -> None:
    """Add `process-worker` to the casestream command."""

    @app.command("process-worker")
    def process_worker() -> None:
        """Run the BPMN processes (engine, process manager) against the event store until Ctrl-C / SIGTERM."""
        from casestream.bootstrap import bootstrap

        log_info()
        settings = Settings()
        if settings.processes != "on":
            typer.echo("error: CASESTREAM_PROCESSES is off; a process worker has nothing to run", err=True)
            raise typer.Exit(1)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        platform = bootstrap(settings)
        typer.echo(f"process-worker: {settings.event_store} event store, read models in {settings.data_dir}; "
                   "Ctrl-C stops")
        try:
            while not stop.wait(1.0):
                pass
        finally:
            platform.close()
            typer.echo("process-worker: stopped")
