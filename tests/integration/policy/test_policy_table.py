"""The role x action x case state table of the README and docs/authorization.md is exactly what the policies
decide."""

from __future__ import annotations

import pytest

from adapters.rego_policy import RegoPolicy
from casestream.policy_setup import POLICY_DIR
from scripts.policy_table import BEGIN, DOCS, END, markdown


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_committed_table_equals_the_policies_answers(doc: object) -> None:
    document = doc.read_text(encoding="utf-8")  # type: ignore[attr-defined]
    assert BEGIN in document and END in document, f"{doc} has no generated table"
    committed = document.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    generated = markdown(RegoPolicy(POLICY_DIR)).strip()
    assert committed == generated, "run: python scripts/policy_table.py --write"
