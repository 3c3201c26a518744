"""Document endpoints: uploads through presigned URLs, the confirm that attaches them, downloads, and the commands.

The routes translate HTTP into commands and storage calls; the rules are the Document aggregate's
(domain/document.py) and the policy's. Local storage serves its own signed URLs under /storage.
"""

# No `from __future__ import annotations` here: the generated endpoints' annotations must be real classes.

import asyncio
import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from adapters.document_uploads import keep_by_content, measure
from adapters.local_storage import LocalFolderStorage, UrlRefused
from adapters.object_storage import ObjectStorage, content_disposition, content_key, upload_key
from api.deps import ActorDep, BearerActorDep, PlatformDep, Waited
from api.json_reply import JsonReply
from api.problems import ApiProblem
from api.read_scope import ReadScopeDep
from api.routes_commands import add_command_route, batchable, body_model, command_of, reply_of, submit_command
from api.schemas.commands import CommandReply
from api.schemas.documents import Document, DownloadLink, StoredObject, UploadTicket
from api.schemas.params import CaseIdPath
from api.schemas.problem import command_responses, problem_responses, query_responses
from api.strict_json import StrictJsonRoute
from casestream.bootstrap import Platform
from commands import messages as m
from commands.upload_precheck import check_confirmable
from domain.document import AVAILABLE, VersionNotAvailable
from domain.errors import DomainError, FieldError, NotFound, ValidationFailed
from projections import queries
from projections.ports import Query as DocQuery

router = APIRouter(prefix="/api", tags=["documents"], route_class=StrictJsonRoute)
DocumentIdPath = Annotated[uuid.UUID, Path(description="The document id.")]
UploadIdPath = Annotated[str, Path(max_length=100, description="The upload id from the upload ticket.")]


def _storage(platform: Platform) -> ObjectStorage:
    if platform.storage is None:
        raise ApiProblem(503, "storage-unavailable", "no document storage is configured")
    return platform.storage


def _ttl(platform: Platform) -> timedelta:
    return timedelta(seconds=platform.settings.document_url_seconds)


# -- queries ---------------------------------------------------------------------------------------------------

def _documents(platform: Platform, tenant: str, case_id: str, scope: Any) -> list[dict[str, Any]]:
    queries.get_case(platform.documents, tenant, case_id, scope)  # 404 unless the case is readable
    found = platform.documents.find(DocQuery("documents", tenant, {"case_id": case_id}, sort="created_at",
                                             descending=False, limit=10_000))
    return [_public(doc) for doc in found]


_HIDDEN = ("object_key", "preview_key")  # storage keys stay on the server: links are signed per request


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "tenant"} | {"versions": [
        {k: v for k, v in version.items() if k not in _HIDDEN} for version in doc["versions"]]}


def _document(platform: Platform, tenant: str, case_id: str, document_id: str, scope: Any) -> dict[str, Any]:
    queries.get_case(platform.documents, tenant, case_id, scope)
    found = platform.documents.get("documents", document_id)
    doc = found[0] if found else None
    if doc is None or doc["tenant"] != tenant or doc["case_id"] != case_id:
        raise NotFound(f"document {document_id} not found")
    return doc


@router.get("/cases/{case_id}/documents", response_class=JsonReply, response_model=list[Document],
            responses=query_responses(404), dependencies=[Waited])
def list_documents(
    case_id: CaseIdPath, actor: ActorDep, platform: PlatformDep, scope: ReadScopeDep,
    removed: Annotated[bool, Query(description="Include removed documents.")] = False,
) -> JsonReply:
    """The documents of a readable case with their versions."""
    docs = _documents(platform, actor.tenant, case_id, scope)
    return JsonReply([d for d in docs if removed or d["status"] != "removed"])


@router.get("/cases/{case_id}/documents/{document_id}", response_class=JsonReply, response_model=Document,
            responses=query_responses(404), dependencies=[Waited])
