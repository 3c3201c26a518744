"""Every setting in one typed object: `CASESTREAM_*` environment variables, defaults that run embedded."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveInt
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """casestream's configuration. Each field is also `CASESTREAM_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="CASESTREAM_", extra="ignore")

    data_dir: Path = Field(default=Path(".data"), description="Folder for the embedded SQLite files and keys.")
    host: str = Field(default="127.0.0.1", description="Address `serve` binds.")
    port: int = Field(default=8000, description="Port `serve` binds.")
    public_url: str | None = Field(default=None, description="Base URL clients use (issuer). Default http://host:port.")

    event_store: Literal["sqlite", "postgres"] = Field(default="sqlite", description="Where events are stored.")
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        default="NORMAL",
        description="SQLite event store durability: NORMAL survives process crashes (may lose the last commits on a "
        "power cut); FULL syncs every commit.",
    )
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 25432
    postgres_db: str = "casestream"
    postgres_user: str = "casestream"
    postgres_password: str = "casestream"
    postgres_schema: str = ""
    postgres_pool_size: int = Field(default=16, description="Connections to PostgreSQL per process.")
    postgres_start_wait_seconds: float = Field(
        default=60.0, gt=0, description="How long a process starting waits for PostgreSQL to accept a connection "
        "(each failed try is logged with the address and reason) before it exits naming the server.")
    postgres_pool_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Longest wait for a pooled PostgreSQL connection before the operation fails "
        "(the stack gives its relay and process worker longer: under load, waiting beats a crash and restart).")

    default_tenant: str = Field(default="acme", description="Tenant `token` uses when none is given.")
    token_ttl_seconds: int = Field(default=8 * 3600, description="Lifetime of tokens from the built-in issuer.")
    audience: str = Field(default="casestream", description="`aud` every accepted token must carry.")

    # --- identity (docs/identity.md) ---
    oidc_issuers: dict[str, str] = Field(
        default_factory=dict,
        description="External OIDC issuers whose tokens the API accepts, as a JSON object {issuer URL: tenant} "
        "(Keycloak: a realm per tenant). When any is set, the built-in issuer is off.",
    )
    oidc_role_claims: list[str] = Field(
        default_factory=lambda: ["realm_access.roles", "resource_access.{audience}.roles"],
        description="Dotted claim paths whose string lists are the token's roles ({audience} is replaced).",
    )
    oidc_group_claim: str = Field(default="groups", description="Claim path of the token's groups.")
    oidc_portal_client_id: str = Field(
        default="casestream-portal", description="Public OIDC client the portal signs in with (code + PKCE).")
    oidc_client_id: str = Field(
        default="casestream-worker", description="Confidential OIDC client of casestream's own API clients "
        "(`casestream service-token`): client credentials grant.")
    oidc_client_secret: str = Field(default="", description="Secret of oidc_client_id at the tenant's issuer.")
    jwks_cache_seconds: float = Field(default=300.0, gt=0, description="How long a fetched JWKS is trusted.")
    jwks_refetch_interval_seconds: float = Field(
        default=10.0, ge=0, description="An unknown `kid` refetches the JWKS at most this often per issuer.")
    token_leeway_seconds: int = Field(default=30, ge=0, le=300, description="Clock skew allowed on exp/nbf/iat.")
    token_max_lifetime_seconds: int = Field(
        default=24 * 3600, gt=0, description="Tokens whose exp - iat is longer than this are refused.")
    users_file: Path | None = Field(
        default=None, description="The built-in issuer's users, passwords (argon2) and tenant memberships "
        "(default DATA_DIR/users.json).")
    login_max_failures: int = Field(default=5, ge=1, description="Failed logins before a user is locked out.")
    login_lockout_seconds: float = Field(default=300.0, gt=0, description="How long a lockout lasts.")

    # --- authorization (docs/authorization.md) ---
    policy_engine: Literal["embedded", "opa", "none"] = Field(
        default="embedded",
        description="Who evaluates the Rego policies: embedded (regopy, in-process), opa (the OPA server at "
        "opa_url), none (no policy: benchmarks only; every request allowed, loudly warned).",
    )
    policy_dir: Path | None = Field(default=None, description="Folder of the Rego policies (default: policies/).")
    opa_url: str = Field(default="http://127.0.0.1:28181", description="OPA server of policy_engine=opa.")
    opa_timeout_seconds: float = Field(default=2.0, gt=0, description="Timeout of one OPA decision request.")
    policy_cache_seconds: float = Field(default=2.0, ge=0, description="How long a decision is reused for an "
                                        "identical request (0: never).")

    max_body_bytes: int = Field(default=1_048_576, description="Largest request body the API accepts.")
    forwarded_allow_ips: str = Field(
        default="", description="Proxies whose X-Forwarded-For / X-Forwarded-Proto `serve` believes (uvicorn's "
        "forwarded_allow_ips: comma-separated addresses, or *). Empty: none, so a client cannot pick the address "
        "that login lockouts count against. The distributed stack sets 127.0.0.1 (Traefik).")
    max_header_bytes: int = Field(default=16_384, ge=1024, description="Largest request head (all headers) the "
                                  "API accepts (431 above it).")
    body_timeout_seconds: float = Field(default=30.0, gt=0, description="A request body must arrive within this "
                                        "many seconds (408 otherwise).")
    gc_thresholds: tuple[PositiveInt, PositiveInt, PositiveInt] = Field(
        default=(50_000, 50, 100),
        description="gc.set_threshold for `serve` (JSON list). The caches keep many live objects; with Python's "
                    "(700, 10, 10) the collector's scans cost ~25% of the write path's CPU and grew with the caches.",
    )
    gil_switch_interval: float = Field(
        default=0.001, gt=0, le=0.1,
        description="sys.setswitchinterval for `serve`: how long a thread may hold the GIL while others wait (s).",
    )
    wait_timeout_seconds: float = Field(default=5.0, description="Default bounded wait for `wait_for`.")
    max_wait_seconds: float = Field(default=30.0, description="Longest `wait_timeout` a query may ask for.")
    runner_batch_size: int = Field(default=2000, description="Events folded per read-model transaction.")
    runner_coalesce_seconds: float = Field(
        default=0.005, ge=0, le=1,
        description="After a commit wakes the runner, how long it waits to gather more before folding (read-your-"
                    "writes latency against CPU per event under load).",
    )

    kafka_bootstrap: str = Field(default="127.0.0.1:29092", description="Kafka bootstrap servers (relay).")
    kafka_topic_prefix: str = Field(default="casestream", description="Prefix of the event topics.")
    kafka_partitions: int = Field(default=6, ge=1, description="Partitions of topics the relay creates.")
    kafka_replication_factor: int = Field(default=0, ge=0, description="0: min(3, brokers).")
    relay_name: str = Field(default="kafka", description="The relay's row in relay_position.")
    relay_batch_size: int = Field(default=500, ge=1, description="Events per relay batch.")
    relay_poll_interval: float = Field(default=0.05, gt=0, description="Seconds between polls of an idle log.")

    mongo_url: str = Field(default="mongodb://127.0.0.1:27517/", description="MongoDB holding the distributed read "
                           "models (workers write, `serve --distributed` reads).")
    mongo_database: str = Field(default="casestream", description="MongoDB database of the read models.")
    worker_group: str = Field(default="casestream-worker", description="Kafka consumer group of "
                              "`casestream worker`; workers in one group share the partitions.")
    worker_batch_size: int = Field(default=2000, ge=1, description="Events a worker folds per MongoDB write.")
    worker_batch_within: float = Field(default=0.05, gt=0, description="Seconds a worker waits to fill a batch.")
    worker_rebalance_timeout: float = Field(default=5.0, gt=0, description="Longest wait (seconds) for a "
                                            "consumer-group rebalance; low makes the first group join fast.")

    lag_refresh_seconds: float = Field(default=1.0, gt=0, description="Seconds between projection-lag "
                                       "measurements (/metrics, /readyz and backpressure read the last one).")
    backpressure_lag_events: int = Field(default=0, ge=0, description="Commands get 429 while more events than "
                                         "this are not yet in the read models (0: no limit).")
    backpressure_lag_seconds: float = Field(default=0.0, ge=0, description="Commands get 429 while the oldest "
                                            "event not yet in the read models is older than this (0: no limit).")

    novu_url: str = Field(default="https://api.novu.co", description="Novu API base URL (`casestream notify`).")
    novu_api_key: str = Field(default="", description="Novu secret key, sent as `Authorization: ApiKey <key>`.")
    novu_max_attempts: int = Field(default=5, ge=1, description="Tries per trigger on 5xx, 429 or network errors "
                                   "before it goes to the dead-letter topic.")
    novu_backoff_seconds: float = Field(default=0.5, gt=0, description="First retry delay; doubles per try.")
    novu_backoff_max_seconds: float = Field(default=30.0, gt=0, description="Longest delay between two tries.")
    novu_timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of one trigger request.")
    notify_group: str = Field(default="casestream-notify", description="Kafka consumer group of `casestream notify`.")

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def events_path(self) -> Path:
        return self.data_dir / "events.sqlite"

    key_file: Path | None = Field(default=None, description="Issuer signing key (default DATA_DIR/issuer-key.json); "
                                  "API replicas share one.")

    processes: Literal["on", "off"] = Field(
        default="on", description="Run BPMN processes in `serve` (embedded engine with the shipped BPMN deployed, and "
        "the process manager); off: cases move only by hand.",
    )

    @property
    def views_path(self) -> Path:
        return self.data_dir / "views.sqlite"

    @property
    def key_path(self) -> Path:
        return self.key_file or self.data_dir / "issuer-key.json"

    zeebe_address: str = Field(default="127.0.0.1:26500", description="Zeebe gateway (host:port, plaintext gRPC) of "
                               "`casestream zeebe-worker`.")
    zeebe_tenant: str = Field(default="acme", description="casestream tenant of Zeebe jobs that name none (no "
                              "Zeebe tenant id, no `tenant` variable).")
    zeebe_worker_name: str = Field(default="casestream", description="Worker name reported to Zeebe.")
    zeebe_job_timeout_ms: int = Field(default=30_000, ge=1, description="How long an activated job stays locked "
                                      "to this worker before Zeebe hands it out again.")
    zeebe_request_timeout_ms: int = Field(default=10_000, ge=0, description="Long-poll time of ActivateJobs.")
    zeebe_max_jobs: int = Field(default=8, ge=1, description="Jobs per task type one worker runs at once.")
    zeebe_retry_backoff_ms: int = Field(default=1_000, ge=0, description="Back-off before a failed job is retried "
                                        "(doubles as its retries run out).")
    zeebe_max_backoff_ms: int = Field(default=60_000, ge=0, description="Longest back-off of a failed job.")

    # --- documents and object storage (docs/documents.md) ---
    document_storage: Literal["auto", "local", "s3"] = Field(
        default="auto", description="Where document bytes are kept: a folder under the data dir (local), S3 (s3), "
        "or auto: local embedded, S3 in distributed mode.")
    s3_url: str = Field(default="http://127.0.0.1:28333", description="S3 endpoint the server talks to (the "
                        "SeaweedFS that infra/ runs by default).")
    s3_public_url: str | None = Field(default=None, description="S3 endpoint browsers reach; presigned URLs are "
                                      "signed for it (default s3_url).")
    s3_access_key: str = "casestream"
    s3_secret_key: str = "casestream-secret-key"
    s3_region: str = "us-east-1"
    s3_bucket: str = Field(default="casestream-documents", description="Bucket of the documents.")
    document_url_seconds: int = Field(default=900, ge=1, le=7 * 24 * 3600, description="Lifetime of presigned "
                                      "upload and download URLs (at most 7 days).")
    document_upload_max_bytes: int = Field(default=1024**3, ge=1, description="Largest body the API's own upload "
                                           "route (local storage) accepts; a definition may allow less.")
    clamav_url: str | None = Field(default=None, description="clamd that scans uploads before they become "
                                   "visible (unix:///path/clamd.sock or tcp://host:port); none: every upload is "
                                   "taken as clean (the embedded default).")
    clamav_timeout: float = Field(default=60.0, gt=0, description="Longest wait for clamd's verdict on one file.")
    document_worker: Literal["on", "off"] = Field(default="on", description="Scan pending versions again and make "
                                                  "previews in the background (`serve`, embedded and distributed).")
    document_scan_retry_seconds: float = Field(default=5.0, gt=0, description="Wait before scanning again while "
                                               "clamd is unreachable (the version stays pending).")

    # --- e-mail to case (docs/email.md) ---
    mail_mailboxes: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Mailboxes read for cases, as JSON {address: {\"tenant\": ..., "
        "\"password\": ..., \"user\"?: login (default the address), \"folder\"?: (default INBOX)}}; each tenant's "
        "definition whose mail.address is that address takes its messages.")
    mail_imap: bool = Field(default=False, description="`serve` reads mail_mailboxes over IMAP (IDLE where offered).")
    mail_imap_host: str = Field(default="127.0.0.1", description="IMAP server of the mailboxes.")
    mail_imap_port: int = Field(default=28143, description="IMAP port (plain; the infra/ Dovecot by default).")
    mail_imap_idle_seconds: float = Field(default=300.0, gt=0, description="Longest IDLE before the poller renews it.")
    mail_imap_poll_seconds: float = Field(default=30.0, gt=0, description="Poll interval where IDLE is not offered; "
                                          "with IDLE, the longest wait before the mailbox is searched again anyway.")
    mail_smtp_receiver_port: int = Field(default=0, ge=0, description="`serve` takes direct SMTP delivery for "
                                         "mail_mailboxes on this port (0: off).")
    mail_smtp_receiver_host: str = Field(default="127.0.0.1", description="Address the SMTP receiver binds.")
    mail_outbox: bool = Field(default=True, description="`serve` sends the e-mails cases compose (off: they wait "
                              "in the outbox).")
    mail_smtp_host: str = Field(default="127.0.0.1", description="SMTP server outgoing e-mail is handed to.")
    mail_smtp_port: int = Field(default=28025, description="Its port (the infra/ Postfix by default).")
    mail_smtp_user: str = Field(default="", description="SMTP login ('' : none).")
    mail_smtp_password: str = ""
    mail_smtp_starttls: bool = Field(default=False, description="STARTTLS before the login.")
    mail_send_retry_seconds: float = Field(default=30.0, gt=0, description="First delay before a failed send is "
                                           "tried again (doubles per try; the fifth failure is final).")
    mail_loop_limit: int = Field(default=15, ge=1, description="Similar messages from one sender taken within "
                                 "mail_loop_window_seconds; more are set aside as a mail loop.")
    mail_loop_window_seconds: float = Field(default=60.0, gt=0, description="The loop guard's window.")
