"""Demo data: queues, reference records, case definitions and a few hundred cases with believable histories.

Everything is loaded through the command bus (never by writing read models), by the dev users alice and carol
(caseworkers), bob (supervisor) and admin. Every command carries a stable `command_id`
(`demo-<seed>-...`), so loading again with the same seed is idempotent: the bus returns each first result
and stores nothing new. A case's story depends only on (seed, case index), so a larger `cases` extends an
earlier, smaller load instead of clashing with it.

Note: events are stamped with the time they are handled, so all demo activity is dated "now"; only the
business dates inside case data (incident dates, received dates...) are spread over the past months.
"""

from __future__ import annotations

import random
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from casestream import demo_data as d
from commands import messages as m
from commands.bus import Actor, CommandBus, Result
from commands.ports import EventStore
from domain.diff import merge_patch
from domain.process_deployment import SHIPPED, deployments_id

ROLES: dict[str, tuple[str, ...]] = {
    "alice": ("caseworker",),
    "bob": ("supervisor",),
    "carol": ("caseworker",),
    "admin": ("admin",),
}
WORKERS = ("alice", "carol")
# business dates in case data are spread over the months before this day (fixed, so loads are reproducible)
DEMO_TODAY = date(2025, 9, 30)
_FRESH_LIMIT = 256  # a store with this many events is not fresh, whatever they are (the shipped files are a few)


@dataclass(frozen=True)
class DemoSummary:
    """What load_demo did: counts of what it loaded, commands sent, and how many were repeats."""

    tenant: str
    definitions: int
    queues: int
    record_types: int
    records: int
    cases: int
    commands: int
    repeated: int
    seconds: float
    by_definition: dict[str, int] = field(default_factory=dict)

    @property
    def stored(self) -> int:
        """Commands that stored something (not repeats of an earlier load)."""
        return self.commands - self.repeated


class _Loader:
    """Sends commands with stable ids and counts them."""

    def __init__(self, bus: CommandBus, tenant: str, seed: int) -> None:
        self.bus = bus
        self.seed = seed
        self.tenant = tenant
        self.actors = {user: Actor(user, tenant, roles) for user, roles in ROLES.items()}
        self.commands = 0
        self.repeated = 0

    def send(self, name: str, user: str, command_type: type[m.Command], correlation: str, /, **fields: Any) -> Result:
        command = command_type(command_id=f"demo-{self.seed}-{name}", **fields)
        result = self.bus.dispatch(command, self.actors[user], correlation_id=f"demo-{self.seed}-{correlation}")
        self.commands += 1
        self.repeated += result.repeated
        return result


def _path(stages: dict[str, list[str]], start: str, goal: str) -> list[str]:
    """The shortest list of allowed moves from start to goal (empty when already there)."""
    previous: dict[str, str | None] = {start: None}
    todo = deque([start])
    while todo:
        here = todo.popleft()
        if here == goal:
            break
        for nxt in stages[here]:
            if nxt not in previous:
                previous[nxt] = here
                todo.append(nxt)
    if goal not in previous:
        raise ValueError(f"no allowed path from {start!r} to {goal!r}")
    steps: list[str] = []
    node: str | None = goal
    while node is not None and node != start:
        steps.append(node)
        node = previous[node]
    return steps[::-1]


