"""`render: browser` in a real headless Chromium (Debian's `chromium`), against a loopback site.

The site (tests/sites/jssite.py) writes its news list with JavaScript, fetches
a statement's body from a JSON endpoint, checks for a cookie set by a script
and reloads, tries to reach addresses it must not, and keeps polling forever.

Where Chromium or Playwright is missing these tests skip with the reason; in
CI (`CI=true`) they fail instead, so the browser path can never go untested.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor import metrics
from monitor.extract.article import extract_article
from monitor.fetch.browser import BrowserFetcher
from monitor.fetch.guard import AddressGuard
from monitor.fetch.hosts import HostLimits, HostSlots
from tests.conftest import EventReader, make_config, running
from tests.sites.jssite import BODY, JsSite

USER_AGENT = "statement-monitor-test/1 (+https://example.org/bot)"


def _missing() -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install '.[browser]')"
    if shutil.which("chromium") is None:
        return "no `chromium` on PATH (apt-get install chromium)"
    return None


_REASON = _missing()
if _REASON is not None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the browser tests must run in CI: {_REASON}", pytrace=False)
    pytest.skip(_REASON, allow_module_level=True)


@pytest.fixture
async def jssite() -> AsyncIterator[JsSite]:
    async with JsSite() as site:
        yield site


def browser_for(
    site: JsSite, *, timeout: float = 20.0, restart_after: int = 100, delay: float = 0.0
) -> BrowserFetcher:
    """A browser fetcher that trusts the site's origin, as the service trusts a source's."""
    return BrowserFetcher(
        guard=AddressGuard([site.url("/")]),
        hosts=HostSlots(HostLimits(connections=2, delay=delay)),
        user_agent=USER_AGENT,
        timeout=timeout,
        settle=0.3,
        restart_after=restart_after,
    )


async def test_a_news_list_written_by_javascript_is_in_the_dom(jssite: JsSite) -> None:
    from monitor.sources.listing import parse_listing

    browser = browser_for(jssite)
    try:
        result = await browser.fetch(jssite.url("/news/"), source_id="js", max_bytes=1_000_000)
    finally:
        await browser.close()
    assert result.error is None, result.error
    assert result.status == 200 and result.content_type == "text/html; charset=utf-8"
    html = result.body.decode()
    assert 'class="news-list"' in html
    parsed = parse_listing(
        result.body, source_id="js", feed_url=result.final_url, content_type=result.content_type
    )  # the same heuristic as plain listing pages, without a selector
    assert [c.url for c in parsed.entries] == [
        jssite.url(f"/news/{n}.html") for n in (1, 2, 3)
    ]
    # every request carried the configured user agent
    assert {r.headers.get("User-Agent") for r in jssite.requests} == {USER_AGENT}


async def test_a_body_fetched_from_json_is_extracted(jssite: JsSite) -> None:
    browser = browser_for(jssite)
    try:
        result = await browser.fetch(jssite.url("/news/4.html"), source_id="js", max_bytes=10**6)
    finally:
        await browser.close()
    assert result.error is None, result.error
    assert jssite.hits("/api/4.json")
    article = extract_article(result.body, url=result.final_url)
    assert article.title == "Statement number 4 on the resumption of talks"
    assert article.text.split("\n\n") == list(BODY)


async def test_a_cookie_check_that_reloads_the_page_is_passed(jssite: JsSite) -> None:
    browser = browser_for(jssite)
    try:
        result = await browser.fetch(jssite.url("/guarded/"), source_id="js", max_bytes=10**6)
    finally:
        await browser.close()
    assert result.error is None, result.error
    loads = jssite.hits("/guarded/")
    assert len(loads) == 2
    assert "js_check=passed" not in loads[0].headers.get("Cookie", "")
    assert "js_check=passed" in loads[1].headers.get("Cookie", "")
    article = extract_article(result.body, url=result.final_url)
    assert article.text.split("\n\n") == list(BODY)


async def test_a_script_reaching_forbidden_addresses_is_refused_and_counted(
    jssite: JsSite,
) -> None:
    # Another loopback server: the page's origin is trusted (it is the source), this
    # one is not, so the guard must refuse it even though both are on 127.0.0.1.
    async with JsSite() as other:
        targets = [other.url("/secret"), "http://169.254.169.254/latest/meta-data/"]
        before = {
            reason: metrics.FETCH_REFUSED.value(source_id="js-reach", reason=reason)
            for reason in ("loopback", "metadata")
        }
        browser = browser_for(jssite)
        try:
            result = await browser.fetch(
                jssite.url("/reach?target=" + ",".join(targets)),
                source_id="js-reach",
                max_bytes=10**6,
            )
        finally:
            await browser.close()
        assert other.requests == []  # never reached
    assert result.error is None, result.error
    after = {
        reason: metrics.FETCH_REFUSED.value(source_id="js-reach", reason=reason)
        for reason in before
    }
    assert after["loopback"] - before["loopback"] >= 1
    assert after["metadata"] - before["metadata"] >= 1
    assert 'data-seen="targets: blocked blocked"' in result.body.decode()  # both fetch()es failed
    assert jssite.hits("/api/7.json")  # the page's own origin was served


async def test_a_page_that_never_settles_times_out(jssite: JsSite) -> None:
    browser = browser_for(jssite, timeout=3.0)
    started = time.monotonic()
    try:
        result = await browser.fetch(jssite.url("/busy.html"), source_id="js", max_bytes=10**6)
        # the browser still serves the next page
        after = await browser.fetch(jssite.url("/news/5.html"), source_id="js", max_bytes=10**6)
    finally:
        await browser.close()
    assert result.error is not None and result.error.kind == "timeout"
    assert result.error.retriable
    assert time.monotonic() - started < 60
    assert after.error is None and b"Statement number 5" in after.body
    assert browser.launches == 1


async def test_popups_and_downloads_are_blocked(jssite: JsSite) -> None:
    browser = browser_for(jssite)
    try:
        result = await browser.fetch(jssite.url("/popup.html"), source_id="js", max_bytes=10**6)
    finally:
        await browser.close()
    assert result.error is None, result.error
    assert BODY[0] in result.body.decode()
    assert not jssite.hits("/api/1.json")  # the popup's page never ran its script


async def test_the_browser_restarts_after_n_pages(jssite: JsSite) -> None:
    browser = browser_for(jssite, restart_after=2)
    before = metrics.BROWSER_RESTARTS.labels(reason="pages")._value.get()
    try:
        results = [
            await browser.fetch(jssite.url(f"/news/{n}.html"), source_id="js", max_bytes=10**6)
            for n in (1, 2, 3)
        ]
    finally:
        await browser.close()
    assert all(r.error is None for r in results)
    assert browser.launches == 2
    assert metrics.BROWSER_RESTARTS.labels(reason="pages")._value.get() - before == 1


async def test_a_crashed_browser_is_replaced(jssite: JsSite) -> None:
    browser = browser_for(jssite)
    try:
        first = await browser.fetch(jssite.url("/news/1.html"), source_id="js", max_bytes=10**6)
        assert browser._instance is not None
        await browser._instance.browser.close()  # as if Chromium died
        second = await browser.fetch(jssite.url("/news/2.html"), source_id="js", max_bytes=10**6)
    finally:
        await browser.close()
    assert first.error is None and second.error is None
    assert browser.launches == 2


async def test_page_loads_take_the_hosts_slot(jssite: JsSite) -> None:
    browser = browser_for(jssite, delay=1.0)
    try:
        await asyncio.gather(
            *(
                browser.fetch(jssite.url(f"/news/{n}.html"), source_id="js", max_bytes=10**6)
                for n in (1, 2)
            )
        )
    finally:
        await browser.close()
    # Subrequests are the page's own; the page loads are spaced by the host's delay.
    assert len(jssite.hits("/news/1.html")) == 1 and len(jssite.hits("/news/2.html")) == 1
    starts = sorted(jssite.hits(f"/news/{n}.html")[0].at for n in (1, 2))
    assert starts[1] - starts[0] >= 0.9


async def test_robots_txt_is_asked_for_the_page(jssite: JsSite) -> None:
    from monitor.fetch import Fetcher
    from monitor.fetch.robots import RobotsCache
    from monitor.models import Source

    source = Source(
        id="js", name="js", url=jssite.url("/news/"), interval=60, timeout=10, backfill=False,
        topic="t", render="browser",
    )
    browser = browser_for(jssite)
    async with Fetcher(user_agent=USER_AGENT, trusted_origins=[source.url]) as fetcher:
        robots = RobotsCache(fetcher, user_agent=USER_AGENT, browser=browser)
        try:
            refused = await robots.fetch_page(source, jssite.url("/private/1"), max_bytes=10**6)
            allowed = await robots.fetch_page(source, jssite.url("/news/6.html"), max_bytes=10**6)
        finally:
            await browser.close()
    assert refused is None and not jssite.hits("/private/1")
    assert allowed is not None and allowed.error is None
    assert jssite.hits("/api/6.json")  # rendered: the body came by fetch()


@pytest.mark.integration
async def test_a_browser_source_end_to_end(
    tmp_path: Path, jssite: JsSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    """A listing written by JavaScript, statements whose bodies come by fetch(), and one
    page that never settles: published with the listing's title and the reason."""
    jssite.news = [1, 2, 9]
    config = make_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        sources=[
            {
                "id": "js-news",
                "url": jssite.url("/news/"),
                "kind": "listing",
                "render": "browser",
                "backfill": True,
            }
        ],
        browser={"timeout": "8s", "settle": "300ms"},
        extract={"page_attempts": 1, "workers": 1},
        fetch={"user_agent": "statement-monitor-test/e2e"},
    )
    async with running(config):
        received = await events.read(3, timeout=90, settle=1.0)
    by_url = {e["data"]["url"]: e["data"] for e in received}
    assert sorted(by_url) == sorted(jssite.url(f"/news/{n}.html") for n in (1, 2, 9))
    for n in (1, 2):
        data = by_url[jssite.url(f"/news/{n}.html")]
        assert data["title"] == f"Statement number {n} on the resumption of talks"
        assert data["text"].split("\n\n") == list(BODY)
        assert data["extraction_error"] is None and data["media_type"] == "text/html"
    busy = by_url[jssite.url("/news/9.html")]
    assert busy["extraction_error"].startswith("fetch_timeout: ")
    assert busy["title"] == "Statement number 9 on the resumption of talks"  # the link's text
    assert {r.headers.get("User-Agent") for r in jssite.requests if r.path != "/robots.txt"} == {
        "statement-monitor-test/e2e"
    }


async def test_monitor_extract_render_browser(jssite: JsSite) -> None:
    import io
    import json

    from monitor.cli_extract import extract_inputs

    out = io.StringIO()
    failures = await extract_inputs(
        (jssite.url("/news/8.html"),), url=None, timeout=20, out=out, render="browser"
    )
    [line] = [json.loads(x) for x in out.getvalue().splitlines()]
    assert failures == 0, line
    assert line["title"] == "Statement number 8 on the resumption of talks"
    assert line["text"].split("\n\n") == list(BODY)
