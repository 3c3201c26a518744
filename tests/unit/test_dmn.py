"""DMN decision tables (processes/dmn.py): hit policies, unary tests, required decisions, deploy-time refusals."""

from __future__ import annotations

from typing import Any

import pytest

from processes.bpmn import BpmnRejected
from processes.dmn import DecisionError, DecisionRegistry, is_dmn, parse_dmn
from tests.unit import element_models as em


@pytest.fixture
def decisions() -> DecisionRegistry:
    registry = DecisionRegistry()
    assert registry.deploy(em.DMN) == ["collect", "discount", "first", "overlap", "total"]
    return registry


def facts(kind: str, amount: int) -> dict[str, Any]:
    return {"customer": {"kind": kind}, "amount": amount}


def test_first_takes_the_first_matching_rule_in_order(decisions: DecisionRegistry) -> None:
    assert decisions.evaluate("first", facts("gold", 50)) == 1
    assert decisions.evaluate("first", facts("silver", 50)) == 2
    assert decisions.evaluate("first", facts("silver", 5)) == 3


def test_collect_lists_every_matching_rule_and_sum_aggregates_them(decisions: DecisionRegistry) -> None:
    assert decisions.evaluate("collect", facts("gold", 50)) == [1, 2, 3]
    assert decisions.evaluate("collect", facts("bronze", 5)) == [3]
    assert decisions.evaluate("total", facts("gold", 50)) == 6


def test_unique_with_two_matches_is_an_error_naming_the_rules(decisions: DecisionRegistry) -> None:
    assert decisions.evaluate("overlap", facts("x", 15)) == 1
    with pytest.raises(DecisionError, match="overlap_r0, overlap_r1"):
        decisions.evaluate("overlap", facts("x", 25))


def test_an_unknown_decision_is_an_error_naming_it(decisions: DecisionRegistry) -> None:
    with pytest.raises(DecisionError, match="'nope'"):
        decisions.evaluate("nope", {})


def _single(table: str) -> bytes:
    return (em.DMN_HEAD + table + "</definitions>").encode()


def test_several_output_columns_give_a_context_and_a_literal_decision_can_require_a_table() -> None:
    xml = _single(
        '<decision id="route" name="Route"><decisionTable id="t" hitPolicy="RULE ORDER">'
        '<input id="i"><inputExpression id="e"><text>amount</text></inputExpression></input>'
        '<output id="o1" name="queue"/><output id="o2" name="urgent"/>'
        '<rule id="r1"><inputEntry id="a"><text>&gt; 100</text></inputEntry>'
        '<outputEntry id="b"><text>"senior"</text></outputEntry><outputEntry id="c"><text>true</text></outputEntry>'
        '</rule><rule id="r2"><inputEntry id="d"><text>-</text></inputEntry>'
        '<outputEntry id="f"><text>"intake"</text></outputEntry><outputEntry id="g"><text>false</text></outputEntry>'
        '</rule></decisionTable></decision>'
        '<decision id="first_queue" name="First queue"><informationRequirement id="ir">'
        '<requiredDecision href="#route"/></informationRequirement>'
        '<literalExpression id="l"><text>route[1].queue</text></literalExpression></decision>')
    registry = DecisionRegistry()
    registry.deploy(xml)
    assert registry.evaluate("route", {"amount": 500}) == [{"queue": "senior", "urgent": True},
                                                            {"queue": "intake", "urgent": False}]
    assert registry.evaluate("first_queue", {"amount": 500}) == "senior"


def test_a_bad_cell_is_refused_at_deploy_naming_the_rule_and_column() -> None:
    xml = em.DMN.replace(b"<text>&gt;= 1000</text>", b"<text>&gt;= = 1000</text>")
    with pytest.raises(BpmnRejected) as refused:
        parse_dmn(xml)
    assert [p.element_id for p in refused.value.problems] == ["discount_r0"]
    assert "input cell 2: unsupported unary test" in refused.value.problems[0].message


def test_unsupported_hit_policy_is_refused_by_name() -> None:
    xml = em.DMN.replace(b'hitPolicy="FIRST"', b'hitPolicy="PRIORITY"')
    with pytest.raises(BpmnRejected, match="hit policy PRIORITY is not supported"):
        parse_dmn(xml)


def test_dmn_is_told_apart_from_bpmn() -> None:
    assert is_dmn(em.DMN)
    assert not is_dmn(em.SCRIPT)
