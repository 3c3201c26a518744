"""`casestream mail poll|ingest|send|quarantine`: e-mail to case by hand, on the embedded platform of the settings.

`serve` does the same continuously (CASESTREAM_MAIL_IMAP, CASESTREAM_MAIL_SMTP_RECEIVER_PORT, the outbox); these
commands run one round, for operators and scripts: read the mailboxes once, take in one raw message (a quarantined
one again, say, after its definition was fixed), send what waits in the outbox, list what was set aside.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from casestream.settings import Settings

if TYPE_CHECKING:
    from adapters.mail_ingest import Ingested
    from casestream.bootstrap import EmbeddedPlatform

app = typer.Typer(help="E-mail to case: poll the mailboxes, take in a message, send the outbox, list the quarantine.",
                  no_args_is_help=True)


@contextmanager
def _platform() -> Iterator[EmbeddedPlatform]:
    from casestream.bootstrap import bootstrap

    platform = bootstrap(Settings(), start_runner=False)
    try:
        platform.runner.catch_up()  # the mailbox -> definition lookup reads the read models
        yield platform
    finally:
        platform.runner.catch_up()
        platform.close()


def _line(outcome: Ingested) -> str:
    where = f" {outcome.number}" if outcome.number else ""
    opened = " (opened)" if outcome.opened else ""
    count = sum(1 for a in outcome.attachments if a.document_id)
    filed = f", {count} attachment(s) filed" if outcome.attachments else ""
    problems = "".join(f"\n    {a.filename}: {a.problem}" for a in outcome.attachments if a.problem)
    reason = f": {outcome.reason}" if outcome.reason else ""
    return f"{outcome.status}{where}{opened}{filed}{reason}{problems}"


@app.command()
def poll(
    mailbox: Annotated[str | None, typer.Option(help="Only this mailbox address (default: every configured one).")]
    = None,
) -> None:
    """Read the configured mailboxes (CASESTREAM_MAIL_MAILBOXES) once over IMAP and take in every unseen message."""
    with _platform() as platform:
        assert platform.mail is not None
        pollers = [p for p in platform.mail.pollers if mailbox is None or p.mailbox.address == mailbox.lower()]
        if not pollers:
            raise typer.BadParameter(f"no configured mailbox {mailbox or ''} (CASESTREAM_MAIL_MAILBOXES)".replace(
                "  ", " "), param_hint="--mailbox")
        for poller in pollers:
            try:
                outcomes = asyncio.run(poller.poll_once())
            except Exception as exc:  # the server away, a refused login: named, not a traceback
                typer.echo(f"error: {poller.mailbox.address}: {type(exc).__name__}: {exc}", err=True)
                raise typer.Exit(1) from None
            typer.echo(f"{poller.mailbox.address}: {len(outcomes)} message(s)")
            for outcome in outcomes:
                typer.echo(f"  {_line(outcome)}")


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A raw message (.eml).")],
    mailbox: Annotated[str, typer.Option(help="The mailbox it was delivered to.")],
    tenant: Annotated[str | None, typer.Option(help="Its tenant (default: the settings' default tenant).")] = None,
) -> None:
    """Take in one raw message as if it had arrived in mailbox."""
    with _platform() as platform:
        assert platform.mail is not None
        outcome = platform.mail.ingester.ingest(file.read_bytes(), mailbox, tenant or platform.settings.default_tenant)
        typer.echo(_line(outcome))


@app.command()
def send() -> None:
    """Send what waits in the outbox once (SMTP: CASESTREAM_MAIL_SMTP_HOST / _PORT)."""
    with _platform() as platform:
        assert platform.mail is not None
        sent = platform.mail.outbox.run_once()
        waiting = len(platform.mail.outbox.waiting)
        typer.echo(f"sent {sent} message(s); {waiting} still waiting")


@app.command()
def quarantine(
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: the settings' default tenant).")] = None,
    status: Annotated[Literal["quarantined", "ignored"] | None, typer.Option(help="Only these.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 50,
) -> None:
    """List the messages set aside: quarantined (malformed, over a limit, unmappable) and ignored (auto-replies,
    bounces, loops), with the reason and where the raw message is kept."""
    from projections.ports import Query

    with _platform() as platform:
        filters = {"status": status} if status else {}
        docs = platform.documents.find(Query("mail_aside", tenant or platform.settings.default_tenant, filters,
                                             sort="at", limit=limit))
        for doc in docs:
            typer.echo(f"{doc['at'][:19]} {doc['status']:<11} {doc['kind']:<10} {doc['mailbox']} "
                       f"from {doc['sender'] or '?'}: {doc['subject'][:60]!r}\n    {doc['reason']}\n"
                       f"    raw: {doc['raw_key']}")
        if not docs:
            typer.echo("nothing set aside")
