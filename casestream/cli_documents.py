"""`casestream documents list|upload|download|remove|hold CASE …`: a case's documents over the HTTP API.

Over the API, not the bus: the server holds the storage, the scanner and the policy, and the upload goes through
the presigned URL as a browser's does (the bytes stream from the file, never whole in memory). A token comes from
--token or CASESTREAM_TOKEN (`casestream token` prints one). A refusal prints the server's problem, naming each
field; bad arguments name the option.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer

from casestream.settings import Settings

app = typer.Typer(help="A case's documents over the API: list, upload, download, remove, legal hold.",
                  no_args_is_help=True)
CHUNK = 1024 * 1024
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

CaseArg = Annotated[str, typer.Argument(help="Case id (UUID) or number, e.g. CLM-000042.")]
DocumentArg = Annotated[str, typer.Argument(help="Document id, or its current file name on the case.")]
UrlOpt = Annotated[str | None, typer.Option("--url", help="The API's base URL (default: the settings' base URL).")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="CASESTREAM_TOKEN", show_envvar=True,
                                              help="Bearer token (`casestream token` prints one).")]


class Refused(Exception):
    """The API answered a problem: its text names the fields."""


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def problem_text(reply: httpx.Response) -> str:
    """A problem+json reply in words: the detail, then each field with its message."""
    try:
        body = reply.json()
    except ValueError:
        return f"HTTP {reply.status_code}: {reply.text[:300]}"
    if not isinstance(body, dict):
        return f"HTTP {reply.status_code}"
    lines = [f"{body.get('detail') or body.get('title') or 'refused'} (HTTP {reply.status_code})"]
    lines += [f"  {e.get('path')}: {e.get('message')}" for e in body.get("errors") or [] if isinstance(e, dict)]
    return "\n".join(lines)


def _checked(reply: httpx.Response) -> Any:
    if reply.status_code >= 400:
        raise Refused(problem_text(reply))
    return reply.json() if reply.content else None


@contextmanager
def _api(url: str | None, token: str | None) -> Iterator[httpx.Client]:
    if not token:
        raise typer.BadParameter("no token: pass --token or set CASESTREAM_TOKEN (e.g. $(casestream token))",
                                 param_hint="--token")
    base = (url or Settings().base_url).rstrip("/")
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            yield client
    except httpx.TransportError as exc:
        _fail(f"cannot reach the API at {base}: {exc}")
    except Refused as exc:
        _fail(str(exc))


def _case_id(client: httpx.Client, case: str) -> str:
    if _UUID.match(case):
        return case
    found = _checked(client.get("/api/cases", params={"q": case, "limit": 20}))
    matches = [c["id"] for c in found.get("items", []) if str(c.get("number", "")).lower() == case.lower()]
    if len(matches) != 1:
        raise typer.BadParameter(f"no case numbered {case!r} that you may read", param_hint="CASE")
    return str(matches[0])


def _documents(client: httpx.Client, case_id: str, removed: bool = False) -> list[dict[str, Any]]:
    return list(_checked(client.get(f"/api/cases/{case_id}/documents", params={"removed": removed})))


def _document_id(client: httpx.Client, case_id: str, document: str) -> str:
    if _UUID.match(document):
        return document
    matches = [d["id"] for d in _documents(client, case_id) if d["filename"] == document]
    if len(matches) != 1:
        found = "several documents" if matches else "no document"
        raise typer.BadParameter(f"{found} named {document!r} on the case; give its id", param_hint="DOCUMENT")
    return str(matches[0])


def _size(n: int) -> str:
    units = ["B", "KiB", "MiB", "GiB"]
    value, unit = float(n), 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:.0f} {units[unit]}" if unit == 0 else f"{value:.1f} {units[unit]}"


@app.command("list")
def list_documents(
    case: CaseArg, url: UrlOpt = None, token: TokenOpt = None,
    removed: Annotated[bool, typer.Option("--removed", help="Include removed documents.")] = False,
) -> None:
    """List a case's documents: id, name, size, versions and the newest version's scan status."""
    with _api(url, token) as client:
        docs = _documents(client, _case_id(client, case), removed)
    if not docs:
        typer.echo("no documents")
    for doc in docs:
        newest = doc["versions"][-1]
        flags = [newest["status"]] + (["legal hold"] if doc["legal_hold"] else []) + (
            ["removed"] if doc["status"] == "removed" else [])
        reason = f" — {newest['scan_reason']}" if newest.get("scan_reason") else ""
        typer.echo(f"{doc['id']}  {doc['filename']}  {_size(doc['size'])}  v{len(doc['versions'])}  "
                   f"[{', '.join(flags)}]{reason}")


def _digest(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


@app.command()
def upload(
    case: CaseArg,
    file: Annotated[Path, typer.Argument(help="The file to upload.")],
    url: UrlOpt = None, token: TokenOpt = None,
    name: Annotated[str | None, typer.Option(help="File name on the case (default: the file's own).")] = None,
    content_type: Annotated[str | None, typer.Option("--type", help="Media type (default: guessed from the name).")]
    = None,
    document: Annotated[str | None, typer.Option(help="Upload a new version of this document (id or name).")]
    = None,
) -> None:
    """Upload a file: declare it, PUT it to the presigned URL, confirm it (the server checks size, type and SHA-256)."""
    if not file.is_file():
        raise typer.BadParameter(f"{file} is not a readable file", param_hint="FILE")
    filename = name or file.name
    kind = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    size, sha256 = _digest(file)
    if size == 0:
        raise typer.BadParameter(f"{file} is empty", param_hint="FILE")
    with _api(url, token) as client:
        case_id = _case_id(client, case)
        body: dict[str, Any] = {"filename": filename, "content_type": kind, "size": size, "sha256": sha256}
        if document is not None:
            body["document_id"] = _document_id(client, case_id, document)
        ticket = _checked(client.post(f"/api/cases/{case_id}/uploads", json=body))
        with file.open("rb") as stream:  # streamed from the file; the URL is signed: no bearer token goes with it
            put = httpx.put(ticket["url"], content=iter(lambda: stream.read(CHUNK), b""),
                            headers={"Content-Length": str(size)}, timeout=600)
        if put.status_code >= 300:
            _fail(f"the storage refused the upload: {problem_text(put)}")
        confirmed = _checked(client.post(
            f"/api/cases/{case_id}/documents/{ticket['document_id']}/uploads/{ticket['upload_id']}/confirm"))
        doc = _checked(client.get(f"/api/cases/{case_id}/documents/{ticket['document_id']}",
                                  params={"wait_for": confirmed["position"]}))
    newest = doc["versions"][-1]
    reason = f": {newest['scan_reason']}" if newest.get("scan_reason") else ""
    typer.echo(f"{doc['id']}  {doc['filename']}  v{newest['number']}  {_size(size)}  {newest['status']}{reason}")


@app.command()
def download(
    case: CaseArg, document: DocumentArg, url: UrlOpt = None, token: TokenOpt = None,
    version: Annotated[int | None, typer.Option(min=1, help="Version number (default: the newest clean one).")]
    = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write (default: the document's "
                                                "name in the current folder).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Download a version through its presigned URL (refused while it is pending or quarantined)."""
    with _api(url, token) as client:
        case_id = _case_id(client, case)
        document_id = _document_id(client, case_id, document)
        params = {"version": version} if version is not None else {}
        link = _checked(client.get(f"/api/cases/{case_id}/documents/{document_id}/download", params=params))
        target = output or Path(Path(link["filename"]).name)
        if target.exists() and not force:
            raise typer.BadParameter(f"{target} exists (add --force to overwrite)", param_hint="--output")
        written = 0
        partial = target.with_name(target.name + ".part")
        try:
            with httpx.stream("GET", link["url"], timeout=600) as reply:
                if reply.status_code >= 300:
                    reply.read()
                    _fail(f"the storage refused the download: {problem_text(reply)}")
                with partial.open("wb") as out:
                    for chunk in reply.iter_bytes(CHUNK):
                        out.write(chunk)
                        written += len(chunk)
            partial.replace(target)  # only a whole file gets the name
        finally:
            partial.unlink(missing_ok=True)
    typer.echo(f"{target}  {_size(written)}  v{link['version']}")


