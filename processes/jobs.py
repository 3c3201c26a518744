"""Jobs: the one interface between a BPMN engine (embedded or Zeebe) and the workers that issue commands.

An engine turns a ready service task into a `Job` and calls `run_job`. The worker function registered for
the job's type (`zeebe:taskDefinition type`) reads the job's variables and headers, issues commands through
the `CommandSender` it is given, and returns variables to merge into the process. Outcomes:

- the function returns: the job is completed with those variables;
- a `DomainError` (the domain refused the command; not a version conflict or a reused command id, which
  are technical) or an explicit `BpmnError`: a BPMN error the model can
  catch with an error boundary event (code = the domain error's code, e.g. `stage-transition-not-allowed`);
- any other exception is technical: the engine fails the job and retries it with back-off until its retries
  run out, then raises an incident.

Commands issued by a job carry `command_id = job:<job key>:<n>` (n counts the commands the job issued), so a
job that is retried after its command was stored does not store it twice: the bus returns the first result.
Worker functions are the same for both engines; they never read a read model for a decision they must make
atomically (the aggregate decides when the command runs).

`run_jobs` runs several jobs with their commands decided together (one batch of the bus per round): a worker
function is deterministic in its job and the results it was given, so each round runs every unfinished worker
again, answering the commands it sent before from the earlier rounds; the first command it sends beyond those
joins the round's batch (`_Deferred` ends that run). Most workers send one command: two rounds, one batch, which
the bus merges with what other threads submit meanwhile (CommandBus.submit_envelopes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from commands.bus import Actor, CommandBus, Envelope, Result
from commands.messages import Command
from domain.errors import CommandFailed, CommandIdReused, DomainError, NothingToChange, VersionConflict


@dataclass(frozen=True)
class Job:
    """A service task ready to run: what the engine knows, and the tenant/case it runs for."""

    key: str
    type: str
    process_instance_key: str
    element_id: str
    tenant: str
    variables: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    retries: int = 3
    process_id: str = ""

    @property
    def case_id(self) -> str | None:
        """The case the process runs for (the `caseId` variable every casestream process carries)."""
        value = self.variables.get("caseId")
        return str(value) if value is not None else None


class BpmnError(Exception):
    """A business error thrown into the process (caught by an error boundary or error event sub-process)."""

    def __init__(self, code: str, message: str = "", variables: Mapping[str, Any] | None = None) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code
        self.variables = dict(variables or {})


class CommandSender(Protocol):
    """Issues one command on the job's behalf (idempotent per job; see module docstring)."""

    def __call__(self, command: Command) -> Result: ...


Worker = Callable[[Job, CommandSender], Mapping[str, Any] | None]
TASK_TYPES: dict[str, Worker] = {}


def task_type(name: str) -> Callable[[Worker], Worker]:
    """Register a worker function for a job type; a second registration of the same type is refused."""

    def register(func: Worker) -> Worker:
        if name in TASK_TYPES and TASK_TYPES[name] is not func:
            raise ValueError(f"task type {name!r} is already registered")
        TASK_TYPES[name] = func
        return func

    return register


def known_task_types() -> frozenset[str]:
    """Every registered job type (what deploy-time checking accepts)."""
    import processes.workers  # noqa: F401  (registers the built-in task types)

    return frozenset(TASK_TYPES)


@dataclass(frozen=True)
class Completed:
    """The job ran: merge these variables into the process."""

    variables: Mapping[str, Any]


@dataclass(frozen=True)
class Thrown:
    """The job raised a BPMN error."""

    code: str
    message: str
    variables: Mapping[str, Any]


@dataclass(frozen=True)
class Failed:
    """A technical failure: retry (with back-off) while retries remain."""

    message: str
    retries: int


JobOutcome = Completed | Thrown | Failed


def process_actor(job: Job) -> Actor:
    """Who the events a job causes are attributed to: the process, in the job's tenant."""
    return Actor(user=f"process:{job.process_id or 'unknown'}", tenant=job.tenant, roles=("process",))


class _Deferred(BaseException):
    """A worker sent a command whose result this round does not know yet (a BaseException: a worker's own
    `except Exception` must not swallow it)."""

    def __init__(self, envelope: Envelope) -> None:
        super().__init__(type(envelope.command).__name__)
        self.envelope = envelope


class _CommandBroke(Exception):
    """A command of a batch failed unexpectedly (a defect, logged by the bus): technical, the job is retried."""


Answer = tuple[Command, Result | DomainError]  # a command a worker sent in an earlier round, and what it got


def _numbered(job: Job, command: Command, n: int) -> Command:
    """The job's n-th command with the id `job:<key>:<n>` unless it has one: a retried job's repeat is recognised."""
    if command.command_id is not None:
        return command
    return command.model_copy(update={"command_id": f"job:{job.key}:{n}"})


