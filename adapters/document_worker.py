"""The document worker: scans pending versions and makes previews, off the request path, through commands.

It follows the event log behind the read models (like the process manager): each attached version, new version or
passed scan names a (document, version) to look at, and the read model — already past that event — says what it
needs now. A pending version is streamed through the scanner and `RecordDocumentScan` records the verdict; an
available version of a type with a renderer gets a thumbnail written to storage beside its content
(`…/previews/<sha256>.png`, so the same bytes are drawn once per case) and `RecordDocumentPreview` records it, or
records why none could be made.

Why commands and not just objects: the read model then knows whether a preview exists (the portal asks for one only
then), a restart finds its work in the log from its tracking position, and a repeat is harmless (deterministic
command ids; the aggregate refuses a second verdict or preview).

While the scanner is unreachable the worker stops at that event and tries again after `retry_seconds`: the version
stays pending (never downloadable), and nothing after it is lost.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from adapters.catch_up_thread import TrackedCatchUp
from adapters.object_storage import ObjectStorage, preview_key
from adapters.previews import PreviewFailed, previewable, render
from adapters.scanning import Scanner, ScannerUnavailable
from commands import messages as m
from commands.bus import Actor, CommandBus
from commands.ports import EventStore
from domain import document as d
from domain.errors import DomainError
from domain.events import Positioned
from projections.ports import DocumentStore

log = logging.getLogger(__name__)
NAME = "document-worker"
ACTOR = "system:documents"
TYPES = frozenset(t.type_name() for t in (d.DocumentAttached, d.DocumentVersionAdded, d.DocumentVersionScanned))


@contextmanager
def closing(chunks: Iterator[bytes]) -> Generator[Iterator[bytes]]:
    """The object's chunks, closed afterwards even when a reader stopped early (S3 returns its connection then)."""
    try:
        yield chunks
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


class DocumentWorker(TrackedCatchUp):
    """Scans and previews document versions as they appear in the log (behind the read models)."""

    thread_name = "casestream-document-worker"
    failure_message = "document worker failed; retrying"
    tracking_name = NAME

    def __init__(
        self, bus: CommandBus, store: EventStore, documents: DocumentStore, storage: ObjectStorage,
        scanner: Scanner, read_limit: Callable[[], int], *, batch_size: int = 200, poll_interval: float = 1.0,
        retry_seconds: float = 5.0,
    ) -> None:
        super().__init__(documents, poll_interval)
        self.bus = bus
        self.store = store
        self.storage = storage
        self.scanner = scanner
        self.read_limit = read_limit
        self.batch_size = batch_size
        self.retry_seconds = retry_seconds
        self.waiting_for_scanner = False  # the scanner was unreachable at the last try

    def offer(self, batch: Sequence[Positioned]) -> None:
        """Runner subscriber: wake when a batch holds a document version event."""
        if any(p.event.type_name() in TYPES for p in batch):
            self._wake.set()

    def step(self) -> int:
        """Handle the next batch the read models already hold; 0 when there is none (or the scanner is away)."""
        limit = self.read_limit()
        if limit <= self.position:
            return 0
        batch, last = self.store.read_batch(self.position, self.batch_size, TYPES)
        for positioned in batch:
            if positioned.position > limit:
                break
            try:
                self._handle(positioned)
            except ScannerUnavailable as exc:
                self._advance(positioned.position - 1)
                self.waiting_for_scanner = True
                self.last_error = str(exc)
                log.warning("document worker waits for the scanner: %s", exc)
                self._stop.wait(self.retry_seconds)
                return 0
        self.waiting_for_scanner = False
        self._advance(min(last, limit))
        return max(1, len(batch))


    # -- one version --------------------------------------------------------------------------------------

    def _handle(self, positioned: Positioned) -> None:
        event = positioned.event
        assert isinstance(event, d.DocumentAttached | d.DocumentVersionAdded | d.DocumentVersionScanned)
        number = 1 if isinstance(event, d.DocumentAttached) else event.version_number
        found = self.documents.get("documents", str(event.aggregate_id))
        doc = found[0] if found else None
        if doc is None or doc.get("status") == d.REMOVED or number > len(doc["versions"]):
            return
        version: dict[str, Any] = doc["versions"][number - 1]
        actor = Actor(ACTOR, doc["tenant"], ("process",))
        if version["status"] == d.PENDING:
            try:
                with closing(self.storage.get(version["object_key"])) as chunks:
                    verdict = self.scanner.scan(chunks)
            except KeyError:  # no bytes to scan, now or later: the version stays pending (never visible)
                log.warning("document %s version %s: stored bytes %s missing; left pending", doc["id"], number,
                            version["object_key"])
                return
            self._dispatch(m.RecordDocumentScan(
                command_id=f"{ACTOR}:{doc['id']}:{number}:scan", case_id=UUID(doc["case_id"]),
                document_id=UUID(doc["id"]), version_number=number, clean=verdict.clean, reason=verdict.reason,
            ), actor)
            return  # a clean scan is an event of its own: the preview follows from it
        if version["status"] == d.AVAILABLE and version.get("preview") is None and previewable(
                version["content_type"]):
            self._preview(doc, version, actor)

    def _preview(self, doc: dict[str, Any], version: dict[str, Any], actor: Actor) -> None:
        key = preview_key(doc["tenant"], doc["case_id"], version["sha256"])
        error = ""
        if self.storage.stat(key) is None:
            try:
                with closing(self.storage.get(version["object_key"])) as chunks:  # a renderer may stop early
                    png = render(version["content_type"], chunks)
            except PreviewFailed as exc:
                png, error = None, str(exc) or "the file could not be drawn"
            except KeyError:  # retrying would not bring them back: recorded as a preview that could not be made
                png, error = None, "the stored bytes are missing"
            if png is not None:
                self.storage.put(key, io.BytesIO(png), len(png), "image/png")
            elif not error:
                return
        self._dispatch(m.RecordDocumentPreview(
            command_id=f"{ACTOR}:{doc['id']}:{version['number']}:preview", case_id=UUID(doc["case_id"]),
            document_id=UUID(doc["id"]), version_number=version["number"], preview_key="" if error else key,
            error=error,
        ), actor)

    def _dispatch(self, command: m.Command, actor: Actor) -> None:
        try:
            self.bus.dispatch(command, actor)
        except DomainError as exc:  # already recorded, or the document changed meanwhile: nothing to retry
            log.info("document worker: %s refused: %s", type(command).__name__, exc)
