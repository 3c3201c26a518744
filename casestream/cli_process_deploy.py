"""`casestream process deploy FILE…`: deploy BPMN files, form-js forms and DMN files over the HTTP API.

Over the API, as an admin's token (--token or CASESTREAM_TOKEN): the server checks each file on its own, stores a new
version when the content changed (a form is versioned on its own, by its id), and the running engine starts it at
once. One line per file; a refused file names each element and line. The exit code is 1 when any file was refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from casestream.cli_documents import TokenOpt, UrlOpt, problem_text
from casestream.settings import Settings

app = typer.Typer(help="BPMN processes: deploy files to the running server.", no_args_is_help=True)

FilesArg = Annotated[list[Path], typer.Argument(
    help="BPMN files (.bpmn), form-js forms (.form, .json: alone or with the BPMN linking them), DMN decisions (.dmn).",
    exists=True,
    dir_okay=False, readable=True)]


def outcome_lines(outcome: dict[str, Any]) -> list[str]:
    """One file's outcome in words: what it became, or each problem with its element and line."""
    name, status = outcome.get("file"), outcome.get("status")
    if status != "refused":
        kind = outcome.get("kind")
        what = f"{'form ' if kind == 'form' else ''}{outcome.get('process_id')} version {outcome.get('version')}"
        if kind == "decisions":
            what += f": decisions {', '.join(outcome.get('forms') or [])}"
        forms = outcome.get("forms") or []
        extra = f" with forms {', '.join(forms)}" if outcome.get("kind") == "process" and forms else ""
        return [f"{name}: {status} ({what}{extra})"]
    lines = [f"{name}: refused"]
    for problem in outcome.get("problems") or []:
        where = problem.get("element_id") or "<document>"
        line = f" (line {problem['line']})" if problem.get("line") else ""
        lines.append(f"  {where}: {problem.get('message')}{line}")
    return lines


@app.command("deploy")
def deploy(files: FilesArg, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Deploy BPMN files: each is checked on its own; a new version when its content changed."""
    if not token:
        raise typer.BadParameter("no token: pass --token or set CASESTREAM_TOKEN (an admin's: $(casestream token "
                                 "--user admin --roles admin))", param_hint="--token")
    base = (url or Settings().base_url).rstrip("/")
    parts = [("files", (path.name, path.read_bytes(), "application/octet-stream")) for path in files]
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
            reply = client.post("/api/processes", files=parts)
    except httpx.TransportError as exc:
        typer.echo(f"error: cannot reach the API at {base}: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        body = reply.json()
    except ValueError:
        body = None
    outcomes = body.get("files") if isinstance(body, dict) else None
    if not isinstance(outcomes, list):  # refused as a whole (no token, not an admin, too large): the problem says why
        typer.echo(f"error: {problem_text(reply)}", err=True)
        raise typer.Exit(1)
    refused = False
    for outcome in outcomes:
        refused = refused or outcome.get("status") == "refused"
        for line in outcome_lines(outcome):
            typer.echo(line, err=outcome.get("status") == "refused")
    if refused:
        raise typer.Exit(1)