def get_document(
    case_id: CaseIdPath, document_id: DocumentIdPath, actor: ActorDep, platform: PlatformDep, scope: ReadScopeDep,
) -> JsonReply:
    """One document of a readable case with its versions."""
    return JsonReply(_public(_document(platform, actor.tenant, case_id, str(document_id), scope)))


def _chosen(doc: dict[str, Any], version: int | None) -> dict[str, Any]:
    """The version asked for (default: the newest downloadable one); refused unless its bytes were scanned clean."""
    if doc["status"] == "removed":
        raise NotFound(f"document {doc['id']} was removed")
    versions: list[dict[str, Any]] = doc["versions"]
    if version is not None and version > len(versions):
        raise ValidationFailed("no such version", [FieldError("version", f"the document has {len(versions)}")])
    if version is None:
        clean = [v for v in versions if v["status"] == AVAILABLE]
        chosen = clean[-1] if clean else versions[-1]
    else:
        chosen = versions[version - 1]
    if chosen["status"] != AVAILABLE:
        raise VersionNotAvailable(f"version {chosen['number']} of “{chosen['filename']}” is {chosen['status']}"
                                  + (f": {chosen['scan_reason']}" if chosen.get("scan_reason") else
                                     " (waiting for the virus scan)"))
    return chosen


@router.get("/cases/{case_id}/documents/{document_id}/download", response_class=JsonReply,
            response_model=DownloadLink, responses=query_responses(404, 409, 422), dependencies=[Waited])
def download_link(
    case_id: CaseIdPath, document_id: DocumentIdPath, actor: ActorDep, platform: PlatformDep, scope: ReadScopeDep,
    version: Annotated[int | None, Query(ge=1, description="A version number (default: the newest scanned clean).")]
    = None,
) -> JsonReply:
    """A short-lived presigned URL that downloads one version of a document (409 while it is pending or
    quarantined)."""
    doc = _document(platform, actor.tenant, case_id, str(document_id), scope)
    chosen = _chosen(doc, version)
    ttl = _ttl(platform)
    url = _storage(platform).presign_get(chosen["object_key"], ttl, chosen["filename"], chosen["content_type"])
    return JsonReply({"url": url, "expires_in": int(ttl.total_seconds()), "filename": chosen["filename"],
                      "version": chosen["number"]})


_PNG = {"description": "A PNG thumbnail (at most 256 x 256).",
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}


@router.get("/cases/{case_id}/documents/{document_id}/preview", response_class=Response,
            responses={200: _PNG, **query_responses(404, 409, 422)}, dependencies=[Waited])
def preview(
    case_id: CaseIdPath, document_id: DocumentIdPath, actor: ActorDep, platform: PlatformDep, scope: ReadScopeDep,
    version: Annotated[int | None, Query(ge=1, description="A version number (default: the newest scanned clean).")]
    = None,
) -> Response:
    """The thumbnail of one version (made in the background after the scan; 404 until it is ready, or when the
    type has none or it could not be made — the document itself works either way)."""
    doc = _document(platform, actor.tenant, case_id, str(document_id), scope)
    chosen = _chosen(doc, version)
    key = chosen.get("preview_key") if chosen.get("preview") == "ready" else None
    storage = _storage(platform)
    if not key or storage.stat(key) is None:
        raise NotFound(f"version {chosen['number']} of document {document_id} has no preview"
                       + (" (it could not be made)" if chosen.get("preview") == "failed" else ""))
    return StreamingResponse(storage.get(key), media_type="image/png",
                             headers={"Cache-Control": "private, max-age=300"})


# -- the upload flow ---------------------------------------------------------------------------------------------

_RequestBody = body_model(m.RequestDocumentUpload)


@router.post("/cases/{case_id}/uploads", response_model=UploadTicket, status_code=201,
             responses=command_responses())
