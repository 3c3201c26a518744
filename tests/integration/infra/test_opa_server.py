"""The OPA server evaluates the tiny Rego v1 policy over HTTP, and `opa test` passes on it."""

from __future__ import annotations

import httpx

from infra.opa import DEFAULT_POLICY_DIR, OpaServer, opa_test
from infra.process import port_open
from infra.server import Server
from tests.servers import listeners


def _decide(server: Server, input_doc: dict[str, object]) -> dict[str, object]:
    response = httpx.post(
        f"{server.info()['url']}/v1/data/casestream/authz", json={"input": input_doc}, timeout=5.0
    )
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert isinstance(result, dict)
    return result


def test_opa_allows_caseworker_on_own_team(opa_server: Server) -> None:
    assert isinstance(opa_server, OpaServer)
    decision = _decide(
        opa_server,
        {"subject": {"roles": ["caseworker"], "team": "intake"}, "action": "read", "case": {"team": "intake"}},
    )
    assert decision["allow"] is True
    assert decision.get("reasons", []) == []


def test_opa_denies_other_team_with_reason(opa_server: Server) -> None:
    decision = _decide(
        opa_server,
        {"subject": {"roles": ["caseworker"], "team": "intake"}, "action": "read", "case": {"team": "appeals"}},
    )
    assert decision["allow"] is False
    assert decision["reasons"] == ["not in the case's team"]


def test_opa_query_helper_and_health(opa_server: Server) -> None:
    assert isinstance(opa_server, OpaServer)
    assert httpx.get(f"{opa_server.info()['url']}/health", timeout=5.0).status_code == 200
    assert opa_server.query("casestream/authz/allow", {"subject": {"roles": ["admin"]}}) is True
    assert opa_server.query("casestream/authz/allow", {}) is False
    assert opa_server.query("casestream/authz/no_such_rule", {}) is None


def test_opa_listens_only_on_loopback(opa_server: Server) -> None:
    port = int(opa_server.info()["port"])
    assert port_open(port, "127.0.0.1")
    # 0100007F is 127.0.0.1 in /proc/net/tcp's little-endian hex; a wildcard or IPv6 bind would show too
    assert listeners(port) == ["0100007F"]


def test_opa_test_passes_on_policy_folder() -> None:
    result = opa_test(DEFAULT_POLICY_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS: 5/5" in result.stdout, result.stdout
