"""Politeness end to end (robots.txt, cache floors, per-host limits) and its small rules."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from monitor import metrics
from monitor.fetch import HostLimits, parse_retry_after
from monitor.fetch.client import parse_max_age
from monitor.models import Source
from monitor.pipeline import MAX_CACHE_FLOOR, _cache_floor
from monitor.scheduler import Scheduler
from tests.conftest import EventReader, counter, make_config, running, wait_until
from tests.sites.feeds import Item, page, rss
from tests.sites.loopback import LoopbackSite

RSS = "application/rss+xml; charset=utf-8"
WHEN = dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.UTC)


def feed_with_one_item(site: LoopbackSite, path: str = "/feed.xml") -> str:
    link = site.put(
        "/news/1.html",
        page("Statement one", ["The ministry announced a measure today after a long meeting."]),
    )
    return site.put(path, rss([Item("Statement one", link, guid="g-1", published=WHEN)]),
                    content_type=RSS)  # fmt: skip


# --- end to end --------------------------------------------------------------------------------


@pytest.mark.integration
async def test_a_feed_that_robots_txt_disallows_is_never_fetched(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str
) -> None:
    site.put("/robots.txt", "User-agent: *\nDisallow: /feeds/\n", content_type="text/plain")
    feed_with_one_item(site, "/feeds/closed.xml")
    feed_with_one_item(site, "/open.xml")
    sources = [
        {"id": "closed", "url": site.url("/feeds/closed.xml"), "interval": 0.2},
        {"id": "open", "url": site.url("/open.xml"), "interval": 0.2},
    ]
    config = make_config(tmp_path, bootstrap=kafka_bootstrap, topic=topic, sources=sources)
    before = counter(metrics.ROBOTS_DISALLOWED, source_id="closed", kind="feed")
    with capture_logs() as logs:
        async with running(config):
            await wait_until(
                lambda: counter(metrics.ROBOTS_DISALLOWED, source_id="closed", kind="feed")
                >= before + 2
                and len(site.hits("/open.xml")) >= 2
            )
    assert site.hits("/feeds/closed.xml") == []
    assert len(site.hits("/robots.txt")) == 1  # one origin, one fetch, cached after
    assert counter(metrics.POLLS, source_id="closed", outcome="robots") >= 2
    assert any(
        e["event"] == "robots_disallowed" and e.get("source_id") == "closed" for e in logs
    )


@pytest.mark.integration
async def test_a_page_that_robots_txt_disallows_falls_back_to_the_feed_text(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    site.put("/robots.txt", "User-agent: statement-monitor\nDisallow: /news/\n",
             content_type="text/plain")  # fmt: skip
    link = site.put("/news/1.html", page("Statement one", ["A page we may not read."]))
    item = Item("Statement one", link, guid="g-1", published=WHEN, description="Feed text.")
    site.put("/feed.xml", rss([item]), content_type=RSS)
    sources = [{"id": "pages", "url": site.url("/feed.xml"), "backfill": True}]
    config = make_config(tmp_path, bootstrap=kafka_bootstrap, topic=topic, sources=sources)
    async with running(config):
        received = await events.read(1)
    assert len(received) == 1
    assert received[0]["data"]["extraction_error"] == "robots: disallowed"
    assert received[0]["data"]["text"] == "Feed text."
    assert site.hits("/news/1.html") == []
    assert counter(metrics.ROBOTS_DISALLOWED, source_id="pages", kind="page") >= 1


@pytest.mark.integration
async def test_robots_false_is_logged_at_start_and_not_asked(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str
) -> None:
    site.put("/robots.txt", "User-agent: *\nDisallow: /\n", content_type="text/plain")
    feed_with_one_item(site)
    sources = [{"id": "ours", "url": site.url("/feed.xml"), "robots": False,
                "robots_reason": "our own ministry's feed; robots.txt is for search engines"}]  # fmt: skip
    config = make_config(tmp_path, bootstrap=kafka_bootstrap, topic=topic, sources=sources)
    with capture_logs() as logs:
        async with running(config):
            await wait_until(lambda: len(site.hits("/feed.xml")) >= 1)
    assert site.hits("/robots.txt") == []
    ignored = [e for e in logs if e["event"] == "robots_txt_ignored"]
    assert ignored and ignored[0]["source_id"] == "ours"
    assert "search engines" in ignored[0]["reason"]


@pytest.mark.integration
async def test_max_age_is_a_floor_on_the_interval_unless_the_source_says_otherwise(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str
) -> None:
    for path in ("/cached.xml", "/ignored.xml"):
        site.put(path, rss([Item("One", site.url("/news/1.html"), guid="g-1", published=WHEN)]),
                 content_type=RSS, headers={"Cache-Control": "public, max-age=2"})  # fmt: skip
    sources = [
        {"id": "cached", "url": site.url("/cached.xml"), "interval": 0.2},
        {"id": "ignored", "url": site.url("/ignored.xml"), "interval": 0.2,
         "respect_cache_headers": False},
    ]  # fmt: skip
    config = make_config(tmp_path, bootstrap=kafka_bootstrap, topic=topic, sources=sources)
    async with running(config):
        await asyncio.sleep(4.5)
    cached = site.hits("/cached.xml")
    assert 2 <= len(cached) <= 3, len(cached)
    assert len(site.hits("/ignored.xml")) >= 8


@pytest.mark.integration
async def test_per_host_limits_reach_the_fetcher(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str
) -> None:
    feed_with_one_item(site)
    config = make_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        sources=[{"id": "a", "url": site.url("/feed.xml")}],
        fetch={
            "per_host_connections": 3,
            "per_host_delay": "250ms",
            "hosts": {"Slow.Example": {"connections": 1, "delay": "2s"}},
        },
    )
    async with running(config) as service:
        hosts = service.fetcher.hosts
        assert hosts.limits("127.0.0.1") == HostLimits(connections=3, delay=0.25)
        assert hosts.limits("slow.example") == HostLimits(connections=1, delay=2.0)


# --- the rules ---------------------------------------------------------------------------------


def test_max_age_from_cache_control_and_expires() -> None:
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert parse_max_age("public, max-age=600", None) == 600
    assert parse_max_age('max-age="60"', None) == 60
    assert parse_max_age("no-cache", "Wed, 01 Jan 2025 01:00:00 GMT", now=now) == 0
    assert parse_max_age("max-age=bogus", None) == 0
    # max-age wins over Expires; Expires counts from Date when there is one.
    assert parse_max_age("max-age=5", "Wed, 01 Jan 2025 01:00:00 GMT", now=now) == 5
    assert parse_max_age(None, "Wed, 01 Jan 2025 01:00:00 GMT", now=now) == 3600
    assert parse_max_age("public", "Wed, 01 Jan 2025 01:00:00 GMT",
                         "Wed, 01 Jan 2025 00:30:00 GMT", now=now) == 1800  # fmt: skip
    assert parse_max_age(None, "0", now=now) == 0  # an invalid Expires: already stale
    assert parse_max_age(None, "Tue, 31 Dec 2024 00:00:00 GMT", now=now) == 0
    assert parse_max_age("public", None) is None


def test_the_cache_floor_is_the_larger_hint_capped_and_optional() -> None:
    source = Source(id="s", name="s", url="http://x/", interval=60, timeout=1, backfill=False,
                    topic="t")  # fmt: skip
    assert _cache_floor(source, None, None) is None
    assert _cache_floor(source, 600, 1800) == 1800
    assert _cache_floor(source, 10**9, None) == MAX_CACHE_FLOOR
    off = Source(id="s", name="s", url="http://x/", interval=60, timeout=1, backfill=False,
                 topic="t", respect_cache_headers=False)  # fmt: skip
    assert _cache_floor(off, 600, 1800) is None


def test_retry_after_seconds_and_dates() -> None:
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after("Wed, 01 Jan 2025 00:05:00 GMT", now) == 300
    assert parse_retry_after("Tue, 31 Dec 2024 00:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None


def test_retry_after_is_a_floor_whatever_the_backoff() -> None:
    clock = [1000.0]
    source = Source(id="r", name="r", url="http://x/", interval=10, timeout=1, backfill=False,
                    topic="t")  # fmt: skip
    scheduler = Scheduler([source], jitter=0, initial_spread=0, clock=lambda: clock[0],
                          max_backoff=60, rng=random.Random(1))  # fmt: skip
    assert scheduler.done("r", ok=False, retry_after=300) == 300  # over the backoff of 20
    assert scheduler.done("r", ok=False, retry_after=1) == 40  # the backoff, when longer
    assert scheduler.done("r", ok=True, retry_after=None) == 10


@pytest.mark.integration
async def test_an_adaptive_interval_follows_the_publication_rate(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str
) -> None:
    """A busy feed is polled near `min`, a dormant one at `max`; a fixed interval never moves."""
    now = dt.datetime.now(dt.UTC)
    busy = [Item(f"B{n}", site.url(f"/b/{n}"), guid=f"b{n}", published=now - dt.timedelta(seconds=n))
            for n in range(10)]  # fmt: skip
    dormant = [Item(f"D{n}", site.url(f"/d/{n}"), guid=f"d{n}",
                    published=now - dt.timedelta(days=30 + n)) for n in range(10)]  # fmt: skip
    site.put("/busy.xml", rss(busy), content_type=RSS)
    site.put("/dormant.xml", rss(dormant), content_type=RSS)
    site.put("/fixed.xml", rss(dormant), content_type=RSS)
    adaptive = {"min": 0.3, "max": 60}
    sources = [
        {"id": "busy", "url": site.url("/busy.xml"), "interval": adaptive},
        {"id": "dormant", "url": site.url("/dormant.xml"), "interval": adaptive},
        {"id": "fixed", "url": site.url("/fixed.xml"), "interval": 4},
    ]
    config = make_config(tmp_path, bootstrap=kafka_bootstrap, topic=topic, sources=sources)

    def interval(source_id: str) -> float:
        return counter(metrics.SOURCE_EFFECTIVE_INTERVAL, source_id=source_id)

    async with running(config):
        await wait_until(lambda: site.hits("/busy.xml") and site.hits("/dormant.xml"))
        await wait_until(lambda: interval("busy") < 2 and interval("dormant") == 60)
    # 1 s between items, polled within seconds of the newest: half the gap, at least `min`.
    assert 0.3 <= interval("busy") < 2  # it starts at sqrt(min * max), about 4.2 s
    assert interval("dormant") == 60  # a month of silence: the slowest allowed
    assert interval("fixed") == 4
