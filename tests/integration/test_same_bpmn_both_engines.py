"""The same BPMN files and worker module give the same case history on the embedded engine and on Zeebe.

Zeebe here is the gateway STAND-IN (tests/standins/zeebe_gateway.py): no Zeebe engine may run on this machine.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

import pytest

from adapters.event_store import sqlite_event_store
from adapters.zeebe_engine import build_worker
from commands import messages as m
from commands.bus import CommandBus
from processes.engine import EmbeddedEngine
from processes.jobs import known_task_types
from tests.integration.test_zeebe_adapter import ALICE, CONFIG, MODELS, TENANT, Stack, until, zeebe_stack
from tests.unit.conftest import claim_definition

CLAIM_HANDLING = [
    ("CaseOpened", "process"), ("CaseMovedToStage", "review"), ("CaseAssigned", "carol"), ("CaseQueued", "fraud"),
    ("CaseClosed", "customer replied: photos sent"),
]
REFUSED_MOVE = [("CaseOpened", "process"), ("CaseQueued", "fraud")]


DETAIL = {"CaseMovedToStage": "to_stage", "CaseAssigned": "assignee", "CaseQueued": "queue", "CaseClosed": "reason"}


def history(bus: CommandBus, case_id: str) -> list[tuple[str, str]]:
    """Each event of the case with the field it changed ("process" for the opening, which no process did)."""
    return [
        (type(e).__name__, str(getattr(e, DETAIL[type(e).__name__])) if type(e).__name__ in DETAIL else "process")
        for e in bus.store.events_of(UUID(case_id))
    ]


def on_embedded_engine(tmp_path: Path, model: str, process_id: str, amount: float) -> list[tuple[str, str]]:
    store = sqlite_event_store(tmp_path / "embedded.sqlite")
    try:
        bus = CommandBus(store)
        bus.dispatch(claim_definition(), ALICE)
        case_id = bus.dispatch(m.OpenCase(definition_key="claim", title="Hail", data={"amount": amount}), ALICE).id
        engine = EmbeddedEngine(bus, store, task_types=known_task_types())
        engine.deploy((MODELS / model).read_bytes(), model)
        engine.start(process_id, tenant=TENANT, case_id=case_id, variables={"amount": amount, "reviewer": "carol"})
        engine.run_jobs()
        if engine.correlate_message(TENANT, "customer-replied", case_id, {"reply": "photos sent"}):
            engine.run_jobs()
        return history(bus, case_id)
    finally:
        store.close()


async def on_zeebe(tmp_path: Path, model: str, process_id: str, amount: float) -> list[tuple[str, str]]:
    async with zeebe_stack(tmp_path) as stack:
        await stack.processes.deploy(MODELS / model)
        case_id = stack.open_claim(amount)
        key = await stack.processes.start(
            process_id, tenant=TENANT, case_id=case_id, variables={"amount": amount, "reviewer": "carol"}
        )
        worker = build_worker(stack.channel, stack.bus, CONFIG)
        task = asyncio.create_task(worker.work())
        try:
            await until(lambda: _waiting_or_done(stack, key), "the instance to wait or finish")
            if stack.instance_state(key) == "active":
                await stack.processes.publish_message("customer-replied", case_id, {"reply": "photos sent"}, ttl_ms=0)
                await until(lambda: stack.instance_state(key) == "completed", "the instance to complete")
        finally:
            await worker.stop()
            await asyncio.wait_for(task, 10)
        return history(stack.bus, case_id)


def _waiting_or_done(stack: Stack, key: int) -> bool:
    instance = stack.gateway.broker.instances[key]
    return instance.state == "completed" or instance.tokens == {"Wait_reply": 1}


@pytest.mark.parametrize(
    ("model", "process_id", "expected"),
    [("claim_handling.bpmn", "claim-handling", CLAIM_HANDLING), ("refused_move.bpmn", "skip-to-done", REFUSED_MOVE)],
)
async def test_the_same_model_gives_the_same_case_history_on_both_engines(tmp_path, model, process_id, expected):
    embedded = await asyncio.to_thread(on_embedded_engine, tmp_path, model, process_id, 5000)
    zeebe = await on_zeebe(tmp_path, model, process_id, 5000)
    assert embedded == expected
    assert zeebe == expected
