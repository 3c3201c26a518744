"""Decisions per tenant (a tenant's own first, then the shipped ones) and DMN deployments as events."""

from __future__ import annotations

import pytest

from domain.process_deployment import ProcessDeployed
from processes.dmn import DecisionError, DecisionRegistry
from tests.unit import element_models as em


def test_a_tenants_decisions_come_before_the_shipped_ones_and_no_other_tenant_sees_them() -> None:
    registry = DecisionRegistry()
    registry.deploy(em.DMN)
    own = em.DMN.replace(b"<text>0.15</text>", b"<text>0.5</text>")
    assert own != em.DMN
    registry.deploy(own, "acme")
    gold = {"customer": {"kind": "gold"}, "amount": 5000}
    assert registry.for_tenant("globex").evaluate("discount", gold) == 0.15
    assert registry.for_tenant("acme").evaluate("discount", gold) == 0.5
    assert registry.evaluate("discount", gold) == 0.15
    assert "discount" in registry.for_tenant("globex")
    alone = DecisionRegistry()
    alone.deploy(em.DMN, "acme")
    assert "discount" not in alone.for_tenant("globex") and "discount" in alone.for_tenant("acme")
    with pytest.raises(DecisionError, match="no decision with id 'discount'"):
        alone.for_tenant("globex").evaluate("discount", {"amount": 1})


def test_a_deployment_stored_before_dmn_existed_reads_as_bpmn() -> None:
    old = {"process_id": "p", "name": "", "process_version": 1, "filename": "p.bpmn", "xml": "<x/>",
           "content_hash": "0" * 64, "deployer": "root", "forms": {}}
    assert ProcessDeployed.upcast(old, 1) == {**old, "kind": "bpmn"}