class _Story:
    """One case: issues its commands and tracks its state so each command is one the domain accepts."""

    def __init__(self, loader: _Loader, index: int, rng: random.Random, spec: dict[str, Any]) -> None:
        self.loader = loader
        self.index = index
        self.rng = rng
        self.spec = spec
        self.order = [s["key"] for s in spec["stages"]]
        self.transitions = {s["key"]: list(s["transitions"]) for s in spec["stages"]}
        self.step = 0
        self.case_id: UUID | None = None
        self.number = ""
        self.title = ""
        self.data: dict[str, Any] = {}
        self.stage = self.order[0]
        self.status = "open"
        self.assignee: str | None = None
        self.queue: str | None = None
        self.comments: list[tuple[str, str]] = []  # live comments: (comment_id, author)
        self.mine: dict[str, str] = {}  # comment_id -> body, for edits
        self.context: dict[str, Any] = {}
        self.opened_by = ""
        self.said: set[str] = set()  # comment templates used on this case (each at most once)

    # -- sending --------------------------------------------------------------------------------

    def _send(self, user: str, command_type: type[m.Command], **fields: Any) -> Result:
        self.step += 1
        key = f"{self.index:04d}-{self.step:02d}"
        if self.case_id is not None:
            fields["case_id"] = self.case_id
        return self.loader.send(key, user, command_type, f"case-{self.index:04d}", **fields)

    def open(self, user: str, title: str, data: dict[str, Any]) -> None:
        result = self._send(user, m.OpenCase, definition_key=self.spec["key"], title=title, data=data)
        self.case_id = UUID(result.id)
        self.opened_by = user
        self.number = str(result.extra["number"])
        self.title, self.data = title, data

    def patch(self, user: str, patch: dict[str, Any]) -> None:
        new = merge_patch(self.data, patch)
        if new != self.data and self.status == "open":
            self._send(user, m.UpdateCaseData, patch=patch)
            self.data = new

    def retitle(self, user: str, title: str) -> None:
        if title != self.title and self.status == "open":
            self._send(user, m.RetitleCase, title=title)
            self.title = title

    def move(self, user: str, stage: str) -> None:
        assert stage in self.transitions[self.stage], (self.stage, stage)
        self._send(user, m.MoveCaseToStage, stage=stage)
        self.stage = stage

    def assign(self, by: str, assignee: str) -> None:
        if assignee != self.assignee and self.status == "open":
            self._send(by, m.AssignCase, assignee=assignee)
            self.assignee = assignee

    def unassign(self, by: str) -> None:
        if self.assignee is not None and self.status == "open":
            self._send(by, m.UnassignCase)
            self.assignee = None

    def put_in(self, by: str, queue: str | None) -> None:
        if queue != self.queue and self.status == "open" and (queue is None or queue in self.spec["queues"]):
            self._send(by, m.QueueCase, queue=queue)
            self.queue = queue

    def comment(self, by: str, body: str, parent_id: str | None = None) -> str:
        result = self._send(by, m.AddComment, body=body, parent_id=parent_id)
        comment_id = str(result.extra["comment_id"])
        self.comments.append((comment_id, by))
        self.mine[comment_id] = body
        return comment_id

    def edit(self, comment_id: str, author: str, body: str) -> None:
        self._send(author, m.EditComment, comment_id=comment_id, body=body)
        self.mine[comment_id] = body

    def delete(self, by: str, comment_id: str, reason: str) -> None:
        self._send(by, m.DeleteComment, comment_id=comment_id, reason=reason)
        self.comments = [c for c in self.comments if c[0] != comment_id]

    def close(self, by: str, reason: str, resolution: str | None) -> None:
        self._send(by, m.CloseCase, reason=reason, resolution=resolution)
        self.status = "closed"

    def reopen(self, by: str, reason: str) -> None:
        self._send(by, m.ReopenCase, reason=reason)
        self.status = "open"

    def archive(self, by: str, reason: str) -> None:
        self._send(by, m.ArchiveCase, reason=reason)
        self.status = "archived"

    # -- behaviour ------------------------------------------------------------------------------

    @property
    def worker(self) -> str:
        return self.assignee or "bob"

    def travel(self, goal: str, *, detour: float = 0.12, by: Callable[[str], str] | None = None,
               on_arrival: Callable[[str], None] | None = None) -> None:
        """Move along allowed transitions to goal, sometimes stepping back first (a back-edge)."""
        detours = 0
        while self.stage != goal:
            backs = [s for s in self.transitions[self.stage] if self.order.index(s) < self.order.index(self.stage)]
            if backs and detours < 1 and self.rng.random() < detour:
                nxt = self.rng.choice(backs)
                detours += 1
                self.move(self.worker, nxt)
                self.comment(self.worker, self.rng.choice(BACK_REASONS).format(stage=self._name(nxt)))
            else:
                nxt = _path(self.transitions, self.stage, goal)[0]
                self.move(by(nxt) if by else self.worker, nxt)
            if on_arrival:
                on_arrival(self.stage)
            self.chatter()

    def _name(self, stage: str) -> str:
        return next(str(s["name"]) for s in self.spec["stages"] if s["key"] == stage)

    def chatter(self, p: float = 0.4) -> None:
        """Now and then: a comment, a threaded reply, an edit or a deletion."""
        rng = self.rng
        if self.status == "archived":
            return
        pool = [text for text in d.COMMENTS[self.spec["key"]] if text not in self.said]
        if pool and rng.random() < p:
            text = rng.choice(pool)
            self.said.add(text)
            self.comment(self.worker if rng.random() < 0.75 else "bob", text.format(**self.context))
        if self.comments and rng.random() < p * 0.6:
            parent_id, author = rng.choice(self.comments)
            replier = rng.choice([u for u in ("alice", "bob", "carol") if u != author])
            self.comment(replier, rng.choice(d.REPLIES), parent_id)
        if self.comments and rng.random() < 0.06:
            comment_id, author = rng.choice(self.comments)
            self.edit(comment_id, author, self.mine[comment_id] + rng.choice(d.EDIT_SUFFIXES))
        if self.comments and rng.random() < 0.04:
            comment_id, author = rng.choice(self.comments)
            self.delete(rng.choice([author, "bob"]), comment_id, rng.choice(d.DELETE_REASONS))

    def start(self, work_queue: str) -> None:
        """After opening: intake queue, triage by the supervisor, then the definition's work queue."""
        rng = self.rng
        if rng.random() < 0.7:
            self.put_in(self.opened_by, "intake")
        if rng.random() < 0.88:
            self.assign("bob", rng.choice(WORKERS))
            if rng.random() < 0.8:
                self.put_in(self.worker, work_queue)
        if rng.random() < 0.12 and self.assignee:
            other = next(w for w in WORKERS if w != self.assignee)
            self.comment("bob", f"Reassigning to {other.title()}: {self.assignee.title()} is on leave next week.")
            self.assign("bob", other)

    def finish(self, fate: str, resolution: str | None, reason: str) -> None:
        """Close (and maybe reopen and close again, or archive) according to the case's fate."""
        rng = self.rng
        if fate == "open":
            return
        closer = self.worker if rng.random() < 0.7 else "bob"
        self.close(closer, reason, resolution)
        roll = rng.random()
        if roll < 0.1:
            self.reopen("bob", rng.choice(REOPEN_REASONS))
            self.comment("bob", "Reopened — please take another look and close again once it is settled.")
            if rng.random() < 0.5:
                self.comment(self.worker, "Checked the new information: it does not change the outcome.")
                self.close(self.worker, "Reviewed again after reopening; the decision stands.", resolution)
        elif roll < 0.3:
            self.archive("admin", rng.choice(ARCHIVE_REASONS))


