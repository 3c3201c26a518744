"""Every server infra/ can run, by name."""

from __future__ import annotations

from collections.abc import Callable

from infra.postgres import PostgresServer
from infra.server import Server

FACTORIES: dict[str, Callable[[], Server]] = {
    "postgres": PostgresServer,
}


def names() -> list[str]:
    return list(FACTORIES)


def get(name: str) -> Server:
    """The server called name; KeyError names the known ones."""
    try:
        return FACTORIES[name]()
    except KeyError:
        raise KeyError(f"unknown server {name!r}; known: {', '.join(FACTORIES)}") from None
