"""DMN decision tables for business-rule tasks (`zeebe:calledDecision`), evaluated with our FEEL.

`parse_dmn(xml)` reads a DMN 1.1 to 1.5 file as Camunda Modeler writes it: decisions holding a decision table
(input expressions, FEEL unary-test input cells, FEEL output cells, hit policy UNIQUE, FIRST, PRIORITY is
refused, ANY, RULE ORDER, COLLECT with or without SUM/MIN/MAX/COUNT) or a literal expression, and
`requiredDecision`s (evaluated first; their results are visible under the required decision's id, as in
Camunda). Everything is compiled at deploy, so a bad cell is refused naming the decision, rule and column.
The result follows Camunda 8: one output column gives the value itself, several a context; a single-result
hit policy gives that (or null when no rule matched), a multiple-result one a list.
"""

from __future__ import annotations

import threading
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from lxml import etree

from processes.bpmn import BpmnRejected, Problem
from processes.feel import Expression, FeelError, UnaryTests, compile_feel, compile_unary_tests

__all__ = ["Decision", "DecisionError", "DecisionRegistry", "TenantDecisions", "dmn_definitions", "evaluate_decision",
           "is_dmn", "parse_dmn"]

_DMN_NAMESPACES: Final = (
    "https://www.omg.org/spec/DMN/20191111/MODEL/",  # 1.3
    "https://www.omg.org/spec/DMN/20211108/MODEL/",  # 1.4
    "https://www.omg.org/spec/DMN/20230324/MODEL/",  # 1.5
    "http://www.omg.org/spec/DMN/20180521/MODEL/",  # 1.2
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",  # 1.1
)
_SINGLE: Final = ("UNIQUE", "FIRST", "ANY")
_MULTIPLE: Final = ("COLLECT", "RULE ORDER")
_AGGREGATIONS: Final = ("SUM", "MIN", "MAX", "COUNT")


class DecisionError(RuntimeError):
    """A decision could not be evaluated (unknown id, a UNIQUE table with several matches, ...)."""


@dataclass(frozen=True)
class Rule:
    """One row: its input cells and output cells."""

    rule_id: str
    inputs: tuple[UnaryTests, ...]
    outputs: tuple[Expression | None, ...]


@dataclass(frozen=True)
class Decision:
    """A compiled decision: a table (inputs, outputs, rules, hit policy) or a literal expression."""

    decision_id: str
    name: str
    requires: tuple[str, ...] = ()
    inputs: tuple[Expression, ...] = ()
    outputs: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    hit_policy: str = "UNIQUE"
    aggregation: str | None = None
    literal: Expression | None = field(default=None)
    literal_variable: str | None = None


def is_dmn(xml: bytes) -> bool:
    """Whether the bytes look like a DMN document (its root namespace), without a full parse."""
    head = xml[:2000]
    return any(ns.encode() in head for ns in _DMN_NAMESPACES) and b"definitions" in head


def _local(el: Any) -> str:
    return str(etree.QName(el).localname)


def _children(el: Any, name: str) -> list[Any]:
    return [c for c in el if isinstance(c.tag, str) and _local(c) == name]


def _text(el: Any, name: str) -> str:
    found = _children(el, name)
    return (found[0].text or "").strip() if found else ""


