"""Row-level read authorization: which definitions' cases (and their tasks, timelines, events) a subject sees.

Every case and task document carries its `definition_key`; the policy decides, per subject, for each definition of
the tenant whether "read" is allowed (docs/authorization.md, "How row-level filtering works"). The allowed keys
become a `definition_key IN (...)` filter inside the queries, the same in SQLite and MongoDB.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from commands.policy import Policy
from domain.errors import Forbidden
from projections.base import Doc
from projections.ports import DocumentStore, In, Query

Subject = Mapping[str, Any]
MAX_DEFINITIONS = 10_000


def subject(user: str, tenant: str, roles: Iterable[str], groups: Iterable[str] = ()) -> dict[str, Any]:
    """The policy request's subject."""
    return {"user": user, "tenant": tenant, "roles": sorted(roles), "groups": sorted(groups)}


def read_request(who: Subject, key: str, access: Mapping[str, Any] | None) -> dict[str, Any]:
    """May `who` read the cases of definition `key` (whose access rules are `access`)?"""
    return {"subject": dict(who), "action": "read",
            "resource": {"kind": "definition", "definition_key": key, "access": dict(access or {})}}


def reference_request(who: Subject) -> dict[str, Any]:
    """May `who` read the tenant's reference data (queues, record types, records, the definitions list)?"""
    return {"subject": dict(who), "action": "read_reference", "resource": {"kind": "tenant"}}


@dataclass(frozen=True)
class ReadScope:
    """What one subject may read in its tenant.

    definitions: the keys of the definitions whose cases it sees (None: every one, with no policy at all);
    reference: whether it may read the reference data; reasons: why reference data is refused.
    """

    tenant: str
    definitions: frozenset[str] | None
    reference: bool = True
    reasons: tuple[str, ...] = ()
    # every definition key the scope was decided over (readable or not): a key outside it is one published after
    known: frozenset[str] = frozenset()

    def decided(self, definition_key: str) -> bool:
        """Whether this scope has an answer for the definition (always, with no policy at all)."""
        return self.definitions is None or definition_key in self.known

    @classmethod
    def everything(cls, tenant: str) -> ReadScope:
        return cls(tenant, None)

    def allows(self, definition_key: str | None) -> bool:
        """Whether a row of this definition is readable (a row naming none is not, unless all is readable)."""
        if self.definitions is None:
            return True
        return definition_key is not None and definition_key in self.definitions

    def narrow(self, filters: Mapping[str, Any]) -> dict[str, Any]:
        """The filters with the readable-definitions condition added (a requested definition_key is kept when
        readable, else nothing matches)."""
        out = dict(filters)
        if self.definitions is None:
            return out
        wanted = out.get("definition_key")
        if wanted is not None:
            out["definition_key"] = wanted if self.allows(wanted) else In(())
        else:
            out["definition_key"] = In(tuple(sorted(self.definitions)))
        return out

    def require_reference(self) -> None:
        """Raise Forbidden (403) unless the reference data is readable."""
        if not self.reference:
            raise Forbidden("reading this tenant's reference data is not allowed", self.reasons)


def definitions_signature(documents: DocumentStore, tenant: str) -> tuple[tuple[str, int], ...]:
    """Changes whenever a definition of the tenant is published (a new one, or a new version of one) without
    reading the definitions themselves: how many of them are at each latest version."""
    counts = documents.count_by("definitions", tenant, "latest_version", {})
    return tuple(sorted(counts.items()))


def tenant_definitions(documents: DocumentStore, tenant: str) -> list[Doc]:
    return documents.find(Query("definitions", tenant, {}, sort="key", descending=False, limit=MAX_DEFINITIONS))


def decide_scope(policy: Policy, who: Subject, tenant: str, definitions: Sequence[Doc]) -> ReadScope:
    """Ask the policy "read" for each definition and "read_reference" once."""
    readable = frozenset(
        d["key"] for d in definitions if policy.decide(read_request(who, d["key"], d.get("access"))).allow
    )
    reference = policy.decide(reference_request(who))
    return ReadScope(tenant, readable, reference.allow, reference.reasons, frozenset(d["key"] for d in definitions))


