"""`opa test` on policies/ with the OPA binary infra builds: every Rego policy test passes, and there are many."""

from __future__ import annotations

import re

from infra.opa import REPO_POLICY_DIR, opa_test

# policies/*_test.rego hold 31 tests today; fewer means a test file stopped loading
MIN_TESTS = 31


def test_every_policy_test_passes() -> None:
    result = opa_test(REPO_POLICY_DIR)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summary = re.search(r"^PASS: (\d+)/(\d+)$", result.stdout, re.MULTILINE)
    assert summary is not None, output
    passed, total = int(summary.group(1)), int(summary.group(2))
    assert passed == total >= MIN_TESTS, output
    assert "FAIL" not in result.stdout