def _attempt(job: Job, answers: Sequence[Answer], correlation_id: str | None) -> JobOutcome | Envelope:
    """Run job's worker with the results of its first commands known: its outcome, or the next command it sends."""
    worker = TASK_TYPES.get(job.type)
    if worker is None:
        return Failed(f"no worker for task type {job.type!r}", 0)
    actor = process_actor(job)
    issued = 0

    def send(command: Command) -> Result:
        nonlocal issued
        issued += 1
        command = _numbered(job, command, issued)
        if issued > len(answers):
            raise _Deferred(Envelope(command, actor, correlation_id or job.process_instance_key, f"job:{job.key}"))
        sent, answer = answers[issued - 1]
        if command != sent:  # the worker read something that changed meanwhile: retried later, as a new job run
            raise CommandIdReused(f"job {job.key} sent another command {issued} when run again")
        if isinstance(answer, CommandFailed):
            raise _CommandBroke(answer.detail)
        if isinstance(answer, NothingToChange):
            return unchanged(command)
        if isinstance(answer, DomainError):
            raise answer
        return answer

    try:
        return _classified(lambda: worker(job, send), job)
    except _Deferred as deferred:
        return deferred.envelope


def unchanged(command: Command) -> Result:
    """What a job's command that changes nothing answers: done, as asked (setting the queue a case is already in
    is no reason for an incident); no event, so no version or position of its own."""
    target = getattr(command, "case_id", None) or getattr(command, "task_id", None) or ""
    return Result(id=str(target), version=0, position=0, extra={}, repeated=True)


def _classified(work: Callable[[], Mapping[str, Any] | None], job: Job) -> JobOutcome:
    """Run a worker function and classify what happened (see the module docstring)."""
    try:
        variables = work()
    except BpmnError as exc:
        return Thrown(exc.code, exc.message, exc.variables)
    except (VersionConflict, CommandIdReused) as exc:
        # not the domain refusing the work: contention that outlasted the bus's retries, or a job key reused for
        # another command; retrying the job later is the right answer, a BPMN error is not
        return Failed(f"{type(exc).__name__}: {exc.detail}", max(job.retries - 1, 0))
    except DomainError as exc:
        return Thrown(exc.code, exc.detail, {})
    except Exception as exc:  # anything else is technical: the engine retries the job
        return Failed(f"{type(exc).__name__}: {exc}", max(job.retries - 1, 0))
    return Completed(dict(variables or {}))


def run_jobs(jobs: Sequence[Job], bus: CommandBus, correlation_id: str | None = None) -> list[JobOutcome]:
    """`run_job` for each job, their commands decided in shared batches (a round per command a worker sends).
    The bus itself failing (its store down) fails every job not finished yet, to be retried."""
    known_task_types()
    answers: list[list[Answer]] = [[] for _ in jobs]
    outcomes: list[JobOutcome | None] = [None] * len(jobs)
    pending = list(range(len(jobs)))
    while pending:
        asked: list[tuple[int, Envelope]] = []
        for index in pending:
            attempt = _attempt(jobs[index], answers[index], correlation_id)
            if isinstance(attempt, Envelope):
                asked.append((index, attempt))
            else:
                outcomes[index] = attempt
        if not asked:
            break
        try:
            # merged with what other threads submit meanwhile (the API's requests, other workers' task commands)
            results = bus.submit_envelopes([envelope for _, envelope in asked])
        except Exception as exc:
            for index, _ in asked:
                outcomes[index] = Failed(f"{type(exc).__name__}: {exc}", max(jobs[index].retries - 1, 0))
            break
        for (index, envelope), result in zip(asked, results, strict=True):
            answers[index].append((envelope.command, result))
        pending = [index for index, _ in asked]
    done = [outcome for outcome in outcomes if outcome is not None]
    if len(done) != len(jobs):
        raise RuntimeError("a job was left without an outcome")
    return done


def run_job(job: Job, bus: CommandBus, correlation_id: str | None = None) -> JobOutcome:
    """Run the worker registered for job.type against the command bus and classify what happened."""
    known_task_types()
    worker = TASK_TYPES.get(job.type)
    if worker is None:
        return Failed(f"no worker for task type {job.type!r}", 0)
    actor = process_actor(job)
    issued = 0

    def send(command: Command) -> Result:
        nonlocal issued
        issued += 1
        command = _numbered(job, command, issued)
        try:
            return bus.dispatch(command, actor, correlation_id=correlation_id or job.process_instance_key,
                                causation_id=f"job:{job.key}")
        except NothingToChange:
            return unchanged(command)

    return _classified(lambda: worker(job, send), job)