BACK_REASONS = [
    "Sent back to {stage}: information is missing.",
    "Moving back to {stage} — the documents do not match what we were told.",
    "Back to {stage} for another look, see my previous note.",
]
REOPEN_REASONS = [
    "Customer disputes the outcome and sent new evidence.",
    "Closed by mistake.",
    "Quality review found an error in the decision.",
]
ARCHIVE_REASONS = ["Retention: closed and complete.", "Archived after the quarterly file review."]


def _person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(d.FIRST_NAMES), rng.choice(d.LAST_NAMES)


def _email(first: str, last: str, domain: str) -> str:
    text = unicodedata.normalize("NFKD", f"{first}.{last}".lower().replace("\u0131", "i"))
    local = "".join(ch for ch in text if ch.isascii() and (ch.isalnum() or ch == "."))
    return f"{local}@{domain}"


def _day(rng: random.Random, back_from: date, lo: int, hi: int) -> date:
    return back_from - timedelta(days=rng.randint(lo, hi))


# -- the three kinds of case ------------------------------------------------------------------------------

def _claim(story: _Story) -> None:
    rng = story.rng
    first, last = _person(rng)
    category = rng.choice(d.CLAIM_CATEGORIES)
    lo, hi = d.CLAIM_AMOUNTS[category]
    amount = round(rng.uniform(lo, hi) / 5) * 5.0
    incident = _day(rng, DEMO_TODAY, 5, 200)
    data: dict[str, Any] = {
        "policy_number": f"POL-{rng.randint(1_000_000, 9_999_999)}",
        "claimant_name": f"{first} {last}",
        "incident_date": incident.isoformat(),
        "amount": amount,
        "currency": rng.choices(["EUR", "GBP", "USD"], [8, 1, 1])[0],
        "category": category,
        "product": rng.choice(d.CLAIM_CATEGORY_PRODUCTS[category]),
    }
    if rng.random() < 0.7:
        data["claimant_email"] = _email(first, last, rng.choice(["example.com", "mail.example.org"]))
    if rng.random() < 0.6:
        data["reported_date"] = min(incident + timedelta(days=rng.randint(0, 10)), DEMO_TODAY).isoformat()
    title = f"{rng.choice(d.CLAIM_TITLES[category])} — {last}"
    story.context = {"first": first, "policy": data["policy_number"], "currency": data["currency"],
                     "amount": f"{amount:,.0f}"}
    story.open(rng.choice(WORKERS), title, data)
    story.start("claims-team")
    if "description" not in data and rng.random() < 0.6:
        story.patch(story.worker, {"description": f"{title.split(' — ')[0]}. Reported by {first} {last}."})
    if category in ("theft", "vehicle-collision") and rng.random() < 0.6:
        story.patch(story.worker, {"police_report": f"PR-{incident.year}-{rng.randint(10000, 99999)}"})

    fate = rng.choices(["open", "approved", "rejected", "early"], [35, 40, 15, 10])[0]
    suspicious = rng.random() < 0.2
    route = ["triage", "fraud-review", "approval", "payment", "settled"] if suspicious and rng.random() < 0.5 \
        else ["triage", "assessment", "fraud-review", "approval", "payment", "settled"] if suspicious \
        else ["triage", "assessment", "approval", "payment", "settled"]
    if fate == "open":
        route = route[: rng.randint(0, len(route) - 1)]
    elif fate == "rejected":
        route = route[: rng.randint(1, 3)]
    elif fate == "early":
        route = route[: rng.randint(0, 1)]

    def arrive(stage: str) -> None:
        if stage == "assessment" and rng.random() < 0.6:
            visit = min(incident + timedelta(days=rng.randint(7, 30)), DEMO_TODAY)
            story.patch(story.worker, {"adjuster_visit": visit.isoformat()})
        elif stage == "fraud-review":
            story.patch(story.worker, {"fraud_score": rng.randint(55, 95)})
            story.put_in(story.worker, "fraud")
            if rng.random() < 0.5:
                story.assign("bob", "bob")
            elif rng.random() < 0.3:
                story.unassign(story.worker)
                story.comment("bob", "Unassigned: the fraud team picks this up from the fraud queue.")
        elif stage == "approval":
            share = 1.0 if rng.random() < 0.7 else rng.choice([0.5, 0.6, 0.75, 0.8])
            story.patch(story.worker, {"approved_amount": round(amount * share, 2)})
            if amount > 20_000:
                story.put_in(story.worker, "escalations")

    for goal in route:
        story.travel(goal, by=lambda s: "bob" if s == "payment" else story.worker, on_arrival=arrive)

    if fate == "approved":
        approved = story.data.get("approved_amount", amount)
        resolution = "approved" if approved >= amount else "partially-approved"
        reason = f"Paid {data['currency']} {approved:,.2f} to the claimant."
    elif fate == "rejected":
        resolution = "rejected"
        reason = rng.choice(["Damage is not covered by the policy.", "Fraud review confirmed inconsistencies.",
                             "Wear and tear, excluded under the policy terms."])
    else:
        resolution = rng.choice(["withdrawn", "duplicate"])
        reason = "Claimant withdrew the claim." if resolution == "withdrawn" else "Duplicate of an earlier claim."
    story.finish(fate, resolution, reason)


