"""Process deployment: POST /api/processes (BPMN, forms, DMN), GET /api/processes, GET one version's XML.

Admins only (the policy's `DeployProcess` and `read_processes`). Each file is checked and deployed on its own
(processes/deployments.py): 200 when none was refused, 207 when some were (the others are stored), 422
problem+json when every file was refused, naming each file, element, line and what is unsupported.
"""

# No `from __future__ import annotations`: FastAPI reads the response models and annotations at runtime.

import base64
import binascii
import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.deps import ActorDep, PlatformDep, Waited
from api.json_reply import JsonReply
from api.problems import MEDIA_TYPE, ApiProblem, problem_body
from api.schemas.problem import problem_responses, query_responses
from api.schemas.processes import DeployReply, ProcessList
from casestream.bootstrap import Platform
from commands.audit import Denial
from commands.bus import Actor
from domain.errors import Forbidden
from processes.deployments import FileOutcome, Resource, deploy_files
from projections import process_version_queries as deployed

router = APIRouter(prefix="/api", tags=["processes"])
MAX_FILES = 50
PROCESS_ID = Annotated[str, Path(max_length=200, description="The BPMN process id.")]

DEPLOY_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["files"],
            "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"},
                                     "description": "BPMN files (.bpmn), form-js forms (.form, .json) and DMN "
                                                    "decisions (.dmn)."}}}},
        "application/json": {"schema": {
            "type": "object", "required": ["files"], "additionalProperties": False,
            "properties": {"files": {"type": "array", "maxItems": MAX_FILES, "items": {
                "type": "object", "required": ["name", "content"], "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "maxLength": 500,
                             "description": "File name: .bpmn, .form, .json or .dmn."},
                    "content": {"type": "string", "description": "The file's text (UTF-8)."},
                    "encoding": {"type": "string", "enum": ["utf-8", "base64"], "default": "utf-8"}}}}}}},
    },
}


