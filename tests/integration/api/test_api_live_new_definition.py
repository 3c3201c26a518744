"""A feed opened before a definition existed still shows that definition's first cases (and hides confidential ones)."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from tests.http_server import LiveServer
from tests.integration.api.conftest import CLAIM
from tests.integration.api.test_api_platform import _read_sse


def test_a_stream_decides_on_a_definition_published_after_it_opened(server: LiveServer, alice: httpx.Client) -> None:
    auth = {"Authorization": alice.headers["Authorization"]}
    received: list[dict[str, Any]] = []
    reader = threading.Thread(target=_read_sse, args=(server, auth, 1, received, None, 20))
    listening = server.app.state.broadcaster.subscribers + 1
    reader.start()
    server.wait_for_subscribers(listening)
    issuer = server.platform.issuer
    assert issuer is not None
    fay = issuer.issue("fay", "acme", ("supervisor",), groups=("fraud-team",))
    with server.client("bob", ("supervisor",)) as bob, httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {fay}"}, timeout=30
    ) as member:
        # a confidential definition first (alice is in no group): its case must not reach her stream
        secret = {**CLAIM, "key": "hidden-claim", "access": {"read_groups": ["fraud-team"]}}
        member.post("/api/definitions", json=secret).raise_for_status()
        member.post("/api/cases", json={"definition_key": "hidden-claim", "title": "Secret", "data": {"amount": 1}}
                    ).raise_for_status()
        # then a public one, published while alice's stream is open: her stream must show its first case
        bob.post("/api/definitions", json={**CLAIM, "key": "late-claim"}).raise_for_status()
        opened = bob.post("/api/cases", json={"definition_key": "late-claim", "title": "Late one",
                                              "data": {"amount": 5}})
        opened.raise_for_status()
    reader.join(timeout=25)
    assert [(m["event"], m["data"]["case_id"]) for m in received] == [("CaseOpened", opened.json()["id"])]


def test_read_your_writes_sees_the_case_of_a_definition_published_just_before(
    server: LiveServer, alice: httpx.Client
) -> None:
    assert alice.get("/api/cases", params={"limit": 1}).status_code == 200  # alice's scope is now cached
    with server.client("bob", ("supervisor",)) as bob:
        bob.post("/api/definitions", json={**CLAIM, "key": "fresh-claim"}).raise_for_status()
    opened = alice.post("/api/cases", json={"definition_key": "fresh-claim", "title": "At once", "data": {"amount": 1}})
    assert opened.status_code == 201, opened.text
    case = opened.json()
    reply = alice.get(f"/api/cases/{case['id']}", params={"wait_for": case["position"]})
    assert reply.status_code == 200, reply.text
    listed = alice.get("/api/cases", params={"definition_key": "fresh-claim", "wait_for": case["position"]})
    assert [c["id"] for c in listed.json()["items"]] == [case["id"]]
