"""Wait at start-up until PostgreSQL accepts a connection: patient with a server that is starting or slow under
load, bounded (and named in the error) for one that is down, immediate for a refusal that waiting cannot mend."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import psycopg

log = logging.getLogger(__name__)

FIRST_DELAY = 0.5
MAX_DELAY = 5.0
# libpq's connect_timeout is whole seconds, at least 2 (a smaller value is raised to 2)
ATTEMPT_TIMEOUT = 10
# refusals from a server that answers: waiting does not change a wrong password, user or database
PERMANENT = ("password authentication failed", "does not exist", "no pg_hba.conf entry",
             "no password supplied", "role \"")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL did not accept a connection (down past the patience, or refusing for good)."""


def wait_for_postgres(*, host: str, port: int, dbname: str, user: str, password: str, patience: float,
                      clock: Callable[[], float] = time.monotonic) -> float:
    """Return once a connection to PostgreSQL succeeds (the seconds it took); log each failed attempt with the
    server's address and reason; raise PostgresUnavailable after `patience` seconds or on a permanent refusal."""
    where = f"PostgreSQL at {host}:{port} (database {dbname}, user {user})"
    began = clock()
    deadline = began + patience
    delay = FIRST_DELAY
    attempts = 0
    while True:
        attempts += 1
        remaining = deadline - clock()
        try:
            with psycopg.connect(host=host, port=port, dbname=dbname, user=user, password=password,
                                 connect_timeout=max(2, min(ATTEMPT_TIMEOUT, int(remaining) + 1))):
                pass
        except psycopg.OperationalError as exc:
            reason = _reason(exc)
            if any(marker in reason for marker in PERMANENT):
                raise PostgresUnavailable(f"{where} refused the connection: {reason}") from None
            remaining = deadline - clock()
            if remaining <= 0:
                raise PostgresUnavailable(f"{where} did not accept a connection within {patience:.0f}s "
                                          f"({attempts} attempts; last: {reason})") from None
            pause = min(delay, remaining)
            log.warning("waiting for %s: %s; trying again in %.1fs (gives up %.0fs after the first try)",
                        where, reason, pause, patience)
            time.sleep(pause)
            delay = min(delay * 2, MAX_DELAY)
            continue
        took = clock() - began
        if attempts > 1:
            log.info("%s accepts connections (after %d attempts, %.1fs)", where, attempts, took)
        return took


def _reason(exc: psycopg.OperationalError) -> str:
    """libpq's message on one line (it spans several, starting with the address it tried)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines) or exc.__class__.__name__
