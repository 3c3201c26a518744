"""Security headers on the portal and the API; health endpoints keep internal error text to the log (#12)."""

from __future__ import annotations

import httpx

from api.security_headers import portal_csp
from tests.http_server import LiveServer


def test_portal_page_carries_a_strict_csp_and_the_common_headers(server: LiveServer) -> None:
    reply = httpx.get(server.url + "/")
    assert reply.status_code == 200
    csp = reply.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["x-frame-options"] == "DENY"
    assert reply.headers["referrer-policy"] == "no-referrer"
    module = httpx.get(server.url + "/ui/app.js")
    assert module.headers["content-security-policy"] == csp


def test_api_replies_cannot_be_framed_or_sniffed(server: LiveServer) -> None:
    reply = httpx.get(server.url + "/healthz")
    assert reply.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert reply.headers["x-content-type-options"] == "nosniff"
    refused = httpx.get(server.url + "/api/cases")  # an error reply gets them too
    assert refused.status_code == 401
    assert refused.headers["x-frame-options"] == "DENY"


def test_portal_csp_lets_the_portal_call_the_configured_issuers_only() -> None:
    csp = portal_csp(["http://127.0.0.1:28080/realms/acme", "http://127.0.0.1:28080/realms/globex"]).decode()
    assert "connect-src 'self' http://127.0.0.1:28080;" in csp
    assert "connect-src 'self';" in portal_csp([]).decode()


def test_readyz_does_not_show_internal_error_text(server: LiveServer) -> None:
    runner = server.platform.runner
    # the runner clears its error on its next good pass, so set it until a probe sees it
    for _ in range(50):
        runner.last_error = "OperationalError('database is locked at /secret/path/views.sqlite')"
        reply = httpx.get(server.url + "/readyz")
        if reply.status_code == 503:
            break
    runner.last_error = None
    assert reply.status_code == 503
    assert "/secret/path" not in reply.text and "OperationalError" not in reply.text
    assert reply.json()["runner"]["error"]
