"""Locks shared by the processes of one machine: an flock(2) on a small file per key.

`casestream serve --workers N` runs N processes over one SQLite event store. Commands racing for one hot
aggregate (a case-number sequence) take turns within a process by a thread lock; across the processes they would
collide on the store's version check and retry one by one, so they also take this lock, one file per key.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path


class FileKeyLocks:
    """An exclusive lock per key, held across processes (and across threads: callers serialise per key first)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._fds: dict[str, int] = {}
        self._guard = threading.Lock()

    def _fd(self, key: str) -> int:
        with self._guard:
            fd = self._fds.get(key)
            if fd is None:
                name = hashlib.sha256(key.encode()).hexdigest()[:32]
                fd = os.open(self.folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                self._fds[key] = fd
            return fd

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold key's lock for the block (blocks until no other process holds it)."""
        fd = self._fd(key)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._guard:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
