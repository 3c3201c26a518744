"""The Novu stand-in (tests/standins/novu.py) enforces Novu's trigger contract: each broken rule is refused,
a valid trigger gets Novu's 201 reply, a repeated transactionId is dropped, injected failures answer 500,
and what novu-py sends passes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import novu_py
import pytest
from novu_py.models import NovuError

from tests.standins.novu import DUPLICATE_MESSAGE, NovuStandIn, novu_standin

KEY = "standin-key"
VALID: dict[str, Any] = {"name": "case-assigned", "to": {"subscriberId": "carol"}, "payload": {"case_id": "c1"},
                         "transactionId": "tx-1"}


@pytest.fixture()
def standin() -> Iterator[NovuStandIn]:
    with novu_standin(KEY) as running:
        yield running


def post(standin: NovuStandIn, body: Any, key: str | None = KEY, path: str = "/v1/events/trigger",
         raw: bytes | None = None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"ApiKey {key}"
    content = raw if raw is not None else httpx.Request("POST", "http://x", json=body).content
    return httpx.post(f"{standin.url}{path}", headers=headers, content=content, timeout=10)


def test_a_valid_trigger_is_acknowledged_and_recorded(standin: NovuStandIn) -> None:
    reply = post(standin, VALID)
    assert reply.status_code == 201
    assert reply.json() == {"data": {"acknowledged": True, "status": "processed", "transactionId": "tx-1"}}
    assert standin.received == [VALID]


@pytest.mark.parametrize("to", ["carol", {"subscriberId": "carol", "email": "c@example.org"},
                                ["carol", {"subscriberId": "dave"}]])
def test_each_form_of_to_is_accepted(standin: NovuStandIn, to: Any) -> None:
    assert post(standin, {**VALID, "to": to}).status_code == 201


def test_a_missing_or_wrong_api_key_is_401(standin: NovuStandIn) -> None:
    assert post(standin, VALID, key=None).status_code == 401
    assert post(standin, VALID, key="other").status_code == 401
    bearer = httpx.post(f"{standin.url}/v1/events/trigger", json=VALID, headers={"Authorization": f"Bearer {KEY}"})
    assert bearer.status_code == 401
    assert standin.received == []


def test_wrong_path_or_method_is_refused(standin: NovuStandIn) -> None:
    assert post(standin, VALID, path="/v1/events/trigger/bulk").status_code == 404
    assert httpx.get(f"{standin.url}/v1/events/trigger", headers={"Authorization": f"ApiKey {KEY}"}).status_code == 405
    assert standin.received == []


def test_a_body_that_is_not_a_json_object_is_400(standin: NovuStandIn) -> None:
    assert post(standin, None, raw=b"{not json").status_code == 400
    assert post(standin, ["a list"]).status_code == 400


@pytest.mark.parametrize(("change", "field"), [
    ({"name": None}, "name"),
    ({"name": ""}, "name"),
    ({"name": 5}, "name"),
    ({"to": None}, "to"),
    ({"to": []}, "to"),
    ({"to": {"email": "x@example.org"}}, "to"),
    ({"to": ["carol", 7]}, "to"),
    ({"payload": None}, "payload"),
    ({"payload": "text"}, "payload"),
    ({"transactionId": None}, "transactionId"),
    ({"transactionId": ""}, "transactionId"),
    ({"actor": 3}, "actor"),
    ({"tenant": {"name": "no identifier"}}, "tenant"),
    ({"overrides": "x"}, "overrides"),
])
def test_a_field_breaking_the_contract_is_422_naming_it(standin: NovuStandIn, change: dict[str, Any],
                                                         field: str) -> None:
    body = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    reply = post(standin, body)
    assert reply.status_code == 422
    assert field in reply.json()["errors"]
    assert standin.received == []


def test_a_repeated_transaction_id_is_dropped_as_novu_does(standin: NovuStandIn) -> None:
    assert post(standin, VALID).status_code == 201
    again = post(standin, {**VALID, "to": "someone-else"})
    assert again.status_code == 400
    assert again.json()["message"] == DUPLICATE_MESSAGE
    assert standin.received == [VALID]
    assert standin.duplicates == ["tx-1"]


def test_fail_next_answers_500_then_recovers(standin: NovuStandIn) -> None:
    standin.fail_next(2)
    assert post(standin, VALID).status_code == 500
    assert post(standin, VALID).status_code == 500
    assert post(standin, VALID).status_code == 201
    assert standin.received == [VALID]


async def test_what_novu_py_sends_passes_the_contract(standin: NovuStandIn) -> None:
    client = novu_py.Novu(secret_key=KEY, server_url=standin.url)
    reply = await client.trigger_async(trigger_event_request_dto={
        "workflow_id": "case-closed", "to": [{"subscriber_id": "alice"}], "payload": {"reason": "paid"},
        "transaction_id": "tx-py", "tenant": "acme", "actor": "bob",
    }, retries=None)
    assert reply.result.status == novu_py.TriggerEventResponseDtoStatus.PROCESSED
    assert reply.result.transaction_id == "tx-py"
    assert standin.received == [{"name": "case-closed", "to": [{"subscriberId": "alice"}],
                                 "payload": {"reason": "paid"}, "transactionId": "tx-py", "actor": "bob",
                                 "tenant": "acme"}]
    wrong = novu_py.Novu(secret_key="wrong", server_url=standin.url)
    with pytest.raises(NovuError) as refused:
        await wrong.trigger_async(trigger_event_request_dto={
            "workflow_id": "case-closed", "to": "alice", "payload": {}, "transaction_id": "tx-2"}, retries=None)
    assert refused.value.status_code == 401
