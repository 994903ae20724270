"""robots.txt: rules, the cache, Google's rules for errors, one fetch per origin."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from monitor.fetch import Fetcher
from monitor.fetch.robots import RobotsCache, origin_of
from tests.sites.loopback import LoopbackSite

UA = "statement-monitor/1.0 (+https://example.org)"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(user_agent=UA, allow_private_networks=True) as running:
        yield running


def robots_hits(site: LoopbackSite) -> int:
    return len(site.hits("/robots.txt"))


async def test_rules_are_obeyed_for_our_user_agent(site: LoopbackSite, fetcher: Fetcher) -> None:
    site.put(
        "/robots.txt",
        "User-agent: *\nDisallow: /private/\n\n"
        "User-agent: statement-monitor\nDisallow: /news/drafts/\n",
        content_type="text/plain",
    )
    robots = RobotsCache(fetcher, user_agent=UA)
    assert await robots.allowed(site.url("/feed.xml"))
    assert not await robots.allowed(site.url("/news/drafts/1.html"))
    # The group for our product token replaces the * group.
    assert await robots.allowed(site.url("/private/x"))
    assert not await robots.allowed(site.url("/private/x"), "SomeOtherBot/2.0")
    assert robots_hits(site) == 1


async def test_cached_until_the_ttl_then_fetched_again(
    site: LoopbackSite, fetcher: Fetcher
) -> None:
    site.put("/robots.txt", "User-agent: *\nDisallow: /\n", content_type="text/plain")
    clock = Clock()
    robots = RobotsCache(fetcher, user_agent=UA, ttl=100, clock=clock)
    url = site.url("/feed.xml")
    assert robots.cached(url) is None  # nothing known: the caller must await
    assert not await robots.allowed(url, remember=True)
    site.put("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    clock.now += 99
    assert robots.cached(url) is False  # still the cached copy, no I/O
    assert robots_hits(site) == 1
    clock.now += 2
    assert robots.cached(url) is None
    assert await robots.allowed(url, remember=True)
    assert robots_hits(site) == 2


async def test_concurrent_questions_share_one_fetch(site: LoopbackSite, fetcher: Fetcher) -> None:
    site.put("/robots.txt", "User-agent: *\nDisallow: /x\n", content_type="text/plain")
    robots = RobotsCache(fetcher, user_agent=UA)
    answers = await asyncio.gather(*(robots.allowed(site.url(f"/p{i}")) for i in range(20)))
    assert all(answers)
    assert robots_hits(site) == 1


@pytest.mark.parametrize("status", [404, 403, 401, 410])
async def test_a_4xx_means_allow_all(site: LoopbackSite, fetcher: Fetcher, status: int) -> None:
    site.put("/robots.txt", "User-agent: *\nDisallow: /\n", status=status)
    robots = RobotsCache(fetcher, user_agent=UA)
    assert await robots.allowed(site.url("/anything"))
    verdict = await robots.verdict(origin_of(site.url("/")) or "")
    assert verdict.allow_all and verdict.good


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_a_5xx_or_429_disallows_for_a_short_while(
    site: LoopbackSite, fetcher: Fetcher, status: int
) -> None:
    site.put("/robots.txt", "oops", status=status)
    clock = Clock()
    robots = RobotsCache(fetcher, user_agent=UA, ttl=86400, error_ttl=60, clock=clock)
    assert not await robots.allowed(site.url("/feed.xml"))
    clock.now += 61  # the short while is over: asked again
    site.put("/robots.txt", "", content_type="text/plain")
    assert await robots.allowed(site.url("/feed.xml"))
    assert robots_hits(site) == 2


async def test_a_server_error_keeps_the_last_good_copy(
    site: LoopbackSite, fetcher: Fetcher
) -> None:
    site.put("/robots.txt", "User-agent: *\nDisallow: /private\n", content_type="text/plain")
    clock = Clock()
    robots = RobotsCache(fetcher, user_agent=UA, ttl=100, error_ttl=10, clock=clock)
    assert await robots.allowed(site.url("/feed.xml"))
    clock.now += 101
    site.put("/robots.txt", "down", status=503)
    assert await robots.allowed(site.url("/feed.xml"))  # the good copy still rules
    assert not await robots.allowed(site.url("/private/1"))


async def test_an_unreachable_server_is_not_a_robots_verdict(fetcher: Fetcher) -> None:
    from tests.conftest import free_port

    robots = RobotsCache(fetcher, user_agent=UA, timeout=2)
    # Nothing listens: the feed request will fail for the same reason, and say so.
    assert await robots.allowed(f"http://127.0.0.1:{free_port()}/feed.xml")


def test_origin_of() -> None:
    assert origin_of("HTTPS://Gov.Example:8443/a/b?c") == "https://gov.example:8443"
    assert origin_of("http://user:pw@host/x") == "http://host"
    assert origin_of("mailto:x@y") is None
    assert origin_of("/relative") is None
