"""docs/authorization.md's role x action x case state table is exactly what the policies decide."""

from __future__ import annotations

from adapters.rego_policy import RegoPolicy
from casestream.policy_setup import POLICY_DIR
from scripts.policy_table import BEGIN, DOC, END, markdown


def test_committed_table_equals_the_policies_answers() -> None:
    document = DOC.read_text(encoding="utf-8")
    committed = document.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    generated = markdown(RegoPolicy(POLICY_DIR)).strip()
    assert committed == generated, "run: python scripts/policy_table.py --write"