async def request_upload(request: Request, case_id: CaseIdPath, body: _RequestBody,  # type: ignore[valid-type]
                         actor: BearerActorDep) -> JsonReply:
    """Declare an upload (name, type, size, SHA-256): the definition's limits are checked before any byte moves;
    the reply's URL takes the bytes."""
    command = command_of(m.RequestDocumentUpload, body, request)
    result = await submit_command(request, command, actor)
    platform: Platform = request.app.state.platform
    key = upload_key(actor.tenant, case_id, str(result.extra["upload_id"]))
    ttl = _ttl(platform)
    url = await run_in_threadpool(_storage(platform).presign_put, key, ttl)
    return JsonReply({"document_id": result.extra["document_id"], "upload_id": result.extra["upload_id"],
                      "method": "PUT", "url": url, "expires_in": int(ttl.total_seconds()),
                      "position": result.position}, status_code=201)


def _confirm_bytes(platform: Platform, tenant: str, case_id: str, upload_id: str) -> tuple[str, Any, bool]:
    """Measure the upload and keep it by content: its key, the measurement, whether this call stored the copy."""
    storage = _storage(platform)
    key = upload_key(tenant, case_id, upload_id)
    measured = measure(storage, key, platform.scanner)
    if measured is None:
        raise ValidationFailed("nothing was uploaded", [FieldError("upload_id", "no bytes arrived for this upload")])
    # an infected upload is kept (by content, like any other) and attached quarantined: the reason goes on the
    # timeline, and its bytes are never served
    content = content_key(tenant, case_id, measured.sha256)
    created = keep_by_content(storage, key, content)
    return content, measured, created


@router.post("/cases/{case_id}/documents/{document_id}/uploads/{upload_id}/confirm", response_model=CommandReply,
             responses=command_responses())
async def confirm_upload(request: Request, case_id: CaseIdPath, document_id: DocumentIdPath,
                         upload_id: UploadIdPath, actor: BearerActorDep) -> JsonReply:
    """Attach an upload once its stored bytes match what was declared (size, type, SHA-256); a mismatch refuses
    (422 naming the field) and removes the uploaded object. The bytes are scanned in the same read: infected ones
    are attached quarantined (reason on the timeline), unscanned ones (scanner unreachable) pending; neither is
    downloadable."""
    platform: Platform = request.app.state.platform
    storage = _storage(platform)
    try:
        uuid.UUID(upload_id)
    except ValueError:
        raise NotFound(f"no pending upload {upload_id!r}") from None
    probe = m.ConfirmDocumentUpload(case_id=uuid.UUID(case_id), document_id=document_id, upload_id=upload_id,
                                    size=0, sniffed_type="", sha256="0" * 64, object_key="")
    await run_in_threadpool(check_confirmable, platform.bus, probe, actor)
    staged = upload_key(actor.tenant, case_id, upload_id)
    content, measured, created = await run_in_threadpool(_confirm_bytes, platform, actor.tenant, case_id, upload_id)
    command = probe.model_copy(update={"size": measured.size, "sniffed_type": measured.sniffed_type,
                                       "sha256": measured.sha256, "object_key": content,
                                       "scan": measured.verdict.status, "scan_reason": measured.verdict.reason})
    try:
        result = await submit_command(request, command, actor)
    except DomainError:
        if created:  # nobody references bytes this refused confirm stored
            await run_in_threadpool(storage.delete, content)
        raise
    finally:
        await run_in_threadpool(storage.delete, staged)
    return JsonReply(reply_of(result))


# -- commands on a document ------------------------------------------------------------------------------------

def _document_command(path: str, command_type: type[m.Command]) -> None:
    body_type = body_model(command_type)

    async def endpoint(request: Request, body: body_type, actor: BearerActorDep, **_path: Any) -> Response:  # type: ignore[valid-type]
        result = await submit_command(request, command_of(command_type, body, request), actor)
        return JsonReply(reply_of(result), status_code=200)

    add_command_route(router, path, endpoint, command_type, 200)
    batchable(command_type, 200)


_document_command("/cases/{case_id}/documents/{document_id}/rename", m.RenameDocument)
_document_command("/cases/{case_id}/documents/{document_id}/remove", m.RemoveDocument)
_document_command("/cases/{case_id}/documents/{document_id}/legal-hold", m.PlaceLegalHold)
_document_command("/cases/{case_id}/documents/{document_id}/legal-hold/release", m.ReleaseLegalHold)


