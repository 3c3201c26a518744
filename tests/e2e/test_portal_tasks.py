"""End-to-end: the task inbox in the portal (headless Chromium against a real server with demo data).

A task with a form is created over the API for alice's group; alice finds it in "My groups", claims it,
submits an invalid form (the field shows the server's message), then a valid one.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.http_server import LiveServer

expect.set_options(timeout=15_000)  # generous: CI shares 2 cores with the server

FORM: dict[str, Any] = {
    "type": "object",
    "required": ["decision"],
    "properties": {
        "decision": {"type": "string", "title": "Decision", "enum": ["approve", "reject"]},
        "amount": {"type": "number", "title": "Amount", "minimum": 0},
    },
}


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client("bob", ("supervisor",)) as client:
        yield client


def test_inbox_claim_and_complete_a_task_with_its_form(signed_in: Page, api: httpx.Client) -> None:
    page = signed_in
    case = api.get("/api/cases", params={"status": "open", "limit": 1}).json()["items"][0]
    title = f"E2E review {uuid.uuid4().hex[:8]}"
    created = api.post(f"/api/cases/{case['id']}/tasks", json={
        "title": title, "form_schema": FORM, "candidate_groups": ["caseworker"], "priority": 75,
    })
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    expect(page.get_by_role("heading", name="Tasks", level=1)).to_be_visible()
    page.get_by_role("button", name="My groups").click()
    table = page.get_by_role("table", name="Tasks in this view")
    expect(table.get_by_role("link", name=title)).to_be_visible()
    expect(table).to_contain_text(case["number"])
    table.get_by_role("link", name=title).click()

    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    page.get_by_role("button", name="Claim").click()
    expect(page.get_by_role("button", name="Hand back")).to_be_visible()
    amount = page.get_by_label(re.compile(r"^Amount\b"))
    decision = page.get_by_label(re.compile(r"^Decision\b"))
    decision.select_option("approve")
    # another task's live event must not redraw (and so reset) the half-filled form
    other = api.post(f"/api/cases/{case['id']}/tasks", json={"title": f"{title} (other)"})
    assert other.status_code == 201
    page.wait_for_timeout(1500)  # the feed delivers it and the page's 400 ms debounce runs
    expect(decision).to_have_value("approve")
    amount.fill("-5")
    page.get_by_role("button", name="Complete", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("data.amount")
    expect(amount).to_have_attribute("aria-invalid", "true")
    assert api.get(f"/api/tasks/{task_id}").json()["status"] == "claimed"

    amount.fill("120")
    page.get_by_role("button", name="Complete", exact=True).click()
    expect(page.get_by_role("heading", name="Tasks", level=1)).to_be_visible()
    deadline = time.monotonic() + 10  # the UI waited for its own write; this client reads eventually
    while (done := api.get(f"/api/tasks/{task_id}").json())["status"] != "completed" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (done["status"], done["completed_by"], done["data"]) == ("completed", "alice",
                                                                    {"decision": "approve", "amount": 120})


def test_case_page_lists_its_tasks_and_adds_an_ad_hoc_task(signed_in: Page, api: httpx.Client) -> None:
    page = signed_in
    case = api.get("/api/cases", params={"status": "open", "limit": 1, "sort": "number"}).json()["items"][0]
    page.goto(f"/#/cases/{case['id']}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(case["number"])
    tasks = page.get_by_role("region", name="Tasks")
    title = f"E2E call back {uuid.uuid4().hex[:8]}"
    form = tasks.get_by_role("form", name="Add a task")
    form.get_by_label("Title").fill(title)
    form.get_by_label("Candidate groups").fill("team a")  # whitespace: refused, naming the field
    form.get_by_role("button", name="Add task").click()
    expect(tasks.get_by_role("alert")).to_contain_text("candidate_groups[0]")
    form.get_by_label("Candidate groups").fill("")
    form.get_by_label("Assignee").fill("carol")
    form.get_by_role("button", name="Add task").click()
    expect(tasks.get_by_role("link", name=title)).to_be_visible()
    tasks.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(case["number"]))).to_be_visible()
    items = api.get("/api/tasks", params={"view": "all", "case_id": case["id"]}).json()["items"]
    mine = [t for t in items if t["title"] == title]
    assert [(t["assignee"], t["created_by"], t["kind"]) for t in mine] == [("carol", "alice", "ad-hoc")]
