"""The `casestream` command: serve, token, demo, rebuild, history, and infra."""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from casestream.cli_distributed import register as register_distributed
from casestream.cli_distributed import with_distributed_identity, with_distributed_policy
from casestream.cli_documents import app as documents_app
from casestream.cli_mail import app as mail_app
from casestream.cli_process_deploy import app as process_app
from casestream.cli_process_worker import register as register_process_worker
from casestream.cli_users import app as users_app
from casestream.settings import Settings
from casestream.stack_control import DEFAULT_DATA_DIR as DEFAULT_STACK_DIR
from domain.errors import DomainError
from infra.cli import app as infra_app
from infra.process import ServerStartError

if TYPE_CHECKING:
    from casestream.bootstrap import Platform

app = typer.Typer(help="casestream: event-sourced case management.", no_args_is_help=True)
app.add_typer(infra_app, name="infra")
app.add_typer(users_app, name="users")
app.add_typer(documents_app, name="documents")
app.add_typer(mail_app, name="mail")
app.add_typer(process_app, name="process")
register_distributed(app)
register_process_worker(app)


class HttpServer(StrEnum):
    """The HTTP servers `serve` can run the API on (casestream/asgi_server.py)."""

    uvicorn = "uvicorn"
    granian = "granian"


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=False
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default 8000).")] = None,
    distributed: Annotated[bool, typer.Option(
        "--distributed", help="PostgreSQL for commands, MongoDB read models (kept by `casestream worker`) for "
        "queries, the live feed from Kafka; no runner in this process.")] = False,
    server: Annotated[HttpServer, typer.Option(help="HTTP server: uvicorn (httptools + uvloop) or granian.")
                      ] = HttpServer.uvicorn,
    workers: Annotated[int, typer.Option(min=1, max=16, help="API processes sharing the embedded SQLite files on "
                                         "one port; one of them runs the read-model runner and the processes.")] = 1,
) -> None:
    """Run the API, the read-model runner, the live feed and the UI in one process (or --workers processes)."""
    from api.app import create_app
    from casestream import asgi_server
    from casestream.bootstrap import bootstrap

    overrides: dict[str, object] = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    if distributed:
        overrides["event_store"] = "postgres"
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if workers > 1:
        from casestream.serving import run_workers

        if distributed:
            raise typer.BadParameter("--workers is for the embedded mode; the distributed stack runs replicas "
                                     "(casestream up --distributed --replicas N)", param_hint="--workers")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        (settings.data_dir / "issuer-url").write_text(settings.base_url)
        typer.echo(f"casestream serving on {settings.base_url} with {workers} processes  (UI at "
                   f"{settings.base_url}/, API docs at /docs)")
        typer.echo(f"  data: {settings.data_dir.resolve()}  event store: {settings.event_store}")
        try:
            code = run_workers(settings, server.value, workers, typer.echo)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--workers") from None
        raise typer.Exit(code)
    if distributed:  # the infra Keycloak's realms, unless CASESTREAM_OIDC_ISSUERS names others
        settings = with_distributed_policy(with_distributed_identity(settings))
    platform: Platform
    if distributed:
        from api.distributed import create_distributed_app
        from casestream.bootstrap import bootstrap_distributed

        platform = bootstrap_distributed(settings)
        application = create_distributed_app(platform)
    else:
        platform = bootstrap(settings)
        application = create_app(platform)
    # `casestream token` reads this so its tokens carry the issuer of the server that is running
    (settings.data_dir / "issuer-url").write_text(settings.base_url)
    typer.echo(f"casestream serving on {settings.base_url}  (UI at {settings.base_url}/, API docs at /docs)")
    typer.echo(f"  data: {settings.data_dir.resolve()}  event store: {settings.event_store}")
    _announce_identity(platform)
    # the bus, the runner and the process manager share the GIL; a thread back from a database round trip waits
    # for the running one to yield, by default every 5 ms: 1 ms keeps command latency low under load
    sys.setswitchinterval(settings.gil_switch_interval)
    gc.set_threshold(*settings.gc_thresholds)
    try:
        asgi_server.run(application, settings.host, settings.port, server.value,
                        forwarded_allow_ips=settings.forwarded_allow_ips)
    finally:
        platform.close()


