"""The composition root: builds the adapters for the configured mode and wires them together."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from adapters.embedded_runner import EmbeddedRunner
from adapters.event_store import RecorderEventStore, postgres_event_store, sqlite_event_store
from adapters.file_locks import FileKeyLocks
from adapters.issuer import BuiltinIssuer
from adapters.lag import EmbeddedLag, LagMonitor, read_model_topics
from adapters.object_storage import ObjectStorage
from adapters.read_model_follower import TrackingFollower
from adapters.scanning import NoScan, Scanner
from adapters.sqlite_documents import SqliteDocumentStore
from casestream.identity import build_identity
from casestream.mail_setup import MailRuntime, build_mail
from casestream.policy_setup import build_policy
from casestream.settings import Settings
from casestream.storage_setup import build_document_worker, build_scanner, build_storage
from commands.audit import AuditRecorder, audit_denials
from commands.bus import CommandBus
from projections.catalog import ALL
from projections.ports import DocumentStore

PROCESS_MANAGER = "process-manager"  # the process manager's tracking row (processes/manager.py NAME)

if TYPE_CHECKING:  # the distributed mode's adapters (aiokafka, pymongo) are imported only when it is built
    from adapters.document_worker import DocumentWorker
    from adapters.mongo_documents import MongoDocumentStore
    from adapters.password_login import PasswordLogin
    from adapters.read_progress import KafkaReadProgress
    from adapters.tokens import TokenVerifier
    from processes.platform import Processes


class ReadModelHost(Protocol):
    """What the API needs from whatever keeps the read models current (embedded runner, Kafka workers' progress)."""

    last_error: str | None

    @property
    def position(self) -> int: ...

    @property
    def running(self) -> bool: ...

    def wait(self, position: int, timeout: float) -> bool: ...

    def stop(self) -> None: ...


class ReadModels(DocumentStore, Protocol):
    """A document store the platform owns (and closes)."""

    def close(self) -> None: ...


@dataclass
class Platform:
    """Everything an entrypoint needs, built once at start-up."""

    settings: Settings
    store: RecorderEventStore
    bus: CommandBus
    documents: ReadModels
    runner: ReadModelHost
    issuer: BuiltinIssuer | None  # None when external OIDC issuers are configured (the built-in one is off)
    verifier: TokenVerifier  # what the API checks bearer tokens with (docs/identity.md)
    lag: LagMonitor | None = None  # projection lag, measured in the background while the API runs
    processes: Processes | None = None  # BPMN engine + process manager (embedded, CASESTREAM_PROCESSES=on)
    login: PasswordLogin | None = None  # the built-in issuer's password grant (None when it is off)
    audit: AuditRecorder | None = None  # records the commands the policy refuses (commands/audit.py)
    storage: ObjectStorage | None = None  # where document bytes live (docs/documents.md)
    scanner: Scanner = field(default_factory=NoScan)  # what looks at an upload before it becomes a version
    document_worker: DocumentWorker | None = None  # scans pending versions again, makes previews (background)
    mail: MailRuntime | None = None  # e-mail to case: ingester, outbox, IMAP pollers, SMTP receiver (docs/email.md)

    def close(self) -> None:
        if self.document_worker is not None:
            self.document_worker.stop()
        if self.mail is not None:
            self.mail.stop()
        if self.processes is not None:
            self.processes.stop()
        if self.audit is not None:  # stores the repeat counts of the current window before the store closes
            self.audit.close()
        self.runner.stop()
        self.documents.close()
        close_verifier = getattr(self.verifier, "close", None)
        if close_verifier is not None:  # the OIDC verifier's HTTP client
            close_verifier()
        self.store.close()


@dataclass
class EmbeddedPlatform(Platform):
    """The embedded platform: read models in SQLite, kept by the in-process runner."""

    documents: SqliteDocumentStore
    runner: EmbeddedRunner


@dataclass
class FollowerPlatform(Platform):
    """An API process of `serve --workers N` that is not the runner: it appends commands and reads the SQLite read
    models another process keeps (adapters/read_model_follower.py)."""

    documents: SqliteDocumentStore
    runner: TrackingFollower


@dataclass
class DistributedPlatform(Platform):
    """The distributed API: read models in MongoDB, kept by `casestream worker` processes."""

    documents: MongoDocumentStore
    runner: KafkaReadProgress


def build_event_store(settings: Settings) -> RecorderEventStore:
    if settings.event_store == "postgres":
        from adapters.postgres_wait import wait_for_postgres  # psycopg: imported only in the distributed mode

        # a server that is starting or slow under load is waited for here, not counted as a crash of this process
        wait_for_postgres(host=settings.postgres_host, port=settings.postgres_port, dbname=settings.postgres_db,
                          user=settings.postgres_user, password=settings.postgres_password,
                          patience=settings.postgres_start_wait_seconds)
        return postgres_event_store(
            host=settings.postgres_host, port=settings.postgres_port, dbname=settings.postgres_db,
            user=settings.postgres_user, password=settings.postgres_password,
            pool_size=settings.postgres_pool_size, schema=settings.postgres_schema,
            pool_timeout=settings.postgres_pool_timeout_seconds,
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return sqlite_event_store(settings.events_path, synchronous=settings.sqlite_synchronous)


def shared_key_lock(settings: Settings) -> FileKeyLocks:
    """Cross-process locks per contention key, for processes sharing one event store (`serve --workers N`)."""
    return FileKeyLocks(settings.data_dir / "locks")


def bootstrap(
    settings: Settings | None = None, *, start_runner: bool = True, shared: bool = False
) -> EmbeddedPlatform:
    """Build the platform for settings (read from the environment when None); shared: other processes append to
    the same event store (`serve --workers N`; this one runs the runner and the processes)."""
    settings = settings or Settings()
    policy = build_policy(settings)  # first: a policy that fails to load stops the start (file and line)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = build_event_store(settings)
    documents = SqliteDocumentStore(settings.views_path, ALL)
    runner = EmbeddedRunner(store, documents, ALL, batch_size=settings.runner_batch_size,
                            coalesce=settings.runner_coalesce_seconds)
    identity = build_identity(settings)
    lag = EmbeddedLag(store, runner, ALL)
    monitor = LagMonitor(lag.measure, lag.read_models, "embedded", settings.lag_refresh_seconds)
    bus = CommandBus(store, policy, shared_key_lock(settings).hold if shared else None)
    platform = EmbeddedPlatform(settings, store, bus, documents, runner, identity.issuer,
                                identity.verifier, monitor, login=identity.login)
    platform.audit = audit_denials(platform.bus)  # refused commands go to the audit log (commands/audit.py)
    platform.storage = build_storage(settings, distributed=False)
    platform.scanner = build_scanner(settings)
    if settings.processes == "on":
        from processes.platform import Processes

        platform.processes = Processes(platform.bus, store, documents, runner)
        lag.process_position = platform.processes.position  # the manager's backlog in /metrics and backpressure
        if not start_runner:  # tools (demo, rebuild) run no processes but publish definitions naming them
            platform.processes.build()
    platform.mail = build_mail(settings, platform.bus, store, documents, platform.storage, platform.scanner)
    if start_runner:
        platform.document_worker = build_document_worker(settings, platform.bus, store, documents, platform.storage,
                                                          platform.scanner, lambda: runner.position)
        if platform.document_worker is not None:  # woken by each batch the read models hold
            runner.subscribe(platform.document_worker.offer)
            platform.document_worker.start()
        runner.start()
        platform.mail.start()
        if platform.processes is not None:  # SpiffWorkflow loads while the API already answers
            platform.processes.start_in_background()
    return platform


def bootstrap_follower(settings: Settings) -> FollowerPlatform:
    """An API process beside the one `bootstrap(shared=True)` built: the same event store and read models, no
    runner and no processes (their positions are read from the shared tracking rows)."""
    policy = build_policy(settings)
    store = build_event_store(settings)
    documents = SqliteDocumentStore(settings.views_path, ALL)
    follower = TrackingFollower(store, documents, ALL, batch_size=settings.runner_batch_size)
    identity = build_identity(settings)
    lag = EmbeddedLag(store, follower, ALL)
    if settings.processes == "on":  # the process manager's position, stored by the runner process (processes/)
        lag.process_position = lambda: documents.tracking(PROCESS_MANAGER)
    monitor = LagMonitor(lag.measure, lag.read_models, "embedded", settings.lag_refresh_seconds)
    bus = CommandBus(store, policy, shared_key_lock(settings).hold)
    platform = FollowerPlatform(settings, store, bus, documents, follower, identity.issuer, identity.verifier,
                                monitor, login=identity.login)
    platform.audit = audit_denials(platform.bus)
    platform.storage = build_storage(settings, distributed=False)
    platform.scanner = build_scanner(settings)  # its confirms scan too; the runner process's worker retries
    follower.start()
    return platform


def bootstrap_distributed(settings: Settings | None = None) -> DistributedPlatform:
    """The API side of the distributed mode: commands on PostgreSQL, queries on the MongoDB read models that
    `casestream worker` processes keep; no runner in this process (see docs/api.md, read-your-writes)."""
    from adapters.kafka_relay import HeadStore, positions_for
    from adapters.lag import KafkaLag
    from adapters.mongo_documents import MongoDocumentStore
    from adapters.read_progress import KafkaReadProgress, mongo_tracking, mongo_tracking_offsets

    settings = settings or Settings()
    if settings.event_store != "postgres":
        raise ValueError("the distributed mode needs CASESTREAM_EVENT_STORE=postgres (event_store)")
    policy = build_policy(settings)  # first: a policy that fails to load stops the start (file and line)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = build_event_store(settings)
    try:
        positions = positions_for(store)
        if not isinstance(positions, HeadStore):
            raise TypeError(f"{type(positions).__name__} keeps no partition heads")
        documents = MongoDocumentStore(settings.mongo_url, settings.mongo_database, ALL)
    except Exception:
        store.close()
        raise
    name = settings.relay_name
    progress = KafkaReadProgress(lambda: positions.load_spans(name), mongo_tracking(documents.db))
    read_models = read_model_topics(ALL, settings.kafka_topic_prefix)
    lag = KafkaLag(
        bootstrap=settings.kafka_bootstrap, group=settings.worker_group,
        topics=sorted({t for sources in read_models.values() for t in sources}), read_models=read_models,
        store=store, progress=progress, handled_offsets=mongo_tracking_offsets(documents.db),
    )
    monitor = LagMonitor(lag.measure, read_models, "distributed", settings.lag_refresh_seconds, close=lag.close)
    identity = build_identity(settings)
    platform = DistributedPlatform(settings, store, CommandBus(store, policy), documents, progress, identity.issuer,
                               identity.verifier, monitor, login=identity.login)
    platform.audit = audit_denials(platform.bus)  # refused commands go to the audit log (commands/audit.py)
    platform.storage = build_storage(settings, distributed=True)  # S3 unless document_storage says otherwise
    platform.scanner = build_scanner(settings)
    # each API replica runs one: their commands carry the same ids, so a version is scanned and previewed once
    platform.document_worker = build_document_worker(settings, platform.bus, store, documents, platform.storage,
                                                      platform.scanner, lambda: progress.position)
    if platform.document_worker is not None:
        platform.document_worker.start()
    return platform
