"""Every server infra/ can run, by name (imported lazily so one broken module does not hide the rest)."""

from __future__ import annotations

import importlib

from infra.server import Server

# name -> "module:ClassName"; order is start order for `infra up all`.
SERVERS: dict[str, str] = {
    "postgres": "infra.postgres:PostgresServer",
    "kafka": "infra.kafka:KafkaServer",
    "ferretdb": "infra.ferretdb:FerretDBServer",
    "opa": "infra.opa:OpaServer",
    "keycloak": "infra.keycloak:KeycloakServer",
    "s3": "infra.s3:S3Server",
    "mail": "infra.mail:MailServer",
    "traefik": "infra.traefik:TraefikServer",
    "clamav": "infra.clamav:ClamavServer",
}


def _load(name: str) -> type[Server] | None:
    module_name, class_name = SERVERS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    cls = getattr(module, class_name)
    if not (isinstance(cls, type) and issubclass(cls, Server)):
        raise TypeError(f"{SERVERS[name]} is not an infra Server")
    return cls


def names() -> list[str]:
    """Names of the servers whose modules exist in this checkout."""
    return [name for name in SERVERS if _load(name) is not None]


def get(name: str) -> Server:
    """The server called name; KeyError names the known ones."""
    cls = _load(name) if name in SERVERS else None
    if cls is None:
        raise KeyError(f"unknown server {name!r}; known: {', '.join(names())}")
    return cls()
