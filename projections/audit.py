"""The `audit` read model: refused commands, membership changes and admin actions of a tenant, newest first.

Admin actions are not recorded twice: the events that already say who published a definition or defined a queue,
a record type or a record (with actor and time in their metadata) are folded here directly, one entry per event.
Refusals and membership changes come from the audit entries of domain/audit.py (a coalesced refusal is one entry
whose count rises).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain import audit as a
from domain import definition as d
from domain import reference as r
from domain.errors import FieldError, ValidationFailed
from domain.events import Event
from projections.base import Doc, Projection
from projections.ports import DocumentStore, Query
from projections.queries import MAX_LIMIT, Page, decode_cursor, encode_cursor

KINDS = ("denied", "membership", "admin")
_AFTER_EVERY_KEY = "\uffff"  # a keyset key above every entry id: "until" includes entries at exactly that moment


def iso(moment: datetime) -> str:
    """A moment as the read model stores it: UTC, microseconds always written, so strings sort as times do."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _entry(e: Event, kind: str, action: str, target: str | None, details: dict[str, Any]) -> Doc:
    at = iso(e.occurred_at)
    return {
        "id": _key(e), "tenant": e.tenant, "kind": kind, "at": at, "last_at": at, "actor": e.actor,
        "action": action, "target": target, "targets": [target] if target else [], "reasons": [],
        "details": details, "count": 1,
    }


def _denied(_doc: Doc | None, e: a.CommandDenied) -> Doc:
    return {
        "id": _key(e), "tenant": e.tenant, "kind": "denied", "at": e.first_at, "last_at": e.last_at,
        "actor": e.user, "action": e.action, "target": e.targets[0] if e.targets else None,
        "targets": list(e.targets), "reasons": list(e.reasons),
        "details": {"detail": e.detail, "roles": list(e.roles), "groups": list(e.groups),
                    "command_id": e.command_id, "correlation_id": e.correlation_id, "window_start": e.window_start},
        "count": e.count,
    }


def _repeated(doc: Doc | None, e: a.CommandDenialsRepeated) -> Doc | None:
    if doc is None:  # its entry's first event never reached this read model: nothing to count into
        return None
    return {**doc, "count": e.count, "last_at": e.last_at, "targets": list(e.targets),
            "target": e.targets[0] if e.targets else doc["target"]}


def _membership(_doc: Doc | None, e: a.MembershipChanged) -> Doc:
    return _entry(e, "membership", "ChangeMembership", f"user:{e.user}",
                  {"user": e.user, "before": e.before, "after": e.after, "source": e.source})


def _definition(_doc: Doc | None, e: d.DefinitionPublished) -> Doc:
    return _entry(e, "admin", "PublishCaseDefinition", f"definition:{e.spec['key']}",
                  {"version": e.definition_version, "name": e.spec.get("name", "")})


def _queue(_doc: Doc | None, e: r.QueueDefined) -> Doc:
    return _entry(e, "admin", "DefineQueue", f"queue:{e.key}", {"name": e.name})


def _record_type(_doc: Doc | None, e: r.RecordTypeDefined) -> Doc:
    return _entry(e, "admin", "DefineRecordType", f"record_type:{e.key}", {"name": e.name})


def _record_saved(_doc: Doc | None, e: r.RecordSaved) -> Doc:
    return _entry(e, "admin", "SaveRecord", f"record:{e.type_key}/{e.key}", {"version": e.version})


def _record_removed(_doc: Doc | None, e: r.RecordRemoved) -> Doc:
    return _entry(e, "admin", "RemoveRecord", f"record:{e.aggregate_id}", {"reason": e.reason})


_ENTRY_EVENTS = (a.CommandDenied, a.CommandDenialsRepeated, a.MembershipChanged)


def _key(e: Event) -> str:
    """An audit entry's own id; an admin action is an entry per event (a definition has many versions)."""
    return str(e.aggregate_id) if isinstance(e, _ENTRY_EVENTS) else str(e.event_id)


AUDIT = Projection(
    "audit",
    {
        a.CommandDenied: _denied, a.CommandDenialsRepeated: _repeated, a.MembershipChanged: _membership,
        d.DefinitionPublished: _definition, r.QueueDefined: _queue, r.RecordTypeDefined: _record_type,
        r.RecordSaved: _record_saved, r.RecordRemoved: _record_removed,
    },
    key=_key,
    indexes=("kind", "actor", "action"),
    order="at",
)


def _bound(name: str, moment: datetime | None) -> str | None:
    """A time bound as stored (UTC text); a moment without a zone, or beyond what UTC can hold, is refused."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValidationFailed(f"{name} needs a time zone", [FieldError(name, "e.g. 2026-01-31T12:00:00Z")])
    try:
        return iso(moment)
    except OverflowError:
        raise ValidationFailed(f"{name} is out of range", [FieldError(name, "not a representable UTC time")]) from None


def list_audit(
    documents: DocumentStore, tenant: str, *, kind: str | None = None, actor: str | None = None,
    action: str | None = None, since: datetime | None = None, until: datetime | None = None, limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """A tenant's audit entries, newest first, filtered, between since and until (inclusive), by keyset cursor."""
    if kind is not None and kind not in KINDS:
        raise ValidationFailed(f"unknown kind {kind!r}", [FieldError("kind", f"one of {', '.join(KINDS)}")])
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed("limit out of range", [FieldError("limit", f"between 1 and {MAX_LIMIT}")])
    floor, ceiling = _bound("since", since), _bound("until", until)
    after = decode_cursor(cursor) if cursor else ((ceiling, _AFTER_EVERY_KEY) if ceiling else None)
    filters = {k: v for k, v in (("kind", kind), ("actor", actor), ("action", action)) if v is not None}
    docs = documents.find(Query("audit", tenant, filters, sort="at", descending=True, limit=limit + 1, after=after))
    more = len(docs) > limit
    if floor is not None:  # newest first: the first entry before `since` ends the list
        kept = [doc for doc in docs if doc["at"] >= floor]
        more = more and len(kept) == len(docs)
        docs = kept
    docs = docs[:limit]
    next_cursor = encode_cursor(docs[-1]["at"], docs[-1]["id"]) if more and docs else None
    return Page(docs, next_cursor)