_UNSUPPORTED: dict[str, Any] = {
    "description": "Neither multipart/form-data nor application/json.",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def require(platform: Platform, actor: Actor, action: str, resource: dict[str, Any]) -> None:
    """The policy's decision on action (with no policy, policy_engine=none: the admin role)."""
    policy = platform.bus.policy
    if policy is None:
        if "admin" not in actor.roles:
            raise Forbidden(f"{action} needs the admin role", (f"{action} needs the admin role",))
        return
    decision = policy.decide({
        "subject": {"user": actor.user, "tenant": actor.tenant, "roles": list(actor.roles),
                    "groups": list(actor.groups)},
        "action": action, "resource": resource,
    })
    if not decision.allow:
        reasons = decision.reasons or (f"no rule allows {action}",)
        raise Forbidden(f"{action} is not allowed: {'; '.join(reasons)}", tuple(reasons))


async def _json_files(request: Request) -> list[Resource]:
    try:
        body = await request.json()
    except ValueError:
        raise ApiProblem(400, "malformed-json", "the request body is not valid JSON") from None
    items = body.get("files") if isinstance(body, dict) else None
    if not isinstance(items, list) or set(body) != {"files"}:
        raise ApiProblem(422, "validation-failed", "the body must be {\"files\": [{\"name\": ..., \"content\": ...}]}")
    files: list[Resource] = []
    for i, item in enumerate(items):
        if not (isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"].strip()
                and isinstance(item.get("content"), str) and set(item) <= {"name", "content", "encoding"}):
            raise ApiProblem(422, "validation-failed", f"files[{i}] must be an object with a name and a content "
                             "(and an optional encoding)")
        encoding = item.get("encoding", "utf-8")
        if encoding == "base64":
            try:
                data = base64.b64decode(item["content"], validate=True)
            except (binascii.Error, ValueError):
                raise ApiProblem(422, "validation-failed", f"files[{i}].content is not base64") from None
        elif encoding == "utf-8":
            data = item["content"].encode("utf-8")
        else:
            raise ApiProblem(422, "validation-failed", f"files[{i}].encoding must be utf-8 or base64")
        files.append(Resource(item["name"][:500], data))
    return files


async def _multipart_files(request: Request) -> list[Resource]:
    form = await request.form(max_files=MAX_FILES)
    files: list[Resource] = []
    for key, value in form.multi_items():
        if not isinstance(value, UploadFile):
            raise ApiProblem(422, "validation-failed", f"form field {key!r} must be a file")
        files.append(Resource((value.filename or key)[:500], await value.read()))
    return files


@router.post(
    "/processes", response_class=JsonReply, response_model=DeployReply, openapi_extra={"requestBody": DEPLOY_BODY},
    responses={207: {"description": "Some files were refused (their `problems` say why); the others are stored.",
                     "model": DeployReply},
               **problem_responses(401, 403, 422, 503), 415: _UNSUPPORTED},
)
async def deploy(request: Request, actor: ActorDep, platform: PlatformDep) -> Response:
    """Deploy BPMN processes, form-js forms (each versioned on its own, by its id) and DMN decisions: each file
    checked on its own; a user task linking a form no deployment holds is refused, naming the task and form id."""
    try:
        await run_in_threadpool(require, platform, actor, "DeployProcess", {"kind": "process_definition"})
    except Forbidden as denial:  # refused before any command: the audit log is told as the bus would tell it
        if platform.audit is not None:
            correlation = request.headers.get("x-correlation-id") or str(uuid.uuid4())
            platform.audit.denied(Denial(actor, "DeployProcess", (), tuple(denial.reasons), denial.detail,
                                         str(uuid.uuid4()), correlation))
        raise
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        files = await _multipart_files(request)
    elif content_type == "application/json":
        files = await _json_files(request)
    else:
        raise ApiProblem(415, "unsupported-media-type", "send multipart/form-data (files) or application/json")
    if not files:
        raise ApiProblem(422, "validation-failed", "no files: send at least one .bpmn file")
    if len(files) > MAX_FILES:
        raise ApiProblem(422, "validation-failed", f"at most {MAX_FILES} files per deployment")
    outcomes = await run_in_threadpool(deploy_files, platform.bus, actor, files)
    if platform.processes is not None and any(o.status == "deployed" for o in outcomes):
        await run_in_threadpool(platform.processes.learn)  # this process's engine starts the new versions at once
    if any(o.status == "deployed" for o in outcomes):  # the deployer's next GET /api/processes lists what it deployed
        await run_in_threadpool(_read_models_reach_head, platform)
    body = {"files": [o.as_json() for o in outcomes]}
    refused = [o for o in outcomes if o.status == "refused"]
    if len(refused) == len(outcomes):
        problem = problem_body(422, "deployment-refused", _summary(refused), _errors(refused))
        return JSONResponse({**problem, **body}, status_code=422, media_type=MEDIA_TYPE)
    return JsonReply(body, status_code=207 if refused else 200)


def _read_models_reach_head(platform: Platform) -> None:
    """Wait (bounded) until the read models hold every deployment just stored; a slow read side delays, never fails,
    the reply: the deployments are stored either way, and a query may still ask for `wait_for`."""
    platform.runner.wait(platform.store.max_position(), platform.settings.wait_timeout_seconds)


def _summary(refused: list[FileOutcome]) -> str:
    first = refused[0].problems[0] if refused[0].problems else None
    more = f" (and {len(refused) - 1} more files)" if len(refused) > 1 else ""
    return f"{refused[0].file}: {first}{more}" if first is not None else f"{refused[0].file} was refused{more}"


def _errors(refused: list[FileOutcome]) -> list[dict[str, str]]:
    """One field error per problem: the path names the file and element, the message the line and the reason."""
    return [{"path": f"{o.file}#{p.element_id}" if p.element_id else o.file,
             "message": f"line {p.line}: {p.message}" if p.line else p.message}
            for o in refused for p in o.problems]


@router.get("/processes", dependencies=[Waited], response_class=JsonReply, response_model=ProcessList,
            responses=query_responses(403))
def list_processes(actor: ActorDep, platform: PlatformDep) -> JsonReply:
    """The tenant's deployed processes and the shipped ones it has not replaced, by id."""
    require(platform, actor, "read_processes", {"kind": "tenant"})
    return JsonReply({"items": deployed.list_processes(platform.documents, actor.tenant)})


@router.get(
    "/processes/{process_id}/versions/{version}", dependencies=[Waited], response_class=Response,
    responses={200: {"description": "The BPMN XML exactly as deployed.",
                     "content": {"application/xml": {"schema": {"type": "string", "format": "binary"}}}},
               **query_responses(403, 404)},
)
def process_version(
    actor: ActorDep, platform: PlatformDep, process_id: PROCESS_ID,
    version: Annotated[int, Path(ge=1, le=1_000_000, description="The version number (1 is the first).")],
) -> Response:
    """One version of a process: its BPMN XML, byte for byte as deployed."""
    require(platform, actor, "read_processes", {"kind": "tenant"})
    found = deployed.process_version(platform.documents, actor.tenant, process_id, version)
    if found is None:
        raise ApiProblem(404, "not-found", f"process {process_id!r} has no version {version}")
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", found.filename)  # a header value: nothing the client sent verbatim
    return Response(found.xml.encode("utf-8"), media_type="application/xml", headers={
        "Content-Disposition": f'inline; filename="{filename}"', "X-Content-SHA256": found.content_hash})