@app.command()
def remove(
    case: CaseArg, document: DocumentArg, url: UrlOpt = None, token: TokenOpt = None,
    reason: Annotated[str, typer.Option(help="Why (on the timeline).")] = "",
) -> None:
    """Remove a document from the case (its history and bytes are kept; refused while under legal hold)."""
    with _api(url, token) as client:
        case_id = _case_id(client, case)
        document_id = _document_id(client, case_id, document)
        _checked(client.post(f"/api/cases/{case_id}/documents/{document_id}/remove", json={"reason": reason}))
    typer.echo(f"removed {document_id}")


@app.command()
def hold(
    case: CaseArg, document: DocumentArg, url: UrlOpt = None, token: TokenOpt = None,
    reason: Annotated[str, typer.Option(help="Why (on the timeline).")] = "",
    release: Annotated[bool, typer.Option("--release", help="Release the hold instead of placing one.")] = False,
) -> None:
    """Place a legal hold on a document (or --release it): supervisors and admins."""
    path = "legal-hold/release" if release else "legal-hold"
    with _api(url, token) as client:
        case_id = _case_id(client, case)
        document_id = _document_id(client, case_id, document)
        _checked(client.post(f"/api/cases/{case_id}/documents/{document_id}/{path}", json={"reason": reason}))
    typer.echo(f"{'released the legal hold on' if release else 'placed a legal hold on'} {document_id}")