def _complaint(story: _Story, v2: bool) -> None:
    rng = story.rng
    first, last = _person(rng)
    product = rng.choice(d.COMPLAINT_PRODUCTS)
    received = _day(rng, DEMO_TODAY, 1, 150)
    severity = rng.choices(d.COMPLAINT_SEVERITIES, [30, 40, 22, 8])[0]
    data: dict[str, Any] = {
        "customer_name": f"{first} {last}",
        "channel": rng.choice(d.COMPLAINT_CHANNELS),
        "severity": severity,
        "product": product,
        "received_date": received.isoformat(),
        "response_due": (received + timedelta(weeks=8)).isoformat(),
    }
    if rng.random() < 0.8:
        data["customer_email"] = _email(first, last, "example.net")
    if rng.random() < 0.7:
        data["customer_number"] = f"C{rng.randint(10_000_000, 99_999_999)}"
    if v2 and rng.random() < 0.7:
        data["preferred_contact"] = rng.choice(["email", "phone", "letter"])
    subject = rng.choice(d.COMPLAINT_TITLES[product])
    title = f"{subject} — {first} {last}"
    story.context = {"first": first}
    story.open(rng.choice([*WORKERS, "bob"]), title, data)
    story.start("complaints")
    if rng.random() < 0.7:
        story.patch(story.worker, {"summary": f"{subject}. Customer contacted us by {data['channel']}."})
    if severity == "critical":
        story.put_in("bob", "escalations")

    fate = rng.choices(["open", "closed", "withdrawn"], [40, 52, 8])[0]
    waypoints = ["investigating"]
    if rng.random() < 0.35:
        waypoints += ["awaiting-customer", "investigating"]
    if severity in ("high", "critical") or rng.random() < 0.15:
        waypoints.append("escalated")
    waypoints += ["response-drafted", "responded"]
    if fate == "open":
        waypoints = waypoints[: rng.randint(0, len(waypoints) - 1)]
    elif fate == "withdrawn":
        waypoints = waypoints[: rng.randint(0, 2)]

    def arrive(stage: str) -> None:
        if stage == "escalated":
            story.put_in(story.worker, "escalations")
            if severity == "critical":
                story.patch("bob", {"regulator_notified": True})
        elif stage == "response-drafted":
            patch: dict[str, Any] = {"root_cause": rng.choice(
                ["process", "communication", "system-error", "staff-conduct", "pricing", "policy-terms"])}
            if rng.random() < 0.5:
                patch["compensation"] = float(rng.choice([25, 50, 75, 100, 150, 250]))
            story.patch(story.worker, patch)

    for goal in waypoints:
        story.travel(goal, detour=0.1, on_arrival=arrive)

    if fate == "closed":
        resolution = rng.choices(["upheld", "partially-upheld", "not-upheld"], [35, 30, 35])[0]
        reason = {"upheld": "Apologised and put things right.", "partially-upheld": "Partly our fault; goodwill paid.",
                  "not-upheld": "Explained the terms; no error on our side."}[resolution]
    else:
        resolution, reason = "withdrawn", "Customer withdrew the complaint after our call."
    if rng.random() < 0.08:
        story.retitle(story.worker, f"{subject} (repeat complaint) — {first} {last}")
    story.finish(fate, resolution, reason)


