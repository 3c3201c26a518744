"""NovuTriggers (novu-py) against the Novu stand-in: what counts as delivered, what is worth retrying, what is not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.novu_mapping import Trigger
from adapters.novu_triggers import NovuTriggers, TriggerFailed
from tests.http_server import free_port
from tests.standins.novu import NovuStandIn, novu_standin

KEY = "triggers-key"
TRIGGER = Trigger("case-closed", ("alice", "bob"), {"reason": "paid"}, "tx-42", "acme", "carol")


@pytest.fixture()
def standin() -> Iterator[NovuStandIn]:
    with novu_standin(KEY) as running:
        yield running


async def test_a_trigger_is_sent_in_novus_shape(standin: NovuStandIn) -> None:
    assert await NovuTriggers(standin.url, KEY).send(TRIGGER) == "sent"
    assert standin.received == [TRIGGER.body()]


async def test_novus_not_unique_answer_counts_as_delivered(standin: NovuStandIn) -> None:
    sender = NovuTriggers(standin.url, KEY)
    assert await sender.send(TRIGGER) == "sent"
    assert await sender.send(TRIGGER) == "duplicate"
    assert len(standin.received) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
async def test_server_errors_and_throttling_are_retriable(standin: NovuStandIn, status: int) -> None:
    standin.fail_next(1, status)
    with pytest.raises(TriggerFailed) as failed:
        await NovuTriggers(standin.url, KEY).send(TRIGGER)
    assert failed.value.retriable
    assert failed.value.status == status


async def test_a_wrong_key_is_not_retried(standin: NovuStandIn) -> None:
    with pytest.raises(TriggerFailed) as failed:
        await NovuTriggers(standin.url, "not-the-key").send(TRIGGER)
    assert not failed.value.retriable
    assert failed.value.status == 401


async def test_a_refused_body_is_not_retried(standin: NovuStandIn) -> None:
    nobody = Trigger("case-closed", (), {}, "tx-43", "acme", "carol")  # `to` would be an empty list
    with pytest.raises(TriggerFailed) as failed:
        await NovuTriggers(standin.url, KEY).send(nobody)
    assert not failed.value.retriable
    assert failed.value.status == 422


async def test_an_unreachable_server_is_retriable() -> None:
    with pytest.raises(TriggerFailed) as failed:
        await NovuTriggers(f"http://127.0.0.1:{free_port()}", KEY, timeout_seconds=2).send(TRIGGER)
    assert failed.value.retriable
    assert failed.value.status is None


def test_an_empty_api_key_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="novu_api_key"):
        NovuTriggers("http://127.0.0.1:1", "")
