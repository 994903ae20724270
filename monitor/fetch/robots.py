"""robots.txt: fetched once per origin through the Fetcher, parsed by protego, cached.

`RobotsCache.allowed(url)` says whether the configured user agent may fetch
`url`. The first question about an origin fetches `/robots.txt` (concurrent
questions share that one request); later questions are answered from memory
until the entry expires. `cached(url)` is the synchronous fast path: the
verdict without any I/O, or None when the origin must be (re)fetched. The
poller uses it first, so a poll of a cached origin costs a dict lookup.

What an answer means, after Google's rules for robots.txt
(developers.google.com/search/docs/crawling-indexing/robots/robots_txt):

    robots.txt answer                     verdict                      kept for
    2xx                                   the rules in it (protego)    `ttl` (24 h)
    4xx other than 429 (404, 401, 403…)   allow all                    `ttl`
    429, 5xx                              disallow all                 `error_ttl` (10 min)
    no response (timeout, refused, DNS…)  allow all (see below)        `error_ttl`
    over 500 KiB                          disallow all                 `error_ttl`

A 429 or 5xx means the server is struggling: like Google we stay away
(disallow all) for a short while, but if a good copy was fetched before, it
is kept instead, as Google keeps its last cached copy. A robots.txt that
cannot be reached at all is the one place we depart from Google (which
disallows): the only request a disallow would save is the source's own feed
request to the same unreachable server, which fails the same way and is
backed off by the scheduler, and the poll then reports the real cause
(`connect`, `timeout`) rather than a robots verdict. A previous good copy is
kept in that case too. Google reads the first 500 KiB of a larger file;
the fetcher keeps nothing of a body over its cap, so we stay away instead.

Memory: one small entry per origin, capped at `max_origins`; expired entries
go first, then the oldest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import structlog
from protego import Protego

from monitor import metrics
from monitor.fetch.client import Fetcher
from monitor.models import FetchResult, Source

if TYPE_CHECKING:
    from monitor.fetch.browser import BrowserFetcher

__all__ = ["ROBOTS_ACCEPT", "ROBOTS_MAX_BYTES", "RobotsCache", "RobotsVerdict", "origin_of"]

log = structlog.get_logger(__name__)

ROBOTS_MAX_BYTES: Final = 500 * 1024  # Google reads the first 500 KiB
ROBOTS_ACCEPT: Final = "text/plain, */*;q=0.5"
_DEFAULT_TTL: Final = 24 * 3600.0
_DEFAULT_ERROR_TTL: Final = 600.0
_DEFAULT_TIMEOUT: Final = 10.0


@dataclass(frozen=True, slots=True)
class RobotsVerdict:
    """What one origin's robots.txt says, and until when (monotonic seconds)."""

    rules: Protego | None  # None: `allow_all` decides
    allow_all: bool
    expires: float
    status: int  # of the robots.txt response; 0 when none arrived
    good: bool  # a copy worth keeping over a later server error

    def allows(self, url: str, user_agent: str) -> bool:
        if self.rules is None:
            return self.allow_all
        return bool(self.rules.can_fetch(url, user_agent))

    @property
    def summary(self) -> str:
        """A few words for humans (`monitor check --probe`)."""
        if self.rules is not None:
            return f"robots.txt {self.status}"
        if self.status == 0:
            return "robots.txt unreachable: allow all"
        return f"robots.txt {self.status}: {'allow' if self.allow_all else 'disallow'} all"


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an absolute http(s) URL, lowercased; None otherwise."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    netloc = parts.netloc.rpartition("@")[2].lower()
    return f"{parts.scheme.lower()}://{netloc}"


