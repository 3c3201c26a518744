"""How clients sign in when external issuers are configured: GET /auth/config for the portal, client credentials
for casestream's own clients, and the distributed mode's default of the infra Keycloak (real Keycloak)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from adapters.client_credentials import ClientCredentials, ClientCredentialsRefused, issuer_for_tenant
from casestream.cli import app as cli_app
from casestream.cli_distributed import infra_keycloak_issuers, with_distributed_identity, with_distributed_policy
from casestream.settings import Settings
from infra.keycloak import KeycloakServer, realm_definition
from infra.server import Server
from tests.http_server import LiveServer, live_server


def _secret(realm: str) -> str:
    clients = realm_definition(realm)["clients"]
    return str(next(c["secret"] for c in clients if c["clientId"] == "casestream-worker"))


@pytest.fixture(scope="module")
def keycloak(keycloak_server: Server) -> KeycloakServer:
    assert isinstance(keycloak_server, KeycloakServer)
    return keycloak_server


@pytest.fixture(scope="module")
def oidc_server(tmp_path_factory: pytest.TempPathFactory, keycloak: KeycloakServer) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("signin"), processes="off",
                        oidc_issuers=infra_keycloak_issuers())
    with live_server(settings) as live:
        yield live


def test_embedded_mode_signs_in_with_the_password_form(tmp_path: Path) -> None:
    with live_server(Settings(data_dir=tmp_path, processes="off")) as live:
        assert httpx.get(f"{live.url}/auth/config").json() == {"mode": "password"}


def test_with_external_issuers_the_portal_is_told_each_tenants_endpoints(
    oidc_server: LiveServer, keycloak: KeycloakServer,
) -> None:
    config = httpx.get(f"{oidc_server.url}/auth/config").json()
    assert config["mode"] == "oidc"
    assert [i["tenant"] for i in config["issuers"]] == ["acme", "globex"]
    for entry in config["issuers"]:
        discovery = httpx.get(f"{keycloak.issuer(entry['tenant'])}/.well-known/openid-configuration").json()
        assert entry == {
            "tenant": entry["tenant"], "issuer": keycloak.issuer(entry["tenant"]),
            "authorization_endpoint": discovery["authorization_endpoint"],
            "token_endpoint": discovery["token_endpoint"],
            "end_session_endpoint": discovery["end_session_endpoint"],
            "client_id": "casestream-portal",
        }
    assert httpx.post(f"{oidc_server.url}/auth/token", data={
        "grant_type": "password", "username": "alice", "password": "casestream"}).status_code == 404


def test_an_unreachable_issuer_is_a_503_with_retry_after(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, processes="off", oidc_issuers={"http://127.0.0.1:9/realms/acme": "acme"})
    with live_server(settings) as live:
        reply = httpx.get(f"{live.url}/auth/config")
    assert reply.status_code == 503
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.headers["retry-after"] == "5"
    assert "127.0.0.1:9/realms/acme" in reply.json()["detail"]


def test_a_worker_calls_the_api_with_its_own_client_credentials(
    oidc_server: LiveServer, keycloak: KeycloakServer,
) -> None:
    acme = issuer_for_tenant(infra_keycloak_issuers(), "acme")
    worker = ClientCredentials(acme, "casestream-worker", _secret("acme"))
    headers = worker.headers()
    assert worker.access_token() == headers["Authorization"].removeprefix("Bearer ")  # reused, not fetched again
    me = httpx.get(f"{oidc_server.url}/api/me", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["tenant"] == "acme" and "worker" in me.json()["roles"]
    assert me.json()["user"] == "service-account-casestream-worker"


def test_a_token_is_fetched_again_shortly_before_it_expires(keycloak: KeycloakServer) -> None:
    now = [0.0]
    worker = ClientCredentials(keycloak.issuer("acme"), "casestream-worker", _secret("acme"), clock=lambda: now[0])
    first = worker.access_token()
    now[0] = 300 - 31  # Keycloak's 300 s tokens: still more than the 30 s margin left
    assert worker.access_token() == first
    now[0] = 300 - 29
    assert worker.access_token() != first


def test_wrong_secret_missing_secret_and_unknown_tenant_are_refused(keycloak: KeycloakServer) -> None:
    with pytest.raises(ClientCredentialsRefused, match="401"):
        ClientCredentials(keycloak.issuer("acme"), "casestream-worker", _secret("globex")).access_token()
    with pytest.raises(ClientCredentialsRefused, match="CASESTREAM_OIDC_CLIENT_SECRET"):
        ClientCredentials(keycloak.issuer("acme"), "casestream-worker", "")
    with pytest.raises(ClientCredentialsRefused, match="tenant 'beta'"):
        issuer_for_tenant(infra_keycloak_issuers(), "beta")


def test_distributed_mode_trusts_the_infra_keycloak_unless_issuers_are_configured(
    monkeypatch: pytest.MonkeyPatch, keycloak: KeycloakServer,
) -> None:
    monkeypatch.delenv("CASESTREAM_OIDC_ISSUERS", raising=False)
    assert with_distributed_identity(Settings()).oidc_issuers == {
        "http://127.0.0.1:28080/realms/acme": "acme", "http://127.0.0.1:28080/realms/globex": "globex"}
    monkeypatch.setenv("CASESTREAM_OIDC_ISSUERS", '{"https://login.example/realms/x": "x"}')
    assert with_distributed_identity(Settings()).oidc_issuers == {"https://login.example/realms/x": "x"}
    monkeypatch.setenv("CASESTREAM_OIDC_ISSUERS", "{}")  # the operator keeps the built-in issuer
    assert with_distributed_identity(Settings()).oidc_issuers == {}


def test_service_token_command_prints_a_token_of_the_worker_client(
    monkeypatch: pytest.MonkeyPatch, oidc_server: LiveServer, keycloak: KeycloakServer,
) -> None:
    monkeypatch.delenv("CASESTREAM_OIDC_ISSUERS", raising=False)
    monkeypatch.setenv("CASESTREAM_OIDC_CLIENT_SECRET", _secret("globex"))
    printed = CliRunner().invoke(cli_app, ["service-token", "--tenant", "globex"])
    assert printed.exit_code == 0, printed.output
    me = httpx.get(f"{oidc_server.url}/api/me", headers={"Authorization": f"Bearer {printed.output.strip()}"})
    assert me.status_code == 200 and me.json()["tenant"] == "globex"
    refused = CliRunner().invoke(cli_app, ["service-token", "--tenant", "acme"])  # globex's secret at acme
    assert refused.exit_code == 1 and "401" in refused.output


def test_distributed_mode_asks_the_opa_server_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CASESTREAM_POLICY_ENGINE", raising=False)
    monkeypatch.delenv("CASESTREAM_OPA_URL", raising=False)
    chosen = with_distributed_policy(Settings())
    assert (chosen.policy_engine, chosen.opa_url) == ("opa", "http://127.0.0.1:28181")
    monkeypatch.setenv("CASESTREAM_POLICY_ENGINE", "embedded")
    assert with_distributed_policy(Settings()).policy_engine == "embedded"
    monkeypatch.setenv("CASESTREAM_POLICY_ENGINE", "opa")
    monkeypatch.setenv("CASESTREAM_OPA_URL", "http://opa.internal:8181")
    assert with_distributed_policy(Settings()).opa_url == "http://opa.internal:8181"
