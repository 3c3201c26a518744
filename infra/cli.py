"""`casestream infra up|down|status|logs`: obtain, start, check and stop the real servers."""

from __future__ import annotations

import json

import typer

from infra import registry
from infra.process import ServerStartError

app = typer.Typer(help="Obtain, start, check and stop the servers the platform talks to.")


def _selected(name: str) -> list[str]:
    if name == "all":
        return registry.names()
    if name not in registry.names():
        raise typer.BadParameter(
            f"unknown server {name!r}; known: all, {', '.join(registry.names())}"
        )
    return [name]


@app.command()
def up(name: str = typer.Argument("all", help="server name or 'all'")) -> None:
    """Start a server (obtaining it into the cache first) and wait until it is healthy."""
    for each in _selected(name):
        server = registry.get(each)
        try:
            started = server.up()
        except ServerStartError as exc:
            typer.echo(f"{each}: failed to start\n{exc}", err=True)
            raise typer.Exit(1) from None
        state = "started" if started else "already running"
        typer.echo(f"{each}: {state} {json.dumps(server.info())}")


@app.command()
def down(name: str = typer.Argument("all", help="server name or 'all'")) -> None:
    """Stop a server by its own PID."""
    for each in reversed(_selected(name)):
        registry.get(each).down()
        typer.echo(f"{each}: stopped")


@app.command()
def status() -> None:
    """Say which servers run and where they listen."""
    for each in registry.names():
        server = registry.get(each)
        if server.running():
            typer.echo(f"{each}: running pid={server.pid()} {json.dumps(server.info())}")
        else:
            typer.echo(f"{each}: stopped")


@app.command()
def logs(name: str, lines: int = typer.Option(60, help="how many lines")) -> None:
    """Print the tail of a server's log."""
    for each in _selected(name):
        typer.echo(f"== {each}\n{registry.get(each).logs(lines)}")
