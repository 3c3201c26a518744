"""How the Zeebe adapter maps pyzeebe jobs onto our Job (tenant, headers, keys) and spaces retries."""

from __future__ import annotations

from typing import Any

import pytest
from pyzeebe import Job as ZeebeJob

from adapters.zeebe_engine import ZeebeConfig, backoff_ms, to_job


def zeebe_job(variables: dict[str, Any], tenant_id: str | None = "<default>", retries: int = 3) -> ZeebeJob:
    return ZeebeJob(
        key=2251799813685300, type="case.assign", process_instance_key=2251799813685290,
        bpmn_process_id="claim-case", process_definition_version=2, process_definition_key=2251799813685250,
        element_id="Task_assign", element_instance_key=2251799813685299, custom_headers={"assignee": "carol"},
        worker="casestream", retries=retries, deadline=0, variables=variables, tenant_id=tenant_id,
    )


def test_a_zeebe_job_becomes_our_job_with_string_keys_headers_and_retries():
    job = to_job(zeebe_job({"caseId": "c-1", "tenant": "acme"}, retries=2), "fallback")
    assert (job.key, job.process_instance_key, job.type, job.element_id, job.process_id) == (
        "2251799813685300", "2251799813685290", "case.assign", "Task_assign", "claim-case"
    )
    assert (job.headers, job.retries, job.case_id, job.tenant) == ({"assignee": "carol"}, 2, "c-1", "acme")


@pytest.mark.parametrize(
    ("variables", "zeebe_tenant", "expected"),
    [({"tenant": "globex"}, "acme", "acme"),  # Zeebe's own tenant id wins
     ({"tenant": "globex"}, "<default>", "globex"),  # no multi-tenancy: the instance's variable
     ({"tenant": "globex"}, None, "globex"),
     ({}, "<default>", "fallback"),  # neither: the adapter's configured tenant
     ({"tenant": ""}, "<default>", "fallback"), ({"tenant": 7}, "", "fallback")],
)
def test_the_tenant_comes_from_zeebe_then_the_variable_then_the_configuration(variables, zeebe_tenant, expected):
    assert to_job(zeebe_job(variables, zeebe_tenant), "fallback").tenant == expected


def test_back_off_doubles_as_retries_run_out_and_is_capped():
    config = ZeebeConfig(retry_backoff_ms=100, max_backoff_ms=350)
    assert [backoff_ms(left, config) for left in (2, 1, 0)] == [200, 350, 350]
    assert [backoff_ms(left, ZeebeConfig(retry_backoff_ms=100)) for left in (5, 2, 1, 0)] == [100, 200, 400, 800]