def _announce_identity(platform: Platform) -> None:
    """Say which identity the server trusts; warn loudly when a user still has the shipped demo password."""
    import logging

    from adapters.user_directory import DEMO_PASSWORD

    if platform.login is None:
        typer.echo(f"  identity: OIDC issuers {', '.join(platform.settings.oidc_issuers)} (built-in issuer off)")
        return
    typer.echo("  token: casestream token --user alice   (or log in as alice / casestream)")
    demo = platform.login.directory.with_password(DEMO_PASSWORD)
    if demo:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("casestream.identity").warning(
            "users %s still have the shipped demo password %r: anyone can log in as them. Set real passwords "
            "(casestream users passwd <user>) or configure an OIDC issuer before exposing this server.",
            ", ".join(demo), DEMO_PASSWORD)


@app.command()
def up(
    distributed: Annotated[bool, typer.Option("--distributed", help="Start every server and API replicas.")] = False,
    replicas: Annotated[int, typer.Option(min=1, max=8, help="API replicas behind Traefik.")] = 2,
    workers: Annotated[int, typer.Option(min=1, max=16, help="Read-model workers (one consumer group).")] = 2,
    data_dir: Annotated[Path, typer.Option(envvar="CASESTREAM_STACK_DIR",
                                           help="The distributed stack's data directory (kept between runs).")]
    = DEFAULT_STACK_DIR,
    fresh: Annotated[bool, typer.Option("--fresh", help="Erase the stack's data before starting.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before erasing.")] = False,
    no_demo: Annotated[bool, typer.Option("--no-demo", help="Do not load the demo into an empty stack.")] = False,
) -> None:
    """Run the platform: embedded (like `serve`), or distributed with all servers on this machine, supervised."""
    if not distributed:
        serve(None, None)
        return
    from casestream.stack import StackConfig, run_until_interrupted

    if fresh and not yes and not _confirm_erase(data_dir):
        typer.echo("nothing erased; not started")
        raise typer.Exit(1)
    try:
        run_until_interrupted(StackConfig(data_dir, replicas, workers, demo=not no_demo, fresh=fresh), typer.echo)
    except (RuntimeError, ServerStartError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _confirm_erase(data_dir: Path) -> bool:
    """Ask before erasing a stack's data; no answer (no terminal) is no."""
    try:
        return typer.confirm(f"Erase every event, read model and topic of the stack in {data_dir.resolve()}?")
    except typer.Abort:
        typer.echo("")
        return False


@app.command()
def status(
    data_dir: Annotated[Path, typer.Option(envvar="CASESTREAM_STACK_DIR", help="The stack's data directory.")]
    = DEFAULT_STACK_DIR,
) -> None:
    """Show the running distributed stack: every process, its restarts, the front door, the lag."""
    from casestream.stack_control import format_status, lag, read_status

    found = read_status(data_dir)
    if found is None:
        typer.echo(f"no distributed stack runs from {data_dir.resolve()} (casestream up --distributed)")
        raise typer.Exit(1)
    urls = [url for url in (found.get("front_door"), *found.get("api_urls", [])) if url]
    for line in format_status(found, lag(urls)):
        typer.echo(line)


@app.command()
def down(
    data_dir: Annotated[Path, typer.Option(envvar="CASESTREAM_STACK_DIR", help="The stack's data directory.")]
    = DEFAULT_STACK_DIR,
    wipe: Annotated[bool, typer.Option("--wipe", help="Also erase the stack's data.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before erasing.")] = False,
) -> None:
    """Stop the distributed stack started by `up --distributed` (and with --wipe erase its data)."""
    import os

    from casestream.stack_control import stop_running
    from casestream.stack_control import wipe as erase

    if wipe and not yes and not _confirm_erase(data_dir):
        typer.echo("nothing erased")
        raise typer.Exit(1)
    if not stop_running(data_dir, typer.echo):
        typer.echo(f"no distributed stack runs from {data_dir.resolve()}")
    if wipe:
        erase(data_dir, dict(os.environ), typer.echo)


@app.command()
def token(
    user: Annotated[str, typer.Option(help="Subject of the token.")] = "alice",
    roles: Annotated[list[str] | None, typer.Option("--roles", "-r", help="Role (repeatable).")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default from settings).")] = None,
    ttl: Annotated[int | None, typer.Option(help="Lifetime in seconds.")] = None,
) -> None:
    """Print a bearer token from the built-in issuer (for curl and scripts).

    It signs with the key file directly, so it is an operator's tool (whoever reads the key can sign anything);
    still, a user of the users file gets tokens only for their own tenants, with their membership's roles and
    groups unless --roles says otherwise. Names not in the users file (service scripts) get what is asked.
    """
    from adapters.issuer import ROLE_NAMES, BuiltinIssuer
    from adapters.user_directory import UserDirectory
    from casestream.identity import users_path

    settings = Settings()
    if settings.oidc_issuers:
        typer.echo("error: the built-in issuer is off (CASESTREAM_OIDC_ISSUERS is set); get a token from your "
                   "OIDC issuer", err=True)
        raise typer.Exit(1)
    owner = tenant or settings.default_tenant
    groups: tuple[str, ...] = ()
    known = UserDirectory.open_or_create_demo(users_path(settings)).get(user)
    if known is not None:
        membership = known.memberships.get(owner)
        if membership is None:
            raise typer.BadParameter(f"user {user} is not a member of tenant {owner!r} (casestream users grant)",
                                     param_hint="--tenant")
        groups = membership.groups
        roles = roles or list(membership.roles)
    chosen = roles or ["caseworker"]
    unknown = [r for r in chosen if r not in ROLE_NAMES]
    if unknown:
        raise typer.BadParameter(f"unknown role(s) {', '.join(unknown)}; known: {', '.join(sorted(ROLE_NAMES))}",
                                 param_hint="--roles")
    if ttl is not None and ttl <= 0:
        raise typer.BadParameter("must be positive", param_hint="--ttl")
    recorded = settings.data_dir / "issuer-url"
    issuer_url = recorded.read_text().strip() if recorded.exists() and not settings.public_url else settings.base_url
    issuer = BuiltinIssuer(settings.key_path, issuer_url, settings.audience, settings.token_ttl_seconds)
    typer.echo(issuer.issue(user, owner, chosen, ttl, groups=groups))


@app.command()
def demo(
    cases: Annotated[int, typer.Option(min=1, max=100_000, help="How many demo cases.")] = 240,
    tenant: Annotated[str | None, typer.Option(help="Tenant to load into.")] = None,
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing when the store has events.")] = False,
) -> None:
    """Load demo definitions, reference data and cases, through commands."""
    from casestream.bootstrap import bootstrap
    from casestream.demo import holds_work, load_demo

    settings = Settings()
    platform = bootstrap(settings, start_runner=False)
    try:
        if if_empty and holds_work(platform.store):
            typer.echo("demo: the event store already has events; nothing loaded")
            return
        started = time.perf_counter()
        with _progress() as progress:
            task = progress.add_task("loading demo cases", total=cases)
            summary = load_demo(
                platform.bus, tenant=tenant or settings.default_tenant, cases=cases,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        typer.echo(f"demo: {summary} in {time.perf_counter() - started:.1f}s")
        if platform.processes is not None:  # cases that move on their own once `serve` runs the processes
            from casestream.demo import load_live_cases

            live = load_live_cases(platform.bus, tenant=tenant or settings.default_tenant)
            typer.echo(f"demo: {live} live cases opened under the process-enabled definitions")
        platform.runner.catch_up()
    finally:
        platform.close()


# below this many events a second rebuild process costs more to start than it saves (bench/README.md, rebuild)
TWO_PROCESS_REBUILD_FROM = 200_000


def rebuild_processes(requested: int | None, events: int, cores: int | None) -> int:
    """How many processes fold a rebuild: the one asked for, else 2 on a large log with a second core."""
    if requested is not None:
        return requested
    return 2 if (cores or 1) >= 2 and events >= TWO_PROCESS_REBUILD_FROM else 1


@app.command()
def rebuild(
    processes: Annotated[int | None, typer.Option(
        "--processes", min=1, max=2,
        help="Processes folding the log (1 or 2); default 2 on a log of 200,000 events or more with 2+ cores.",
    )] = None,
) -> None:
    """Drop the read models and rebuild them from the event log, printing events/s."""
    from casestream.bootstrap import bootstrap
    from processes.manager import NAME as PROCESS_MANAGER

    platform = bootstrap(Settings(), start_runner=False)
    try:
        total = platform.store.max_position()
        folders = rebuild_processes(processes, total, os.cpu_count())
        # the process manager's position lives with the read models but is not derived from the log: keep it,
        # or the manager would act on every event again (a message correlated twice resumes the wrong wait)
        manager_position = platform.documents.tracking(PROCESS_MANAGER)
        started = time.perf_counter()
        with _progress() as progress:
            task = progress.add_task("rebuilding read models", total=total)
            platform.runner.rebuild(lambda position: progress.update(task, completed=position), processes=folders)
        if manager_position:
            platform.documents.write([], (PROCESS_MANAGER, manager_position))
        elapsed = time.perf_counter() - started
        rate = total / elapsed if elapsed > 0 else 0.0
        typer.echo(f"rebuilt from {total} events in {elapsed:.2f}s: {rate:,.0f} events/s "
                   f"({folders} process{'es' if folders > 1 else ''})")
    finally:
        platform.close()


@app.command()
def history(
    case: Annotated[str, typer.Argument(help="Case id (UUID) or number, e.g. CLAIM-000042.")],
    as_of: Annotated[str | None, typer.Option(help="ISO-8601 moment with time zone.")] = None,
    version: Annotated[int | None, typer.Option(min=1, help="Case version.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default from settings).")] = None,
) -> None:
    """Print a case as it was at a version or a moment (replayed from its events)."""
    from casestream.bootstrap import bootstrap
    from projections import history as hist
    from projections.ports import Query

    settings = Settings()
    at = None
    if as_of is not None:
        try:
            at = datetime.fromisoformat(as_of)
        except ValueError:
            raise typer.BadParameter(f"{as_of!r} is not an ISO-8601 moment", param_hint="--as-of") from None
        if at.tzinfo is None:
            raise typer.BadParameter("needs a time zone, e.g. 2026-01-31T12:00:00Z", param_hint="--as-of")
    platform = bootstrap(settings, start_runner=False)
    try:
        platform.runner.catch_up()
        owner = tenant or settings.default_tenant
        try:
            case_id = UUID(case)
        except ValueError:
            found = platform.documents.find(Query("cases", owner, {"number": case}, limit=1))
            if not found:
                raise typer.BadParameter(f"no case {case!r} in tenant {owner!r}", param_hint="CASE") from None
            case_id = UUID(found[0]["id"])
        events = platform.store.events_of(case_id)
        if not events or events[0].tenant != owner:
            raise typer.BadParameter(f"no case {case!r} in tenant {owner!r}", param_hint="CASE")
        try:
            doc = hist.as_of(events, version=version, at=at)
        except DomainError as exc:
            typer.echo(f"error: {exc.detail}", err=True)
            raise typer.Exit(1) from None
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    finally:
        platform.close()


def main() -> None:
    app()