class _Reader:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.decision_id: str | None = None  # the decision being read: a rule's or column's problem names it

    def problem(self, el: Any, message: str) -> None:
        within = f" (in decision {self.decision_id!r})" if self.decision_id and el.get("id") != self.decision_id else ""
        self.problems.append(Problem(el.get("id"), message + within, el.sourceline))

    def feel(self, el: Any, text: str, what: str) -> Expression | None:
        try:
            return compile_feel(text)
        except FeelError as e:
            self.problem(el, f"{what}: unsupported FEEL: {e}")
            return None

    def decision(self, el: Any) -> Decision | None:
        decision_id = el.get("id")
        self.decision_id = decision_id
        name = el.get("name") or decision_id
        requires = tuple(
            (r.get("href") or "").lstrip("#")
            for info in _children(el, "informationRequirement") for r in _children(info, "requiredDecision"))
        tables = _children(el, "decisionTable")
        literals = _children(el, "literalExpression")
        if literals:
            text = _text(literals[0], "text")
            variable = _children(el, "variable")
            expression = self.feel(literals[0], text, f"literal expression of decision {decision_id!r}")
            if expression is None:
                return None
            return Decision(decision_id, name, requires, literal=expression,
                            literal_variable=variable[0].get("name") if variable else decision_id)
        if not tables:
            self.problem(el, "a decision needs a decisionTable or a literalExpression (other kinds are not "
                             "supported)")
            return None
        return self.table(el, tables[0], decision_id, name, requires)

    def table(self, el: Any, table: Any, decision_id: str, name: str, requires: tuple[str, ...]) -> Decision | None:
        hit_policy = (table.get("hitPolicy") or "UNIQUE").upper()
        aggregation = table.get("aggregation")
        if hit_policy not in (*_SINGLE, *_MULTIPLE):
            self.problem(table, f"hit policy {hit_policy} is not supported (supported: UNIQUE, FIRST, ANY, "
                                "RULE ORDER, COLLECT)")
            return None
        if aggregation is not None and (hit_policy != "COLLECT" or aggregation.upper() not in _AGGREGATIONS):
            self.problem(table, f"aggregation {aggregation} is only allowed with COLLECT (SUM, MIN, MAX, COUNT)")
            return None
        inputs: list[Expression] = []
        for column in _children(table, "input"):
            expressions = _children(column, "inputExpression")
            text = _text(expressions[0], "text") if expressions else ""
            compiled = self.feel(column, text, f"input expression {column.get('label') or column.get('id')!r}")
            if compiled is not None:
                inputs.append(compiled)
        outputs = [column.get("name") or "" for column in _children(table, "output")]
        if not outputs:
            self.problem(table, "a decision table needs at least one output column")
        if len(outputs) > 1 and any(not o for o in outputs):
            self.problem(table, "with several output columns each needs a name")
        rules: list[Rule] = []
        for rule in _children(table, "rule"):
            rules.append(self.rule(rule, len(inputs), len(outputs)))
        if self.problems:
            return None
        return Decision(decision_id, name, requires, tuple(inputs), tuple(outputs), tuple(rules), hit_policy,
                        aggregation.upper() if aggregation else None)

    def rule(self, rule: Any, n_inputs: int, n_outputs: int) -> Rule:
        cells_in, cells_out = _children(rule, "inputEntry"), _children(rule, "outputEntry")
        if len(cells_in) != n_inputs or len(cells_out) != n_outputs:
            self.problem(rule, f"rule has {len(cells_in)} input and {len(cells_out)} output cells; the table has "
                               f"{n_inputs} and {n_outputs} columns")
        tests: list[UnaryTests] = []
        for n, cell in enumerate(cells_in, 1):
            try:
                tests.append(compile_unary_tests(_text(cell, "text")))
            except FeelError as e:
                self.problem(rule, f"input cell {n}: unsupported unary test: {e}")
        outputs: list[Expression | None] = []
        for n, cell in enumerate(cells_out, 1):
            text = _text(cell, "text")
            outputs.append(self.feel(rule, text, f"output cell {n}") if text else None)
        return Rule(rule.get("id") or "", tuple(tests), tuple(outputs))


def _root(xml: bytes) -> Any:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as e:
        raise BpmnRejected([Problem(None, f"invalid XML: {e}", e.lineno)]) from None
    if _local(root) != "definitions" or etree.QName(root).namespace not in _DMN_NAMESPACES:
        raise BpmnRejected([Problem(None, f"not a DMN document: the root element is {root.tag!r}")])
    return root


def dmn_definitions(xml: bytes) -> tuple[str, str]:
    """A DMN file's `definitions` id and name (its identity when deployed); raise BpmnRejected."""
    root = _root(xml)
    return str(root.get("id") or ""), str(root.get("name") or root.get("id") or "")


def parse_dmn(xml: bytes) -> dict[str, Decision]:
    """Every decision of a DMN file, compiled; raise BpmnRejected naming each problem."""
    root = _root(xml)
    reader = _Reader()
    decisions: dict[str, Decision] = {}
    for el in _children(root, "decision"):
        decision = reader.decision(el)
        if decision is not None:
            decisions[decision.decision_id] = decision
    for decision in decisions.values():
        for required in decision.requires:
            if required not in decisions:
                reader.problems.append(Problem(decision.decision_id, f"required decision {required!r} is not in "
                                                                     "this file"))
    if not decisions and not reader.problems:
        reader.problems.append(Problem(None, "the DMN file holds no decision"))
    if reader.problems:
        raise BpmnRejected(reader.problems)
    return decisions


def _row(decision: Decision, rule: Rule, scope: Mapping[str, Any]) -> Any:
    values = [None if cell is None else cell.evaluate(scope) for cell in rule.outputs]
    if len(decision.outputs) == 1:
        return values[0]
    return dict(zip(decision.outputs, values, strict=False))


