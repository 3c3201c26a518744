"""The engine's side of the requests stored in the log: operator operations and published messages
(docs/processes.md, "Operations and messages through the log").

Whoever stores a request (an API replica of the distributed mode, a `serve --workers N` follower, or the embedded
API itself) needs no engine: the process that runs the engine follows the log with this follower, in log order,
and for each
- `ProcessOperationRequested`: applies the change as the operator's own command (processes/operations.py) and
  records the outcome on the request: applied with the command's reply, or refused with the problem (status, code,
  detail) the operator gets;
- `ProcessMessagePublished`: correlates the message to a waiting subscription, or buffers it while its time to live
  lasts (processes/message_buffer.py), and records which (`CorrelateProcessMessage` / `RecordMessageUnmatched`);
- `ProcessSignalBroadcast`: broadcasts the signal (processes/signals.py) and records the instances it started and
  reached (`RecordSignalDelivered`).

The follower keeps its position as a tracking row with the read models; a request whose outcome is already stored
is passed over, so a restart (or a follower that lost its position) never applies one twice. It reads the log
itself when it is ahead of the read models (the process worker's runner polls; an operator waits for the answer, and
nothing here reads a read model), and takes the windows the runner already decoded when it is not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from adapters.catch_up_thread import TrackedCatchUp
from commands.bus import Actor, CommandBus
from commands.ports import EventStore
from commands.process_requests import RecordMessageUnmatched, RecordProcessOperationOutcome
from commands.process_signals import MAX_STARTED, RecordSignalDelivered
from domain.errors import DomainError, PolicyUnavailable, ValidationFailed
from domain.events import Positioned
from domain.process_message import ProcessMessagePublished, fate_of
from domain.process_operation import PENDING, ProcessOperation, ProcessOperationRequested
from domain.process_signal import ProcessSignal, ProcessSignalBroadcast
from processes.message_buffer import BufferedMessage
from processes.offered_windows import OfferedWindows
from projections.ports import DocumentStore

if TYPE_CHECKING:
    from processes.engine import EmbeddedEngine

log = logging.getLogger(__name__)
NAME = "process-requests"
ACTOR_USER = "process:operations"  # the engine's actor recording outcomes
MAX_DETAIL, MAX_ERRORS = 20_000, 200  # what an outcome keeps of a refusal (RecordProcessOperationOutcome's limits)
STORE_EVERY = 10.0  # seconds: how often the position is stored while the windows hold no request
MAX_ATTEMPTS = 3  # technical failures of one request before it is refused as failed (later ones must not wait)
# a message correlates with what waits when the engine takes it (its place in the log), even with its time to live
# just gone (0: "a subscription waiting now"); one taken later than this after it expired is only recorded unmatched
LATE_TAKE = timedelta(seconds=30)


class RequestFollower(TrackedCatchUp):
    """Applies the operator requests and delivers the messages of the log, in log order, with one engine."""

    thread_name = "casestream-process-requests"
    failure_message = "process request follower failed; retrying"
    tracking_name = NAME

    def __init__(self, engine: EmbeddedEngine, bus: CommandBus, store: EventStore, documents: DocumentStore, *,
                 batch_size: int = 500, poll_interval: float = 0.1) -> None:
        super().__init__(documents, poll_interval)
        self.engine = engine
        self.bus = bus
        self.store = store
        self.batch_size = batch_size
        self.types = frozenset({ProcessOperationRequested.type_name(), ProcessMessagePublished.type_name(),
                                ProcessSignalBroadcast.type_name()})
        self._failures: dict[int, int] = {}
        self._stored_at = time.monotonic()
        self._classes = (ProcessOperationRequested, ProcessMessagePublished, ProcessSignalBroadcast)
        self._offered = OfferedWindows()  # the runner's decoded windows

    def offer(self, after: int, last: int, batch: Sequence[Positioned]) -> None:
        """Runner window listener (EmbeddedRunner.share_windows): the decoded events of (after, last], so that a
        request stored in this process is taken at once and without reading the log again."""
        self._offered.offer(after, last, batch)
        self._wake.set()

    def _window(self, start: int) -> tuple[list[Positioned], int]:
        """Our events of the offered window that covers `start`; else the next window read from the log."""
        taken = self._offered.take(start)
        if taken is not None:
            events, last = taken
            return [p for p in events if isinstance(p.event, self._classes)], last
        return self.store.read_batch(start, self.batch_size, self.types)

    def step(self) -> int:
        """Handle the next window of the log; how many events it held (0: nothing new)."""
        start = self.position
        if not self._offered and self.store.max_position() <= start:
            return 0
        batch, last = self._window(start)
        if last <= start:
            return 0
        for positioned in batch:  # each is passed over when handled before: the position is stored per window
            self._handle(positioned)
        if batch or time.monotonic() - self._stored_at > STORE_EVERY:
            self._advance(last)
            self._stored_at = time.monotonic()
        else:  # a window without requests (most of them): kept in memory, stored with a later one
            self.position = last
        return max(1, len(batch))

    def _handle(self, positioned: Positioned) -> None:
        event = positioned.event
        try:
            if isinstance(event, ProcessOperationRequested):
                self._operate(event)
            elif isinstance(event, ProcessMessagePublished):
                self._deliver(event)
            elif isinstance(event, ProcessSignalBroadcast):
                self._signal(event)
        except (DomainError, KeyError, ValueError) as exc:
            if isinstance(exc, PolicyUnavailable):
                raise
            self.last_error = f"request at {positioned.position}: {exc!r}"
            log.warning("process request at position %s passed over: %r", positioned.position, exc)
        except Exception as exc:
            failures = self._failures[positioned.position] = self._failures.get(positioned.position, 0) + 1
            if failures < MAX_ATTEMPTS:
                raise
            self._failures.pop(positioned.position, None)
            self.last_error = f"request at {positioned.position} failed {failures} times: {exc!r}"
            log.error("process request at position %s failed %d times: %r", positioned.position, failures, exc)
            if isinstance(event, ProcessOperationRequested):
                self._outcome(event, RecordProcessOperationOutcome(
                    request_id=event.aggregate_id, status=500, code="operation-failed",
                    detail=f"the process engine failed to apply the request: {exc!r}"))

    # -- operations -----------------------------------------------------------------------------------

    def _operate(self, event: ProcessOperationRequested) -> None:
        request = ProcessOperation.replay(event.aggregate_id, self.store.events_of(event.aggregate_id))
        if request.state != PENDING:
            return  # applied or refused before (a restart, a lost position)
        from processes.operations import apply_request  # SpiffWorkflow: imported with the engine, not before

        try:
            reply = apply_request(self.engine, event)
        except PolicyUnavailable:
            raise  # not the operator's fault: tried again by the loop
        except DomainError as exc:
            errors = [{"path": e.path, "message": e.message} for e in exc.errors] \
                if isinstance(exc, ValidationFailed) else []
            outcome = RecordProcessOperationOutcome(request_id=event.aggregate_id, status=exc.status,
                                                    code=exc.code, detail=exc.detail[:MAX_DETAIL],
                                                    errors=errors[:MAX_ERRORS])
        else:
            outcome = RecordProcessOperationOutcome(request_id=event.aggregate_id, reply=reply)
        self._outcome(event, outcome)

    def _outcome(self, event: ProcessOperationRequested, outcome: RecordProcessOperationOutcome) -> None:
        command = outcome.model_copy(update={"command_id": f"process-operation-outcome:{event.aggregate_id}"})
        self.bus.dispatch(command, Actor(ACTOR_USER, event.tenant, ("process",)),
                          correlation_id=event.meta.correlation_id, causation_id=str(event.event_id))

    # -- messages -------------------------------------------------------------------------------------

    def _deliver(self, event: ProcessMessagePublished) -> None:
        events = self.store.events_of(event.aggregate_id)
        publications = [e for e in events if isinstance(e, ProcessMessagePublished)]
        publication = next((n for n, e in enumerate(publications, start=1) if e.event_id == event.event_id), 0)
        if publication != len(publications) or fate_of(events, publication) is not None:
            return  # taken before, or published again since (so this one expired or correlated)
        buffer, key = self.engine.messages, event.aggregate_id
        message = BufferedMessage.of(event)
        if buffer.buffers(key):  # the buffer took it from the log at start: only offer it
            instance = buffer.offer(self.engine, message.subscription, only=key)
        elif message.expires_at + LATE_TAKE <= buffer.clock():
            instance = None  # long expired when taken (a follower far behind, or one reading old history)
        else:
            instance = buffer.publish(self.engine, message)
        if instance is not None:
            return  # the buffer recorded the correlation
        command = RecordMessageUnmatched(message_key=key, buffered=buffer.buffers(key),
                                         command_id=f"message-unmatched:{key}:{publication}")
        self.bus.dispatch(command, Actor(ACTOR_USER, event.tenant, ("process",)),
                          correlation_id=event.meta.correlation_id, causation_id=str(event.event_id))

    # -- signals --------------------------------------------------------------------------------------

    def _signal(self, event: ProcessSignalBroadcast) -> None:
        signal = ProcessSignal.replay(event.aggregate_id, self.store.events_of(event.aggregate_id))
        if signal.delivered is not None:
            return  # delivered before (a restart, a lost position)
        from processes.signals import broadcast  # SpiffWorkflow: imported with the engine, not before

        outcome = broadcast(self.engine, event.tenant, event.name, dict(event.variables))
        command = RecordSignalDelivered(signal_key=event.aggregate_id, started=outcome.started[:MAX_STARTED],
                                        delivered=outcome.delivered[:MAX_STARTED],
                                        command_id=f"signal-delivered:{event.aggregate_id}")
        self.bus.dispatch(command, Actor(ACTOR_USER, event.tenant, ("process",)),
                          correlation_id=event.meta.correlation_id, causation_id=str(event.event_id))
