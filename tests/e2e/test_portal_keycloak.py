"""The portal of `casestream up --distributed` signs in through Keycloak (authorization code + PKCE) in headless
Chromium: the stack as `up --distributed` starts it (servers, relay, worker, API replica behind Traefik), the
portal at the Traefik front door, Keycloak's own login page asking for the password."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from adapters.client_credentials import ClientCredentials
from casestream.stack import Stack, StackConfig, start
from infra.keycloak import KeycloakServer, demo_password, realm_definition
from infra.server import Server
from tests.postgres_store import scratch_database

EDGE = "http://127.0.0.1:28000"  # Traefik, the stack's front door (a registered origin of casestream-portal)
DEFINITION = {
    "key": "incident", "name": "Incident", "schema": {"type": "object"},
    "stages": [{"key": "open", "transitions": ["fixed"]}, {"key": "fixed"}],
}

expect.set_options(timeout=30_000)  # a loaded 2-core machine runs Keycloak, Kafka, workers and the browser


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


@pytest.fixture(scope="module")
def stack(postgres_server: Server, keycloak_server: Server, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Stack]:
    """`up --distributed` with one replica, on a log database, topics, group and read-model database of its own."""
    lines: list[str] = []
    suffix = uuid.uuid4().hex[:8]
    with scratch_database(postgres_server, "kcportal") as db, pytest.MonkeyPatch.context() as env:
        env.setenv("CASESTREAM_POSTGRES_DB", db)
        env.setenv("CASESTREAM_KAFKA_TOPIC_PREFIX", f"kc{suffix}")
        env.setenv("CASESTREAM_WORKER_GROUP", f"kc-{suffix}")
        env.setenv("CASESTREAM_MONGO_DATABASE", f"kc_{suffix}")
        env.delenv("CASESTREAM_OIDC_ISSUERS", raising=False)  # the default under test: the infra Keycloak
        running = start(StackConfig(tmp_path_factory.mktemp("kcportal"), 1, demo=False), lines.append)
        try:
            yield running
        finally:
            running.stop(lines.append)


@pytest.fixture(scope="module")
def opened_case(stack: Stack, keycloak_server: Server) -> dict[str, Any]:
    """A definition published by acme's admin and a case opened by the worker client, both through the edge
    with Keycloak tokens, waited for until the read model behind the edge has it."""
    assert isinstance(keycloak_server, KeycloakServer)
    admin = httpx.post(keycloak_server.token_endpoint("acme"), data={
        "grant_type": "password", "client_id": "casestream-test", "scope": "openid",
        "username": "admin", "password": demo_password("acme", "admin"),
    }, timeout=30).json()["access_token"]
    published = httpx.post(f"{EDGE}/api/definitions", json=DEFINITION,
                           headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    assert published.status_code == 200, published.text
    # a worker signs in as itself: client credentials of casestream-worker
    secret = next(c["secret"] for c in realm_definition("acme")["clients"] if c["clientId"] == "casestream-worker")
    worker = ClientCredentials(keycloak_server.issuer("acme"), "casestream-worker", secret)
    title = f"Printer on fire {uuid.uuid4().hex[:6]}"
    opened = httpx.post(f"{EDGE}/api/cases", json={"definition_key": "incident", "title": title, "data": {}},
                        headers=worker.headers(), timeout=30)
    assert opened.status_code == 201, opened.text
    body = dict(opened.json())
    deadline = time.monotonic() + 180  # fresh workers first join their group: slow on a loaded 2-core machine
    while True:
        detail = httpx.get(f"{EDGE}/api/cases/{body['id']}", params={"wait_for": body["position"], "wait_timeout": 30},
                           headers={"Authorization": f"Bearer {admin}"}, timeout=40)
        if detail.status_code != 504 or time.monotonic() > deadline:
            break
    assert detail.status_code == 200, detail.text
    return {**body, "title": title}


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(base_url=EDGE, viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.set_default_timeout(30_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def _keycloak_login(page: Page, user: str) -> None:
    """Keycloak's own login page (not the portal's) asks for the password."""
    expect(page.locator("#kc-login")).to_be_visible()
    assert page.url.startswith("http://127.0.0.1:28080/realms/acme/"), page.url
    page.locator("#username").fill(user)
    page.locator("#password").fill(demo_password("acme", user))
    page.locator("#kc-login").click()


def test_portal_signs_in_through_keycloak_with_pkce_and_works_with_its_token(
    page: Page, stack: Stack, opened_case: dict[str, Any], keycloak_server: Server,
) -> None:
    assert isinstance(keycloak_server, KeycloakServer)
    issuer = keycloak_server.issuer("acme")
    seen: list[Request] = []
    page.on("request", lambda request: seen.append(request))

    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in to casestream")).to_be_visible()
    expect(page.get_by_label("Password")).to_have_count(0)  # the portal never asks for a password here
    page.get_by_role("button", name="Sign in with acme").click()
    _keycloak_login(page, "alice")

    # back at the portal, signed in: the case list loads with the worker's case in it
    expect(page.get_by_role("heading", name="Cases", level=1)).to_be_visible()
    assert page.url.startswith(f"{EDGE}/") and "code=" not in page.url  # the code is gone from the address bar
    expect(page.locator("#nav")).to_contain_text("alice @ acme")
    expect(page.get_by_role("link", name=opened_case["title"])).to_be_visible()

    # the authorization request used PKCE (S256) and the code went back to Keycloak with the verifier, from the browser
    authorize = next(r for r in seen if r.url.startswith(f"{issuer}/protocol/openid-connect/auth"))
    query = parse_qs(urlsplit(authorize.url).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["client_id"] == ["casestream-portal"] and query["response_type"] == ["code"]
    exchange = next(r for r in seen if r.url == f"{issuer}/protocol/openid-connect/token")
    form = parse_qs(exchange.post_data or "")
    assert form["grant_type"] == ["authorization_code"] and len(form["code_verifier"][0]) >= 43
    assert "password" not in form and "client_secret" not in form
    assert not [r for r in seen if r.url.startswith(f"{EDGE}/auth/token")]

    # the API calls carry Keycloak's token for alice
    api_calls = [r for r in seen if r.url.startswith(f"{EDGE}/api/") and "authorization" in r.headers]
    assert api_calls
    claims = _claims(api_calls[-1].headers["authorization"].removeprefix("Bearer "))
    assert claims["iss"] == issuer and claims["preferred_username"] == "alice" and claims["azp"] == "casestream-portal"

    # a command succeeds: a comment on the worker's case, shown with alice as its author
    page.get_by_role("link", name=opened_case["title"]).click()
    comments = page.get_by_role("region", name="Comments")
    body = f"checked the printer {uuid.uuid4().hex[:6]}"
    comments.get_by_role("textbox", name="Add comment").fill(body)
    comments.get_by_role("button", name="Add comment").click()
    expect(comments.get_by_role("listitem").filter(has_text=body)).to_contain_text("alice")

    # shortly before the access token expires the portal refreshes it with the refresh token
    old_token = page.evaluate("sessionStorage.getItem('casestream.token')")
    page.evaluate("sessionStorage.setItem('casestream.expires', String(Date.now() + 10000))")
    page.get_by_role("link", name="Cases", exact=True).click()
    expect(page.get_by_role("link", name=opened_case["title"])).to_be_visible()
    refreshes = [r for r in seen if r.url == f"{issuer}/protocol/openid-connect/token"
                 and parse_qs(r.post_data or "").get("grant_type") == ["refresh_token"]]
    assert refreshes
    new_token = page.evaluate("sessionStorage.getItem('casestream.token')")
    assert new_token != old_token and _claims(new_token)["preferred_username"] == "alice"

    # signing out ends the Keycloak session too: the next sign-in asks for the password again
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in with acme")).to_be_visible()
    assert any(r.url.startswith(f"{issuer}/protocol/openid-connect/logout") for r in seen)
    assert page.evaluate("sessionStorage.getItem('casestream.token')") is None
    page.get_by_role("button", name="Sign in with acme").click()
    expect(page.locator("#kc-login")).to_be_visible()


def test_password_login_is_off_and_a_forged_sign_in_answer_is_refused(page: Page, stack: Stack) -> None:
    token = httpx.post(f"{EDGE}/auth/token", data={
        "grant_type": "password", "username": "alice", "password": "casestream", "tenant": "acme"}, timeout=30)
    assert token.status_code == 404
    assert token.headers["content-type"].startswith("application/problem+json")
    config = httpx.get(f"{EDGE}/auth/config", timeout=30).json()
    assert config["mode"] == "oidc"
    assert {i["tenant"] for i in config["issuers"]} == {"acme", "globex"}
    # a code delivered with a state this browser never sent (login CSRF) is not exchanged
    page.goto("/?state=forged&code=stolen")
    expect(page.get_by_text("does not belong to this browser session")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in with acme")).to_be_visible()
