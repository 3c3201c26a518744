"""Browser fixtures: one real API server with demo data and one headless Chromium per module, a fresh page per test.

Chromium is Debian's (infra/browser.py installs it when missing); Playwright drives it through its own driver.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from casestream.demo import load_demo
from casestream.settings import Settings
from infra.browser import CHROMIUM_ARGS, ensure_chromium
from tests.http_server import LiveServer, live_server

if TYPE_CHECKING:  # playwright is imported where used
    from playwright.sync_api import Browser, ConsoleMessage, Page

DEMO_CASES = 30
PASSWORD = "casestream"  # the demo users' password in the users file `./run` creates


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A uvicorn-served platform on loopback, loaded with the demo data and caught up."""
    with live_server(Settings(data_dir=tmp_path_factory.mktemp("e2e"))) as live:
        load_demo(live.platform.bus, cases=DEMO_CASES)
        live.platform.runner.wait(live.platform.store.max_position(), 30)
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=ensure_chromium(), args=list(CHROMIUM_ARGS), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


_EXPECTED_4XX = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d ")


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    """A fresh browser context (own sessionStorage) on the portal; fails the test on uncaught page errors."""
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    # console errors too: a Content-Security-Policy violation (api/security_headers.py) is reported only there.
    # The browser also logs every 4xx reply as an error; the portal expects some (401 before sign-in, a refused
    # command), so those alone are not failures
    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error" and not _EXPECTED_4XX.match(msg.text):
            errors.append(f"console: {msg.text}")

    tab.on("console", on_console)
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def _sign_in(page: Page, user: str = "alice", password: str = PASSWORD) -> None:
    """Sign in through the login form and wait for the case list."""
    from playwright.sync_api import expect

    page.goto("/")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Cases", level=1)).to_be_visible()


@pytest.fixture
def signed_in(page: Page) -> Page:
    _sign_in(page)
    return page
