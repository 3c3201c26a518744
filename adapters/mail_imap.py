"""The IMAP poller (aioimaplib): fetches a mailbox's unseen messages, hands each to the ingester, and marks it seen
only once the ingester has kept it (a message the ingester could not keep stays unseen and is offered again).
Between rounds it waits in IDLE where the server supports it, else it sleeps the poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import aioimaplib

from adapters.mail_ingest import Ingested

log = logging.getLogger(__name__)
_LITERAL_END = re.compile(rb"\{\d+\}$")
Ingest = Callable[[bytes, str, str], Ingested]  # (raw, mailbox, tenant) -> what became of it


@dataclass(frozen=True)
class ImapMailbox:
    """One mailbox to read: its address (the definition's), tenant, login and folder."""

    address: str
    tenant: str
    password: str
    user: str = ""  # the login name ("" : the address)
    folder: str = "INBOX"

    @property
    def login(self) -> str:
        return self.user or self.address


class ImapError(Exception):
    """The IMAP server refused a step (login, select, search, fetch)."""


def _ok(response: aioimaplib.Response, step: str) -> aioimaplib.Response:
    if response.result != "OK":
        raise ImapError(f"IMAP {step} failed: {response.result} {response.lines[-1:]!r}")
    return response


def message_bytes(response: aioimaplib.Response) -> bytes | None:
    """The literal of a `UID FETCH ... BODY.PEEK[]` reply (None when the reply carries none)."""
    lines = response.lines
    for index, line in enumerate(lines[:-1]):
        if isinstance(line, bytes | bytearray) and _LITERAL_END.search(bytes(line)):
            literal = lines[index + 1]
            return bytes(literal)
    return None


class ImapPoller:
    """Reads one mailbox for the ingester."""

    def __init__(self, host: str, port: int, mailbox: ImapMailbox, ingest: Ingest, *, timeout: float = 30.0,
                 idle_seconds: float = 300.0, poll_seconds: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.mailbox = mailbox
        self.ingest = ingest
        self.timeout = timeout
        self.idle_seconds = idle_seconds
        self.poll_seconds = poll_seconds
        self.last_error: str | None = None

    async def _connect(self) -> aioimaplib.IMAP4:
        client = aioimaplib.IMAP4(self.host, self.port, timeout=self.timeout)
        await client.wait_hello_from_server()
        _ok(await client.login(self.mailbox.login, self.mailbox.password), "LOGIN")
        _ok(await client.select(self.mailbox.folder), "SELECT")
        return client

    async def drain(self, client: aioimaplib.IMAP4) -> list[Ingested]:
        """Ingest every unseen message, oldest first; mark each seen once kept."""
        found = _ok(await client.uid_search("UNSEEN", charset=None), "SEARCH")
        uids = [uid.decode() for uid in bytes(found.lines[0]).split()] if found.lines else []
        outcomes = []
        for uid in uids:
            raw = message_bytes(_ok(await client.uid("fetch", uid, "(BODY.PEEK[])"), "FETCH"))
            if raw is None:
                continue  # expunged meanwhile
            outcome = await asyncio.to_thread(self.ingest, raw, self.mailbox.address, self.mailbox.tenant)
            _ok(await client.uid("store", uid, "+FLAGS.SILENT", "(\\Seen)"), "STORE")
            outcomes.append(outcome)
        return outcomes

    async def poll_once(self) -> list[Ingested]:
        """Connect, ingest what is unseen, log out."""
        client = await self._connect()
        try:
            return await self.drain(client)
        finally:
            await client.logout()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until stop is set: IDLE between rounds, reconnecting with back-off after a failure."""
        backoff = 1.0
        while not stop.is_set():
            try:
                client = await self._connect()
                try:
                    while not stop.is_set():
                        while await self.drain(client) and not stop.is_set():
                            pass  # what arrived while it ingested was announced then, not in the IDLE to come
                        self.last_error = None
                        backoff = 1.0
                        await self._wait(client, stop)
                finally:
                    with contextlib.suppress(Exception):  # the connection may be gone already
                        await asyncio.wait_for(client.logout(), 5)
            except Exception as exc:  # a server away or a refused step: retried, never the end of the poller
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("IMAP %s: %s (retry in %.0f s)", self.mailbox.address, self.last_error, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 60.0)

    async def _wait(self, client: aioimaplib.IMAP4, stop: asyncio.Event) -> None:
        """Until the server announces new mail (IDLE) or the poll interval passes, or stop is set."""
        stopping = asyncio.ensure_future(stop.wait())
        try:
            if not client.has_capability("IDLE"):
                await asyncio.wait([stopping], timeout=self.poll_seconds)
                return
            # at most poll_seconds: a message announced between the last search and IDLE is found by the next one
            wait = min(self.idle_seconds, self.poll_seconds)
            idle = await client.idle_start(timeout=self.idle_seconds)
            push = asyncio.ensure_future(client.wait_server_push(timeout=wait))
            await asyncio.wait([stopping, push], return_when=asyncio.FIRST_COMPLETED, timeout=wait)
            push.cancel()
            client.idle_done()
            await asyncio.wait_for(idle, self.timeout)
        finally:
            stopping.cancel()