# -- the local folder's own signed URLs (embedded mode) ------------------------------------------------------------

def _local(platform: Platform, method: str, key: str, request: Request) -> LocalFolderStorage:
    storage = platform.storage
    if not isinstance(storage, LocalFolderStorage):
        raise ApiProblem(404, "not-found", "this server keeps no documents itself")
    try:
        storage.check(method, key, dict(request.query_params))
    except UrlRefused as exc:
        raise ApiProblem(403, "url-refused", str(exc)) from None
    except ValueError:
        raise ApiProblem(403, "url-refused", "not a storage key") from None
    return storage


class _Body:
    """The request body as a blocking file-like stream for the storage (chunks handed over from the event loop),
    never all of it in memory; more than limit bytes raise."""

    def __init__(self, request: Request, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self.chunks = request.stream().__aiter__()
        self.loop = loop
        self.limit = limit
        self.buffer = b""
        self.total = 0
        self.done = False

    async def _next(self) -> bytes:
        return await self.chunks.__anext__()

    def read(self, size: int = -1, /) -> bytes:
        while not self.done and (size < 0 or len(self.buffer) < size):
            try:
                chunk = asyncio.run_coroutine_threadsafe(self._next(), self.loop).result()
            except StopAsyncIteration:
                self.done = True
                break
            self.total += len(chunk)
            if self.total > self.limit:
                raise OverflowError(self.limit)
            self.buffer += chunk
        if size < 0:
            out, self.buffer = self.buffer, b""
        else:
            out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out


# Signed URLs, not bearer tokens, open these two: they sit outside /api, on a router of their own.
storage_router = APIRouter(tags=["documents"])


StoragePath = Annotated[str, Path(max_length=100, pattern=r"^[^/]+$")]
AreaPath = Annotated[str, Path(pattern="^(uploads|sha256)$", description="uploads, or sha256 (kept by content).")]


@storage_router.put("/storage/{tenant}/{case_id}/{area}/{name}", status_code=200, response_model=StoredObject,
                    summary="Upload through a signed URL (local storage)",
                    responses=problem_responses(403, 404, 413, 422))
async def put_object(request: Request, tenant: StoragePath, case_id: StoragePath, area: AreaPath, name: StoragePath,
                     platform: PlatformDep) -> Response:
    """The bytes of an upload, through the URL an upload ticket gave (embedded storage only), streamed to disk."""
    key = f"{tenant}/{case_id}/{area}/{name}"
    storage = _local(platform, "PUT", key, request)
    limit = platform.settings.document_upload_max_bytes
    body = _Body(request, asyncio.get_running_loop(), limit)
    try:
        info = await run_in_threadpool(storage.put, key, body, -1, request.headers.get("content-type",
                                                                                        "application/octet-stream"))
    except OverflowError:
        raise ApiProblem(413, "body-too-large", f"uploads are limited to {limit} bytes") from None
    return JsonReply({"size": info.size})


_BYTES = {"description": "The bytes.",
          "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}


@storage_router.get("/storage/{tenant}/{case_id}/{area}/{name}", response_class=Response,
                    summary="Download through a signed URL (local storage)",
                    responses={200: _BYTES, **problem_responses(403, 404, 422)})
async def get_object(request: Request, tenant: StoragePath, case_id: StoragePath, area: AreaPath, name: StoragePath,
                     platform: PlatformDep) -> Response:
    """The bytes of a document version, through the URL a download link gave (embedded storage only)."""
    key = f"{tenant}/{case_id}/{area}/{name}"
    storage = _local(platform, "GET", key, request)
    info = await run_in_threadpool(storage.stat, key)
    if info is None:
        raise ApiProblem(404, "not-found", "no such object")
    filename = request.query_params.get("filename", "download")
    # always as bytes to save: a browser must not render an uploaded file in this origin (the declared type is
    # only what a client said)
    return StreamingResponse(storage.get(key), media_type="application/octet-stream",
                             headers={"Content-Disposition": content_disposition(filename),
                                      "Content-Length": str(info.size)})