def _onboarding(story: _Story) -> None:
    rng = story.rng
    country = rng.choice(d.ONBOARDING_COUNTRIES)
    industry = rng.choice(list(d.COMPANY_KINDS))
    company = f"{rng.choice(d.COMPANY_STEMS)} {d.COMPANY_KINDS[industry]} {d.COMPANY_SUFFIX[country]}"
    first, last = _person(rng)
    high_risk = d.COUNTRIES[country]["high_risk"] or industry == "financial-services"
    risk = "high" if high_risk else rng.choices(["low", "medium", "high"], [60, 32, 8])[0]
    slug = company.split(" ")[0].lower()
    data: dict[str, Any] = {
        "company_name": company,
        "registration_number": f"{d.COUNTRIES[country]['iso2']}{rng.randint(10_000_000, 99_999_999)}",
        "country": country,
        "industry": industry,
        "risk_level": risk,
        "contact_name": f"{first} {last}",
        "contact_email": _email(first, last, f"{slug}.example"),
    }
    if rng.random() < 0.7:
        data["website"] = f"https://www.{slug}-{industry}.example"
    if rng.random() < 0.6:
        data["incorporation_date"] = _day(rng, DEMO_TODAY, 90, 9000).isoformat()
    title = f"{rng.choice(d.ONBOARDING_TITLES)} — {company}"
    story.context = {"company": company, "contact": f"{first} {last}"}
    story.open(rng.choice([*WORKERS, "admin"]), title, data)
    story.start("onboarding")
    if risk == "high":
        story.put_in(story.worker, "fraud")

    fate = rng.choices(["open", "activated", "rejected", "abandoned"], [40, 40, 12, 8])[0]
    route = ["document-check", "kyc", "risk-review", "approval", "activation"]
    if fate == "open":
        route = route[: rng.randint(0, len(route) - 1)]
    elif fate in ("rejected", "abandoned"):
        route = route[: rng.randint(1, 3)]
    docs: list[str] = []

    def arrive(stage: str) -> None:
        if stage == "document-check":
            for doc in ("chamber-extract", "id-director", "ubo-register", "bank-statement"):
                if doc not in docs and rng.random() < 0.7:
                    docs.append(doc)
            if docs:
                story.patch(story.worker, {"documents_received": list(docs)})
        elif stage == "kyc":
            story.patch(story.worker, {"ubo_verified": rng.random() < 0.85,
                                       "employees": rng.choice([3, 8, 12, 25, 40, 120, 350])})
        elif stage == "risk-review":
            story.patch(story.worker, {"expected_monthly_volume": float(rng.randint(5, 900) * 1000)})
            if risk == "high":
                story.assign("bob", "bob")

    for goal in route:
        story.travel(goal, by=lambda s: "bob" if s == "activation" else story.worker, on_arrival=arrive)

    reason = {"activated": f"Account activated for {company}.",
              "rejected": "Could not verify the beneficial owners; declined under our risk policy.",
              "abandoned": "Applicant stopped responding to our requests."}.get(fate, "")
    story.finish(fate, fate if fate != "open" else None, reason)