class RobotsCache:
    """robots.txt verdicts per origin, fetched through the Fetcher, cached with a TTL."""

    def __init__(
        self,
        fetcher: Fetcher,
        *,
        user_agent: str,
        ttl: float = _DEFAULT_TTL,
        error_ttl: float = _DEFAULT_ERROR_TTL,
        timeout: float = _DEFAULT_TIMEOUT,
        max_origins: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        browser: BrowserFetcher | None = None,
    ) -> None:
        self._fetcher = fetcher
        self._browser = browser  # renders the pages of `render: browser` sources
        self._user_agent = user_agent
        self._ttl = ttl
        self._error_ttl = error_ttl
        self._timeout = timeout
        self._max_origins = max_origins
        self._clock = clock
        self._verdicts: dict[str, RobotsVerdict] = {}
        self._pending: dict[str, asyncio.Future[RobotsVerdict]] = {}
        # Verdicts by exact URL, for the few URLs asked again and again (the
        # feeds): no parsing, no protego matching on the hot path.
        self._by_url: dict[str, tuple[float, bool]] = {}

    @property
    def user_agent(self) -> str:
        return self._user_agent

    def cached(self, url: str, *, remember: bool = False) -> bool | None:
        """The verdict on `url` without I/O; None when its origin must be fetched first.

        `remember` keeps the verdict by URL as well (for a feed URL, polled
        again and again); never pass it for URLs that do not repeat.
        """
        hit = self._by_url.get(url)
        now = self._clock()
        if hit is not None and hit[0] > now:
            return hit[1]
        origin = origin_of(url)
        if origin is None:
            return True  # not http(s): the fetcher refuses it with the real reason
        verdict = self._verdicts.get(origin)
        if verdict is None or verdict.expires <= now:
            return None
        allowed = verdict.allows(url, self._user_agent)
        if remember:
            self._by_url[url] = (verdict.expires, allowed)
        return allowed

    async def fetch_page(self, source: Source, url: str, *, max_bytes: int) -> FetchResult | None:
        """A statement page of `source`, or None where its robots.txt says no (counted, logged)."""
        if source.robots and not await self.allowed(url, timeout=source.timeout):
            metrics.ROBOTS_DISALLOWED.labels(source_id=source.id, kind="page").inc()
            log.info("robots_disallowed", source_id=source.id, url=url, kind="page")
            return None
        if source.render == "browser" and self._browser is not None:
            return await self._browser.fetch(url, source_id=source.id, max_bytes=max_bytes)
        return await self._fetcher.fetch(
            url, source_id=source.id, kind="page", timeout=source.timeout, max_bytes=max_bytes
        )

    async def allowed(
        self,
        url: str,
        user_agent: str | None = None,
        *,
        remember: bool = False,
        timeout: float | None = None,
    ) -> bool:
        """Whether `user_agent` (default: the configured one) may fetch `url`.

        `timeout` bounds the robots.txt fetch, if one is needed, below the cache's own.
        """
        if user_agent is None or user_agent == self._user_agent:
            verdict = self.cached(url, remember=remember)
            if verdict is not None:
                return verdict
            user_agent = self._user_agent
        origin = origin_of(url)
        if origin is None:
            return True
        entry = await self.verdict(origin, timeout=timeout)
        allowed = entry.allows(url, user_agent)
        if remember and user_agent == self._user_agent:
            self._by_url[url] = (entry.expires, allowed)
        return allowed

    async def verdict(self, origin: str, *, timeout: float | None = None) -> RobotsVerdict:
        """The current verdict of `origin` (`scheme://host[:port]`), fetched if need be."""
        verdict = self._verdicts.get(origin)
        if verdict is not None and verdict.expires > self._clock():
            return verdict
        pending = self._pending.get(origin)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[RobotsVerdict] = asyncio.get_running_loop().create_future()
        self._pending[origin] = future
        try:
            fresh = await self._fetch(origin, verdict, timeout)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            self._pending.pop(origin, None)
        future.set_result(fresh)
        self._store(origin, fresh)
        return fresh

    async def _fetch(
        self, origin: str, previous: RobotsVerdict | None, timeout: float | None
    ) -> RobotsVerdict:
        result = await self._fetcher.fetch(
            f"{origin}/robots.txt",
            source_id="robots",
            kind="page",
            timeout=self._timeout if timeout is None else min(timeout, self._timeout),
            max_bytes=ROBOTS_MAX_BYTES,
            accept=ROBOTS_ACCEPT,
        )
        now = self._clock()
        status = result.status
        if result.ok:
            text = result.body.decode("utf-8", errors="replace")
            return RobotsVerdict(Protego.parse(text), True, now + self._ttl, status, good=True)
        if result.error is not None and result.error.kind == "too_large":
            # Over the cap: Google reads the first 500 KiB; the fetcher kept none, so be safe.
            return RobotsVerdict(None, False, now + self._error_ttl, status, good=False)
        keep = previous if previous is not None and previous.good else None
        if status == 429 or status >= 500 or status == 0:
            if keep is not None:
                return RobotsVerdict(keep.rules, keep.allow_all, now + self._error_ttl, keep.status,
                                     good=True)  # fmt: skip
            allow = status == 0  # unreachable: see the module docstring
            log.info(
                "robots_unavailable",
                origin=origin,
                status=status,
                error=result.error.message if result.error else None,
                verdict="allow all" if allow else "disallow all",
                retry_in=self._error_ttl,
            )
            return RobotsVerdict(None, allow, now + self._error_ttl, status, good=False)
        # 4xx (and a 3xx the fetcher did not follow): no robots.txt, allow all.
        return RobotsVerdict(None, True, now + self._ttl, status, good=True)

    def _store(self, origin: str, verdict: RobotsVerdict) -> None:
        self._verdicts.pop(origin, None)  # re-inserted last: the dict stays in age order
        self._verdicts[origin] = verdict
        if len(self._by_url) > self._max_origins:
            self._by_url.clear()  # rebuilt on demand
        if len(self._verdicts) <= self._max_origins:
            return
        now = self._clock()
        for stale in [o for o, v in self._verdicts.items() if v.expires <= now]:
            del self._verdicts[stale]
        while len(self._verdicts) > self._max_origins:
            del self._verdicts[next(iter(self._verdicts))]
