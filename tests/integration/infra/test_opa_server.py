"""The OPA server starts empty on loopback, takes Rego v1 modules over its REST API and evaluates them."""

from __future__ import annotations

import httpx

from infra.opa import OpaServer
from infra.process import port_open
from infra.server import Server
from tests.servers import listeners

# A package of its own: the server is shared with the application's policies (package casestream.authz).
PROBE_ID = "infra_probe/check"
PROBE = """package infra_probe.check

default allow := false

allow if input.level >= 3

reasons contains "level too low" if input.level < 3
"""


def test_opa_evaluates_an_uploaded_rego_v1_module(opa_server: Server) -> None:
    assert isinstance(opa_server, OpaServer)
    url = opa_server.info()["url"]
    assert httpx.put(f"{url}/v1/policies/{PROBE_ID}", content=PROBE, timeout=5.0).status_code == 200
    assert opa_server.query("infra_probe/check/allow", {"level": 4}) is True
    assert opa_server.query("infra_probe/check/allow", {"level": 1}) is False
    assert opa_server.query("infra_probe/check/reasons", {"level": 1}) == ["level too low"]
    assert opa_server.query("infra_probe/check/no_such_rule", {}) is None


def test_opa_refuses_a_module_that_does_not_compile_naming_the_line(opa_server: Server) -> None:
    url = opa_server.info()["url"]
    broken = "package infra_probe.broken\n\nallow if {\n\tinput.x ==\n}\n"
    response = httpx.put(f"{url}/v1/policies/infra_probe/broken", content=broken, timeout=5.0)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors[0]["location"]["row"] == 5
    assert httpx.get(f"{url}/v1/policies/infra_probe/broken", timeout=5.0).status_code == 404


def test_opa_health(opa_server: Server) -> None:
    assert httpx.get(f"{opa_server.info()['url']}/health", timeout=5.0).status_code == 200
    assert opa_server.healthy()


def test_opa_listens_only_on_loopback(opa_server: Server) -> None:
    port = int(opa_server.info()["port"])
    assert port_open(port, "127.0.0.1")
    # 0100007F is 127.0.0.1 in /proc/net/tcp's little-endian hex; a wildcard or IPv6 bind would show too
    assert listeners(port) == ["0100007F"]