# -- the loader -------------------------------------------------------------------------------------------

def _setup(loader: _Loader) -> int:
    """Queues, record types and records, definitions. Returns the number of records saved."""
    for queue in d.QUEUES:
        loader.send(f"queue-{queue['key']}", "admin", m.DefineQueue, "setup", **queue)
    for record_type in d.RECORD_TYPES:
        loader.send(f"record-type-{record_type['key']}", "admin", m.DefineRecordType, "setup", **record_type)
    records = 0
    for type_key, items in d.RECORDS.items():
        for key, data in items.items():
            loader.send(f"record-{type_key}-{key}", "admin", m.SaveRecord, "setup", type_key=type_key, key=key,
                        data=data)
            records += 1
    for key, reason in d.RETIRED_PRODUCTS.items():
        loader.send(f"record-product-{key}-removed", "admin", m.RemoveRecord, "setup", type_key="product", key=key,
                    reason=reason)
    for spec in d.DEFINITIONS:
        loader.send(f"definition-{spec['key']}-v1", "admin", m.PublishCaseDefinition, "setup", **spec)
    return records


def holds_work(store: EventStore) -> bool:
    """Whether the store holds more than the shipped processes' deployments, which every start with processes on
    stores (a stack's process worker may have started before the demo is loaded): what `demo --if-empty` asks."""
    shipped = deployments_id(SHIPPED)
    first = store.read(0, _FRESH_LIMIT)
    return len(first) == _FRESH_LIMIT or any(p.event.aggregate_id != shipped for p in first)


