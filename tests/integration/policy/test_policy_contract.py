"""One contract for every policy engine: RegoPolicy (regopy, in-process) and OpaPolicy (the real OPA server)."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from adapters.opa_policy import OpaPolicy
from adapters.policy_cache import CachedPolicy
from adapters.policy_files import PolicyLoadError
from adapters.rego_policy import RegoPolicy
from casestream.policy_setup import POLICY_DIR
from commands.policy import Decision, Policy
from domain.errors import PolicyUnavailable
from infra.server import Server
from scripts.policy_table import scenarios

BROKEN = "package casestream.authz\n\n# a rule cut short\nbroken if {\n\tinput.x ==\n}\n"


def case(status: str = "open", access: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"kind": "case", "definition_key": "claim", "stage": "intake", "status": status, "queue": None,
            "assignee": "bob", "owner": "bob", "access": dict(access or {}), **extra}


def request(roles: list[str], action: str, resource: Mapping[str, Any], groups: list[str] | None = None,
            user: str = "alice") -> dict[str, Any]:
    return {"subject": {"user": user, "tenant": "acme", "roles": roles, "groups": groups or []},
            "action": action, "resource": dict(resource)}


# Requests beyond the table: access rules, odd input, names that need escaping.
EXTRA_REQUESTS: list[dict[str, Any]] = [
    request(["admin"], "read", {"kind": "definition", "definition_key": "fraud",
                                "access": {"read_groups": ["fraud-team"]}}),
    request(["viewer"], "read", {"kind": "definition", "definition_key": "fraud",
                                 "access": {"read_groups": ["fraud-team"]}}, groups=["fraud-team"]),
    request(["caseworker"], "UpdateCaseData", case(access={"write_groups": ["claims-team"]}), groups=["other"]),
    request(["caseworker"], "CloseCase", case(access={"restrict": {"CloseCase": ["supervisor"]}}, assignee="alice")),
    request(["supervisor"], "AddComment", case(access={"restrict": {"AddComment": []}})),
    request(["process"], "CloseCase", case("closed", access={"read_groups": ["x"]})),
    request(["cafe\"worker\\"], "Add\"Comment", case()),
    request([], "", {}),
    {},
    {"subject": {"roles": "admin"}, "action": 42, "resource": None},
]


class PolicyContract:
    """What every Policy implementation must do; subclasses give a `policy` fixture (the repo's policies) and
    say how to build one from another folder."""

    def make(self, folder: Path) -> Policy:
        raise NotImplementedError

    def test_answers_the_documented_matrix(self, policy: Policy) -> None:
        # docs/authorization.md's table is generated from these same scenarios (test_policy_table.py)
        reference = RegoPolicy(POLICY_DIR)
        for scenario in scenarios():
            assert policy.decide(scenario.request) == reference.decide(scenario.request), scenario

    def test_denials_name_their_reasons(self, policy: Policy) -> None:
        decision = policy.decide(request(["caseworker"], "AddComment", case("closed")))
        assert decision == Decision(False, (
            "no rule allows AddComment for roles [caseworker]",
            "the case is closed: only a supervisor reopens, archives or comments on it",
        ))
        assert policy.decide(request(["caseworker"], "AddComment", case())) == Decision(True, ())

    def test_confidential_definition_is_hidden_even_from_admins(self, policy: Policy) -> None:
        resource = {"kind": "definition", "definition_key": "fraud", "access": {"read_groups": ["fraud-team"]}}
        refused = policy.decide(request(["admin"], "read", resource))
        assert not refused.allow
        assert "definition fraud is visible only to groups [fraud-team]" in refused.reasons
        assert policy.decide(request(["viewer"], "read", resource, groups=["fraud-team"])).allow

    def test_malformed_requests_are_denied_with_a_reason(self, policy: Policy) -> None:
        for odd in ({}, {"subject": {"roles": "admin"}, "action": 42, "resource": None}, request([], "", {})):
            decision = policy.decide(odd)
            assert decision.allow is False and decision.reasons, odd

    def test_names_needing_escapes_come_back_plain(self, policy: Policy) -> None:
        decision = policy.decide(request(["cafe\"worker\\"], "Add\"Comment", case()))
        assert "no rule allows Add?Comment for roles [cafe?worker?]" in decision.reasons

    def test_a_broken_policy_file_stops_loading_with_file_and_line(self, tmp_path: Path) -> None:
        for source in POLICY_DIR.glob("*.rego"):
            shutil.copy(source, tmp_path / source.name)
        (tmp_path / "zz_broken.rego").write_text(BROKEN)
        with pytest.raises(PolicyLoadError) as raised:
            self.make(tmp_path)
        assert raised.value.file == str(tmp_path / "zz_broken.rego")
        # regopy points at the operator (line 5), OPA at the closing brace it did not expect (line 6)
        assert raised.value.line in (5, 6)
        assert str(raised.value).startswith(f"{tmp_path / 'zz_broken.rego'}:{raised.value.line}: ")

    def test_an_empty_or_missing_folder_does_not_load(self, tmp_path: Path) -> None:
        with pytest.raises(PolicyLoadError, match=r"no \.rego policy files"):
            self.make(tmp_path)
        with pytest.raises(PolicyLoadError, match="does not exist"):
            self.make(tmp_path / "missing")

    def test_cache_answers_identical_requests_without_the_engine(self, policy: Policy) -> None:
        counting = CountingPolicy(policy)
        now = [0.0]
        cached = CachedPolicy(counting, ttl_seconds=2.0, clock=lambda: now[0])
        asked = request(["caseworker"], "AddComment", case())
        reordered = {"resource": asked["resource"], "action": asked["action"], "subject": asked["subject"]}
        first = cached.decide(asked)
        assert cached.decide(reordered) == first
        assert counting.calls == 1
        cached.decide(request(["viewer"], "AddComment", case()))
        assert counting.calls == 2
        now[0] = 2.5
        assert cached.decide(asked) == first
        assert counting.calls == 3

    def test_concurrent_decisions_match_sequential_ones(self, policy: Policy) -> None:
        requests = [s.request for s in scenarios()][:120]
        expected = [policy.decide(r) for r in requests]
        with ThreadPoolExecutor(max_workers=4) as pool:
            got = list(pool.map(policy.decide, requests * 3))
        assert got == expected * 3


class CountingPolicy:
    """Counts the decisions that reach the wrapped engine."""

    def __init__(self, inner: Policy) -> None:
        self.inner = inner
        self.calls = 0

    def decide(self, request: Mapping[str, Any]) -> Decision:
        self.calls += 1
        return self.inner.decide(request)


class TestRegoPolicy(PolicyContract):
    @pytest.fixture(scope="class")
    @classmethod
    def policy(cls) -> Policy:
        return RegoPolicy(POLICY_DIR)

    def make(self, folder: Path) -> Policy:
        return RegoPolicy(folder)


class TestOpaPolicy(PolicyContract):
    @pytest.fixture(autouse=True)
    def _server(self, opa_server: Server) -> None:
        self.url = opa_server.info()["url"]

    @pytest.fixture(scope="class")
    @classmethod
    def policy(cls, opa_server: Server) -> Policy:
        return OpaPolicy(POLICY_DIR, opa_server.info()["url"], 2.0)

    def make(self, folder: Path) -> Policy:
        return OpaPolicy(folder, self.url, 2.0)

    def test_the_server_holds_exactly_our_module(self, policy: Policy, opa_server: Server) -> None:
        import httpx

        ids = {m["id"] for m in httpx.get(f"{self.url}/v1/policies", timeout=5.0).json()["result"]}
        assert "casestream/authz" in ids
        assert not {i for i in ids if "opa_policies" in i or (i.startswith("casestream/") and i != "casestream/authz")}

    def test_a_server_that_lost_the_policies_gets_them_back(self, policy: Policy) -> None:
        import httpx

        assert httpx.delete(f"{self.url}/v1/policies/casestream/authz", timeout=5.0).status_code == 200
        assert policy.decide(request(["caseworker"], "AddComment", case())) == Decision(True, ())

    def test_unreachable_server_at_start_is_unavailable_never_allow(self) -> None:
        with pytest.raises(PolicyUnavailable):
            OpaPolicy(POLICY_DIR, f"http://127.0.0.1:{closed_port()}", 0.5)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class FlakyOpa(BaseHTTPRequestHandler):
    """A stand-in OPA for failures the real one cannot be made to show: accepts uploads, answers decisions
    while `mode` is "ok", then fails with 500, hangs past the client's timeout, or closes."""

    mode = "ok"

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._reply(200, b'{"result": []}')

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self._reply(200, b"{}")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        if FlakyOpa.mode == "500":
            self._reply(500, b'{"code": "internal_error", "message": "boom"}')
        elif FlakyOpa.mode == "slow":
            threading.Event().wait(1.5)
            self._reply(200, b'{"result": {"allow": true, "reasons": []}}')
        else:
            self._reply(200, b'{"result": {"allow": true, "reasons": []}}')


class FlakyServer:
    """Runs FlakyOpa on a free loopback port; `stop` closes the port for good."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyOpa)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.stopped = False

    def stop(self) -> None:
        if not self.stopped:
            self.server.shutdown()
            self.server.server_close()
            self.stopped = True


@pytest.fixture
def flaky_opa() -> Iterator[FlakyServer]:
    FlakyOpa.mode = "ok"
    server = FlakyServer()
    yield server
    server.stop()
    FlakyOpa.mode = "ok"


@pytest.mark.parametrize("mode", ["500", "slow", "gone"])
def test_opa_failing_after_start_is_unavailable_never_allow(flaky_opa: FlakyServer, mode: str) -> None:
    policy = CachedPolicy(OpaPolicy(POLICY_DIR, flaky_opa.url, 0.5), ttl_seconds=2.0)
    asked = request(["caseworker"], "AddComment", case())
    FlakyOpa.mode = mode
    if mode == "gone":
        flaky_opa.stop()
    with pytest.raises(PolicyUnavailable):
        policy.decide(asked)
    # a failure is never cached as an answer
    with pytest.raises(PolicyUnavailable):
        policy.decide(asked)
