"""Who is who, as the policy sees it: user names become relations to the subject before any engine is asked.

The policy never needs to know that the assignee is "bob", only whether the sender is the assignee. So every
request goes to the engine with `subject.user` = "@subject" and each user-valued resource field (assignee, owner,
claimed_by, new_assignee, also inside a task's `case`) = "@subject" when it names the sender, "@other" when it
names someone else, null when empty. Two consequences, both wanted:
- rules cannot single out a person by name (grant to roles and groups instead, which the identity provider
  manages and the audit log records), and `input.resource.assignee == input.subject.user` keeps working;
- requests of different users with the same roles, groups and relations are identical, so the decision cache in
  front of the engine answers nearly all of them (adapters/policy_cache.py): the engine is asked once per
  combination, not once per user and case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from commands.policy import Decision, Policy

SUBJECT, OTHER = "@subject", "@other"
USER_FIELDS = ("assignee", "owner", "claimed_by", "new_assignee")


def _relation(value: Any, user: Any) -> Any:
    if value is None or value == "":
        return None
    return SUBJECT if value == user else OTHER


def _resource(resource: Mapping[str, Any], user: Any) -> dict[str, Any]:
    out = dict(resource)
    for field in USER_FIELDS:
        if field in out:
            out[field] = _relation(out[field], user)
    case = out.get("case")
    if isinstance(case, Mapping):
        out["case"] = _resource(case, user)
    return out


def relational(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request with user names replaced by their relation to the subject."""
    subject = request.get("subject")
    user = subject.get("user") if isinstance(subject, Mapping) else None
    out = dict(request)
    if isinstance(subject, Mapping):
        out["subject"] = {**subject, "user": SUBJECT}
    resource = request.get("resource")
    if isinstance(resource, Mapping):
        out["resource"] = _resource(resource, user)
    return out


class RelationalPolicy:
    """Hands `relational(request)` to the wrapped policy (the cache, then the engine)."""

    def __init__(self, inner: Policy) -> None:
        self.inner = inner

    def decide(self, request: Mapping[str, Any]) -> Decision:
        return self.inner.decide(relational(request))
