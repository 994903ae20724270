"""The status page at `/` in a real headless browser: Debian's chromium, driven by Playwright.

The page is served by the service's own HTTP server (monitor/server.py) from a
status board that holds a hostile title. The browser must render the tables and
show the title as text: no script runs, no element comes from the title.
Skipped with a reason when chromium or Playwright is missing; a failure when
CI=true (CI installs both).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

from monitor.server import HealthServer
from monitor.status import StatusBoard
from tests.test_status import HOSTILE, _record, board_with_every_state

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def _chromium() -> str:
    executable = shutil.which("chromium")
    missing = None
    if executable is None:
        missing = "Debian's chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed (the test extra has it)"
    if missing is not None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{missing}; CI must run the browser tests", pytrace=False)
        pytest.skip(missing)
    assert executable is not None
    return executable


@pytest.fixture
async def status_server() -> AsyncIterator[tuple[str, StatusBoard]]:
    board = board_with_every_state([1_700_000_000.0])
    board.acked([_record(1, "bank", "An ordinary statement", quotes=2), _record(2, "army", HOSTILE)])
    server = HealthServer("127.0.0.1", 0, {}, status=board.snapshot)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}/", board
    finally:
        await server.stop()


async def test_the_page_renders_in_chromium_and_a_hostile_title_is_text(
    status_server: tuple[str, StatusBoard],
) -> None:
    executable = _chromium()
    from playwright.async_api import async_playwright

    url, _ = status_server
    dialogs: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(java_script_enabled=True)  # on, to prove nothing runs
            page.on("dialog", lambda dialog: dialogs.append(dialog.message))
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            response = await page.goto(url)
            assert response is not None and response.status == 200
            rows: list[list[str]] = await page.eval_on_selector_all(
                "#sources tbody tr",
                "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")
            statements: list[list[str]] = await page.eval_on_selector_all(
                "#statements tbody tr",
                "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")
            pwned: Any = await page.evaluate("window.__pwned")
            images = await page.locator("img").count()
            scripts = await page.locator("script").count()
            colour = await page.eval_on_selector(
                "#sources tr.failing td.state", "c => getComputedStyle(c).backgroundColor")
        finally:
            await browser.close()
    assert [r[0] for r in rows] == ["army", "un-news", "bank"]
    assert [r[2] for r in rows] == ["failing", "never reached", "healthy"]
    assert rows[0][4] == "dns" and rows[1][4] == "http_5xx"
    assert colour == "rgb(242, 222, 222)"  # the failing colour: the inline style applied
    assert statements[0] == [HOSTILE, "army", "published", statements[0][3], "0"]
    assert statements[1][0] == "An ordinary statement" and statements[1][4] == "2"
    assert pwned is None and images == 0 and scripts == 0 and not dialogs
    assert requests == [url]  # no external assets, not even a favicon from the page
