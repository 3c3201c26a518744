"""Hears other processes' appends to the PostgreSQL log: LISTEN on the channel every insert NOTIFYs.

A follower of the log (the embedded runner of `casestream process-worker`, the mail outbox) is woken right after
each append of its own process; without this, an event stored by another process (an API replica) waited for the
follower's next poll (half a second). PostgreSQL delivers a notification when the inserting transaction commits,
so what a woken follower reads includes that append. After every (re)connection the listeners are called once:
appends made while nobody listened were not heard.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from psycopg.sql import SQL, Identifier

log = logging.getLogger(__name__)
CHECK_STOP_S = 0.5  # how long one wait for notifications lasts before the stop flag is looked at
RECONNECT_S = 1.0  # pause before listening again after the connection failed


class LogWatch:
    """A daemon thread calling `heard()` whenever a transaction that appended to the log commits (any process)."""

    def __init__(self, connect: Callable[[], Any], channel: str, heard: Callable[[], None]) -> None:
        self._connect = connect  # a new autocommit psycopg connection (not one of the pool's: it is held for good)
        self._listen = SQL("LISTEN {}").format(Identifier(channel))
        self._heard = heard
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connections = 0  # how many times it (re)connected

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="casestream-log-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(self._listen)
                    self.connections += 1
                    self._heard()  # what was appended while nobody listened
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=CHECK_STOP_S, stop_after=1):
                            self._heard()
            except Exception:
                if self._stop.is_set():
                    return
                log.warning("listening for appends to the log failed; trying again", exc_info=True)
                self._stop.wait(RECONNECT_S)
