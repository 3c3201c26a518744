"""E-mail endpoints: the messages of a case (list, read), composing and replying (commands), and the messages set
aside (quarantined or ignored) for admins. The rules are the Message aggregate's and the policy's."""

# No `from __future__ import annotations` here: the generated endpoints' annotations must be real classes.

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from api.deps import ActorDep, BearerActorDep, PlatformDep, Waited
from api.json_reply import JsonReply
from api.read_scope import ReadScopeDep
from api.routes_commands import add_command_route, batchable, body_model, command_of, reply_of, submit_command
from api.schemas.commands import CommandReply
from api.schemas.messages import Message, MessageSummary, SetAsidePage
from api.schemas.params import CaseIdPath
from api.schemas.problem import command_responses, query_responses
from api.strict_json import StrictJsonRoute
from casestream.bootstrap import Platform
from commands import mail_messages as mm
from commands.bus import Actor
from domain.errors import Forbidden, NotFound
from projections import queries
from projections.ports import Query as DocQuery
from projections.queries import MAX_LIMIT, decode_cursor, encode_cursor

router = APIRouter(prefix="/api", tags=["messages"], route_class=StrictJsonRoute)
MessageIdPath = Annotated[uuid.UUID, Path(description="The message id (from the case's message list).")]
_TEXTS = ("text", "html", "attachments", "raw_key", "size", "template", "purpose", "tenant")


def _messages(platform: Platform, tenant: str, case_id: str, scope: Any) -> list[dict[str, Any]]:
    queries.get_case(platform.documents, tenant, case_id, scope)  # 404 unless the case is readable
    return platform.documents.find(DocQuery("messages", tenant, {"case_id": case_id}, sort="at", descending=False,
                                            limit=10_000))


@router.get("/cases/{case_id}/messages", response_class=JsonReply, response_model=list[MessageSummary],
            responses=query_responses(404), dependencies=[Waited])
def list_messages(case_id: CaseIdPath, actor: ActorDep, platform: PlatformDep, scope: ReadScopeDep) -> JsonReply:
    """The e-mails of a readable case, in and out, oldest first (without their texts)."""
    docs = _messages(platform, actor.tenant, case_id, scope)
    return JsonReply([{k: v for k, v in doc.items() if k not in _TEXTS} | {"attempts": doc.get("attempts", 0)}
                      for doc in docs])


def _attachments(platform: Platform, tenant: str, case_id: str, listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A message's attachments, each with the case document holding the same bytes."""
    if not listed:
        return []
    documents = platform.documents.find(DocQuery("documents", tenant, {"case_id": case_id}, sort="created_at",
                                                 descending=False, limit=10_000))
    by_sha = {version["sha256"]: doc["id"] for doc in documents for version in doc["versions"]}
    return [{**item, "document_id": by_sha.get(item["sha256"])} for item in listed]


@router.get("/cases/{case_id}/messages/{message_id}", response_class=JsonReply, response_model=Message,
            responses=query_responses(404), dependencies=[Waited])
def get_message(case_id: CaseIdPath, message_id: MessageIdPath, actor: ActorDep, platform: PlatformDep,
                scope: ReadScopeDep) -> JsonReply:
    """One e-mail of a readable case: its plain text, sanitised HTML and attachments."""
    queries.get_case(platform.documents, actor.tenant, case_id, scope)
    found = platform.documents.get("messages", str(message_id))
    doc = found[0] if found else None
    if doc is None or doc["tenant"] != actor.tenant or doc["case_id"] != case_id:
        raise NotFound(f"message {message_id} not found")
    reply = {k: v for k, v in doc.items() if k not in ("tenant", "raw_key", "size", "template", "purpose")}
    reply["attachments"] = _attachments(platform, actor.tenant, case_id, doc.get("attachments") or [])
    return JsonReply(reply)


# -- commands ----------------------------------------------------------------------------------------------------

_ComposeBody = body_model(mm.ComposeEmail)
_ReplyBody = body_model(mm.ComposeEmail, omit=frozenset({"reply_to"}))


async def compose(request: Request, body: _ComposeBody, actor: BearerActorDep, **_path: Any) -> Response:  # type: ignore[valid-type]
    result = await submit_command(request, command_of(mm.ComposeEmail, body, request), actor)
    return JsonReply(reply_of(result), status_code=201 if not result.repeated else 200)


add_command_route(router, "/cases/{case_id}/messages", compose, mm.ComposeEmail, 201)
batchable(mm.ComposeEmail, 201)


@router.post("/cases/{case_id}/messages/{message_id}/reply", response_model=CommandReply, status_code=201,
             summary="Reply to a received e-mail of the case", responses=command_responses())
async def reply(request: Request, case_id: CaseIdPath, message_id: MessageIdPath, body: _ReplyBody,  # type: ignore[valid-type]
                actor: BearerActorDep) -> JsonReply:
    """Send a reply to a received message: to its sender (unless `to` says otherwise), threaded under it
    (In-Reply-To, References), from the case's mailbox; a template of the definition or a subject and body."""
    values = body.model_dump(by_alias=True, exclude_unset=True)  # type: ignore[attr-defined]
    command = mm.ComposeEmail.model_validate({**values, "case_id": case_id, "reply_to": str(message_id)})
    result = await submit_command(request, command, actor)
    return JsonReply(reply_of(result), status_code=201 if not result.repeated else 200)


# -- messages set aside (admins) -----------------------------------------------------------------------------------

def require_quarantine_reader(platform: Platform, actor: Actor) -> None:
    """The policy's `read_mail_quarantine` decision; with no policy (policy_engine=none) the admin role."""
    policy = platform.bus.policy
    if policy is None:
        if "admin" not in actor.roles:
            raise Forbidden("reading the mail quarantine needs the admin role",
                            ("read_mail_quarantine needs the admin role",))
        return
    decision = policy.decide({
        "subject": {"user": actor.user, "tenant": actor.tenant, "roles": list(actor.roles),
                    "groups": list(actor.groups)},
        "action": "read_mail_quarantine",
        "resource": {"kind": "tenant"},
    })
    if not decision.allow:
        reasons = decision.reasons or ("no rule allows read_mail_quarantine",)
        raise Forbidden(f"reading the mail quarantine is not allowed: {'; '.join(reasons)}", tuple(reasons))


@router.get("/mail/quarantine", response_class=JsonReply, response_model=SetAsidePage,
            responses=query_responses(403, 422), dependencies=[Waited])
def quarantine(
    actor: ActorDep, platform: PlatformDep,
    status: Annotated[Literal["quarantined", "ignored"] | None, Query(description="Only these (default: both).")]
    = None,
    mailbox: Annotated[str | None, Query(max_length=254, description="Only this mailbox.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> JsonReply:
    """Messages that became no case, newest first: quarantined (malformed, over a limit, unmappable, for no
    mailbox) and ignored (auto-replies, bounces, mail loops), each with its reason and its raw bytes' key."""
    require_quarantine_reader(platform, actor)
    filters: dict[str, Any] = {}
    if status is not None:
        filters["status"] = status
    if mailbox is not None:
        filters["mailbox"] = mailbox.lower()
    docs = platform.documents.find(DocQuery("mail_aside", actor.tenant, filters, sort="at", descending=True,
                                            limit=limit + 1, after=decode_cursor(cursor) if cursor else None))
    more = len(docs) > limit
    docs = docs[:limit]
    return JsonReply({"items": [{k: v for k, v in d.items() if k not in ("tenant", "updated_at")} for d in docs],
                      "next_cursor": encode_cursor(docs[-1]["at"], docs[-1]["id"]) if more and docs else None})