def _aggregate(aggregation: str, values: list[Any]) -> Any:
    if aggregation == "COUNT":
        return len(values)
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) != len(values):
        raise DecisionError(f"COLLECT {aggregation} needs numbers, got {values!r}")
    if not numbers:
        return None
    if aggregation == "SUM":
        return sum(numbers)
    return min(numbers) if aggregation == "MIN" else max(numbers)


def evaluate_decision(decisions: Mapping[str, Decision], decision_id: str, variables: Mapping[str, Any],
                      _seen: frozenset[str] = frozenset()) -> Any:
    """Evaluate a decision (its required decisions first) over the variables; raise DecisionError."""
    decision = decisions.get(decision_id)
    if decision is None:
        raise DecisionError(f"no decision with id {decision_id!r} is deployed")
    if decision_id in _seen:
        raise DecisionError(f"decision {decision_id!r} requires itself")
    scope = dict(variables)
    for required in decision.requires:
        scope[required] = evaluate_decision(decisions, required, variables, _seen | {decision_id})
    if decision.literal is not None:
        return decision.literal.evaluate(scope)
    given = [expression.evaluate(scope) for expression in decision.inputs]
    matched = [rule for rule in decision.rules
               if all(test.matches(value, scope) for test, value in zip(rule.inputs, given, strict=False))]
    if decision.hit_policy in _SINGLE:
        if not matched:
            return None
        results = [_row(decision, rule, scope) for rule in matched]
        if decision.hit_policy == "UNIQUE" and len(matched) > 1:
            raise DecisionError(f"decision {decision_id!r} has hit policy UNIQUE but rules "
                                f"{', '.join(r.rule_id for r in matched)} all match")
        if decision.hit_policy == "ANY" and any(r != results[0] for r in results):
            raise DecisionError(f"decision {decision_id!r} has hit policy ANY but the matching rules' outputs differ")
        return results[0]
    results = [_row(decision, rule, scope) for rule in matched]
    if decision.aggregation is not None:
        return _aggregate(decision.aggregation, results)
    return results


SHARED: Final = None  # the registry scope of the shipped decisions, which every tenant sees


class DecisionRegistry:
    """The decisions deployed to an engine, per tenant (None: the shipped ones, seen by every tenant); the newest
    deployment of a decision id wins within its scope, and a tenant's own decision comes before a shipped one."""

    def __init__(self) -> None:
        self._decisions: dict[str | None, dict[str, Decision]] = {SHARED: {}}
        self._lock = threading.Lock()

    def deploy(self, xml: bytes, tenant: str | None = SHARED) -> list[str]:
        """Parse and add a DMN file's decisions to a tenant's scope; their ids. Raises BpmnRejected (nothing is
        added then)."""
        parsed = parse_dmn(xml)
        with self._lock:  # copy on write: an evaluation in flight keeps the mapping it started with
            self._decisions = {**self._decisions, tenant: {**self._decisions.get(tenant, {}), **parsed}}
        return sorted(parsed)

    def visible(self, tenant: str | None = SHARED) -> Mapping[str, Decision]:
        """The decisions a tenant's instance sees: its own, then the shipped ones."""
        scopes = self._decisions
        if tenant is SHARED or tenant not in scopes:
            return scopes[SHARED]
        return ChainMap(scopes[tenant], scopes[SHARED])

    def for_tenant(self, tenant: str | None) -> TenantDecisions:
        """The registry as one tenant's instances use it (live: a later deployment is seen)."""
        return TenantDecisions(self, tenant)

    def __contains__(self, decision_id: object) -> bool:
        return decision_id in self._decisions[SHARED]

    def evaluate(self, decision_id: str, variables: Mapping[str, Any]) -> Any:
        """A shipped decision's result over the variables (see evaluate_decision)."""
        return evaluate_decision(self.visible(), decision_id, variables)


@dataclass(frozen=True)
class TenantDecisions:
    """One tenant's view of a registry: what a business-rule task of that tenant's instance evaluates."""

    registry: DecisionRegistry
    tenant: str | None

    def __contains__(self, decision_id: object) -> bool:
        return decision_id in self.registry.visible(self.tenant)

    def evaluate(self, decision_id: str, variables: Mapping[str, Any]) -> Any:
        """The decision's result over the variables: the tenant's own decision, else the shipped one."""
        return evaluate_decision(self.registry.visible(self.tenant), decision_id, variables)