def load_demo(
    bus: CommandBus, *, tenant: str = "acme", cases: int = 240, seed: int = 7,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Load the demo catalogue and `cases` cases into tenant through bus; idempotent per (tenant, seed).

    progress, when given, is called with (cases done, cases total) after each case.
    """
    started = time.perf_counter()
    loader = _Loader(bus, tenant, seed)
    records = _setup(loader)
    specs = {spec["key"]: spec for spec in d.DEFINITIONS}
    by_definition = dict.fromkeys(specs, 0)
    for index in range(cases):
        if index == d.COMPLAINT_V2_AFTER:
            loader.send("definition-complaint-v2", "admin", m.PublishCaseDefinition, "setup", **d.COMPLAINT_V2)
            specs["complaint"] = d.COMPLAINT_V2
        rng = random.Random(f"casestream-demo:{seed}:{index}")
        kind = rng.choices(["claim", "complaint", "onboarding"], [45, 35, 20])[0]
        story = _Story(loader, index, rng, specs[kind])
        if kind == "claim":
            _claim(story)
        elif kind == "complaint":
            _complaint(story, v2=index >= d.COMPLAINT_V2_AFTER)
        else:
            _onboarding(story)
        by_definition[kind] += 1
        if progress is not None:
            progress(index + 1, cases)
    return DemoSummary(
        tenant=tenant, definitions=len(d.DEFINITIONS), queues=len(d.QUEUES), record_types=len(d.RECORD_TYPES),
        records=records, cases=cases, commands=loader.commands, repeated=loader.repeated,
        seconds=round(time.perf_counter() - started, 3), by_definition=by_definition,
    )


# -- live cases: run by the shipped processes -------------------------------------------------------------

def _live_data(kind: str, rng: random.Random) -> tuple[str, dict[str, Any]]:
    """A title and case data for a fresh case of kind (claim, complaint or onboarding)."""
    first, last = _person(rng)
    if kind == "claim":
        category = rng.choice(d.CLAIM_CATEGORIES)
        lo, hi = d.CLAIM_AMOUNTS[category]
        data: dict[str, Any] = {
            "policy_number": f"POL-{rng.randint(1_000_000, 9_999_999)}", "claimant_name": f"{first} {last}",
            "incident_date": _day(rng, DEMO_TODAY, 1, 20).isoformat(), "amount": round(rng.uniform(lo, hi) / 5) * 5.0,
            "currency": "EUR", "category": category, "claimant_email": _email(first, last, "example.com"),
        }
        return f"{rng.choice(d.CLAIM_TITLES[category])} — {last}", data
    if kind == "complaint":
        product = rng.choice(d.COMPLAINT_PRODUCTS)
        received = _day(rng, DEMO_TODAY, 0, 5)
        data = {"customer_name": f"{first} {last}", "channel": rng.choice(d.COMPLAINT_CHANNELS),
                "severity": rng.choice(d.COMPLAINT_SEVERITIES), "product": product,
                "received_date": received.isoformat(), "response_due": (received + timedelta(weeks=8)).isoformat(),
                "customer_email": _email(first, last, "example.net")}
        return f"{rng.choice(d.COMPLAINT_TITLES[product])} — {first} {last}", data
    country = rng.choice(d.ONBOARDING_COUNTRIES)
    industry = rng.choice(list(d.COMPANY_KINDS))
    company = f"{rng.choice(d.COMPANY_STEMS)} {d.COMPANY_KINDS[industry]} {d.COMPANY_SUFFIX[country]}"
    registration = f"{d.COUNTRIES[country]['iso2']}{rng.randint(10**7, 10**8 - 1)}"
    data = {"company_name": company, "registration_number": registration,
            "country": country, "industry": industry, "risk_level": rng.choice(["low", "medium", "high"]),
            "contact_name": f"{first} {last}",
            "contact_email": _email(first, last, f"{company.split(' ')[0].lower()}.example")}
    return f"{rng.choice(d.ONBOARDING_TITLES)} — {company}", data


def load_live_cases(bus: CommandBus, *, tenant: str = "acme", cases: int = 9, seed: int = 7) -> int:
    """Publish the process-enabled definition versions and open `cases` cases under them; return how many.

    Run after `load_demo`: the history's cases stay on the versions without processes (people moved them),
    these move on their own once the platform runs processes (`casestream serve`). Idempotent per seed.
    """
    loader = _Loader(bus, tenant, seed)
    for record_type in d.PROCESS_RECORD_TYPES:
        loader.send(f"record-type-{record_type['key']}", "admin", m.DefineRecordType, "live", **record_type)
    for spec in d.LIVE_DEFINITIONS:
        loader.send(f"definition-{spec['key']}-live", "admin", m.PublishCaseDefinition, "live", **spec)
    kinds = ["claim", "complaint", "onboarding"]
    for index in range(cases):
        rng = random.Random(f"casestream-demo-live:{seed}:{index}")
        kind = kinds[index % len(kinds)]
        title, data = _live_data(kind, rng)
        loader.send(f"live-{index:03d}-open", rng.choice(WORKERS), m.OpenCase, f"live-{index:03d}",
                    definition_key=kind, title=title, data=data)
    return cases