class ReadScopes:
    """Read scopes per subject, decided by the policy, reused while the tenant's definitions stay as they are
    and for at most `ttl` seconds (policy None: everything readable)."""

    def __init__(
        self, documents: DocumentStore, policy: Policy | None, *, ttl: float = 2.0, size: int = 10_000,
        clock: Callable[[], float] = time.monotonic, signature_ttl: float = 0.2,
    ) -> None:
        self.documents = documents
        self.policy = policy
        self.ttl = ttl
        self.size = size
        self.clock = clock
        # how long one look at a tenant's definitions signature serves every reader of the tenant: a published
        # definition's access rules reach queries within this time (commands see them at once), and a busy API
        # does not pay one extra query per request for it (bench/policy.py)
        self.signature_ttl = signature_ttl
        self._lock = threading.Lock()
        self._scopes: OrderedDict[tuple[Any, ...], tuple[float, tuple[Any, ...], ReadScope]] = OrderedDict()
        self._signatures: dict[str, tuple[float, tuple[Any, ...]]] = {}

    def _signature(self, tenant: str, now: float) -> tuple[Any, ...]:
        with self._lock:
            known = self._signatures.get(tenant)
        if known is not None and known[0] > now:
            return known[1]
        signature = definitions_signature(self.documents, tenant)
        with self._lock:
            self._signatures[tenant] = (now + self.signature_ttl, signature)
        return signature

    def of(
        self, user: str, tenant: str, roles: Iterable[str], groups: Iterable[str] = (), *, fresh: bool = False
    ) -> ReadScope:
        """The scope of one subject (blocking: reads the definitions read model, may ask the policy); fresh: decided
        now over the definitions as the read model has them (a stream met a definition its scope did not know)."""
        if self.policy is None:
            return ReadScope.everything(tenant)
        who = subject(user, tenant, roles, groups)
        slot = (user, tenant, tuple(who["roles"]), tuple(who["groups"]))
        now = self.clock()
        if fresh:
            with self._lock:
                self._signatures.pop(tenant, None)
        signature = self._signature(tenant, now)
        with self._lock:
            hit = self._scopes.get(slot)
        if hit is not None and hit[0] > now and hit[1] == signature:
            return hit[2]
        scope = decide_scope(self.policy, who, tenant, tenant_definitions(self.documents, tenant))
        with self._lock:
            self._scopes[slot] = (now + self.ttl, signature, scope)
            self._scopes.move_to_end(slot)
            while len(self._scopes) > self.size:
                self._scopes.popitem(last=False)
        return scope


class CaseDefinitions:
    """Which definition each case follows (it never changes once opened), remembered from the events a feed saw
    and looked up in the `cases` read model otherwise; for feeds whose entries name only their case."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, str] = OrderedDict()

    def learn(self, case_id: str, definition_key: str) -> None:
        with self._lock:
            self._keys[case_id] = definition_key
            self._keys.move_to_end(case_id)
            while len(self._keys) > self.size:
                self._keys.popitem(last=False)

    def known(self, case_id: str) -> str | None:
        """The remembered key, without a lookup."""
        with self._lock:
            return self._keys.get(case_id)

    def keys_of(self, case_ids: Iterable[str], documents: DocumentStore) -> dict[str, str]:
        """Definition keys of these cases (blocking on a lookup for those not remembered); unknown cases absent."""
        found: dict[str, str] = {}
        missing: list[str] = []
        with self._lock:
            for case_id in dict.fromkeys(case_ids):
                key = self._keys.get(case_id)
                if key is None:
                    missing.append(case_id)
                else:
                    found[case_id] = key
        if missing:
            for case_id, (doc, _position) in documents.get_many("cases", missing).items():
                if doc is not None:
                    found[case_id] = doc["definition_key"]
                    self.learn(case_id, doc["definition_key"])
        return found
