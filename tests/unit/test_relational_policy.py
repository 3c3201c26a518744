"""The policy sees relations, not names: same roles and relations give one request, whoever the users are."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.policy_cache import CachedPolicy
from adapters.relational_policy import OTHER, SUBJECT, RelationalPolicy, relational
from commands.policy import Decision


class Recording:
    """A policy that remembers what it was asked and allows when the sender is the assignee."""

    def __init__(self) -> None:
        self.asked: list[Mapping[str, Any]] = []

    def decide(self, request: Mapping[str, Any]) -> Decision:
        self.asked.append(request)
        return Decision(request["resource"].get("assignee") == request["subject"]["user"])


def _task(user: str, assignee: str | None, claimed_by: str | None, owner: str) -> dict[str, Any]:
    return {
        "subject": {"user": user, "tenant": "acme", "roles": ["caseworker"], "groups": []},
        "action": "CompleteTask",
        "resource": {"kind": "task", "status": "open", "assignee": assignee, "claimed_by": claimed_by,
                     "candidate_groups": [], "case": {"kind": "case", "assignee": owner, "owner": owner,
                                                      "status": "open"}},
    }


def test_names_become_relations_to_the_subject_everywhere() -> None:
    out = relational(_task("alice", "alice", "bob", "alice"))
    assert out["subject"]["user"] == SUBJECT
    assert out["resource"]["assignee"] == SUBJECT
    assert out["resource"]["claimed_by"] == OTHER
    assert out["resource"]["case"]["owner"] == SUBJECT
    assert relational(_task("alice", None, "", "bob"))["resource"]["assignee"] is None


def test_the_original_request_is_not_changed() -> None:
    request = _task("alice", "alice", None, "bob")
    relational(request)
    assert request["subject"]["user"] == "alice" and request["resource"]["assignee"] == "alice"


def test_equality_rules_decide_as_with_names() -> None:
    policy = RelationalPolicy(Recording())
    assert policy.decide(_task("alice", "alice", None, "bob")).allow
    assert not policy.decide(_task("alice", "bob", None, "bob")).allow
    assert not policy.decide(_task("alice", None, None, "bob")).allow


def test_different_users_in_the_same_relation_share_one_cached_decision() -> None:
    engine = Recording()
    policy = RelationalPolicy(CachedPolicy(engine, ttl_seconds=60))
    for user in ("alice", "carol", "dave", "erin"):
        assert policy.decide(_task(user, user, None, "zoe")).allow
        assert not policy.decide(_task(user, "zoe", None, "zoe")).allow
    assert len(engine.asked) == 2
