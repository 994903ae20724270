"""One poll of one source, through every stage, in the order that keeps delivery safe.

    robots.txt → fetch feed → (304: done) → parse (pool) → follow → detect
        → for each new entry: fetch page → extract (pool) → statement → event
          → outbox (one transaction)
        → for each changed entry (its feed fingerprint differs): the same, and if
          the title or text changed, the next version as `.updated` (one transaction)
    → save validators, only once every new and changed entry is recorded

This module tells that story and wires the two steps that do it; it owns no
stage's logic. Like Scrapy's engine, it moves things; each step does one job:
- the feed step (monitor/feedstep.py): fetch, 304, parse, follow, detect, and
  the validators, saved last;
- the entry step (monitor/entrystep.py): page, extraction, statement, versions,
  dedup, each statement with its outbox row in one transaction.
The feed step hands the entry step the new and changed entries and waits for
them before it saves validators. Telegram's own parts (older pages, deleted
posts) are in monitor/telegram_poll.py.

Failure policy for a feed that cannot be had or read: the poll fails with
one bounded outcome (the fetch error kind, or `parse`), logged with the
source id and counted in `statement_monitor_polls_total`; the scheduler backs
off, and never polls sooner than a Retry-After allows. A malformed feed keeps
the entries feedparser recovers (logged as `feed_malformed_recovered`); one
that yields none, or an empty body, counts in `parse_errors`. A feed reached
through a permanent redirect (301, 308) is used, and the move is logged once
per source, with the config line to change.

A new entry whose page cannot be had is the entry step's: a transient failure
leaves it unrecorded and the validators unsaved, so the next poll fetches the
feed in full and tries again; a permanent one (or too many transient ones)
publishes the statement with the feed's own text and an `extraction_error`.
A link to a PDF, an image or any other non-HTML document is such a statement:
recorded, with the feed's text (empty if the feed has none) and the reason,
rather than skipped.

Politeness: robots.txt (fetch/robots.py) is asked before the feed and before
each statement page, unless the source sets `robots: false`. A disallowed
feed is not fetched: the poll fails with outcome `robots` (and backs off). A
disallowed page is not fetched either: the statement is recorded with the
feed's text and `extraction_error` "robots: disallowed". Both are counted in
`statement_monitor_robots_disallowed_total{source_id, kind}` and logged. A
cache lifetime (Cache-Control max-age, Expires, RSS <ttl>) is passed to the
scheduler as a floor on the next delay (`min_interval`), capped at
`MAX_CACHE_FLOOR`, unless the source sets `respect_cache_headers: false`.

A publication date more than `FUTURE_DATE_TOLERANCE` ahead of detection is a
broken date: the statement is published with `published_at` null (entry step).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from monitor import metrics
from monitor.config import Config
from monitor.entrystep import FUTURE_DATE_TOLERANCE, EntryStep
from monitor.feedstep import FeedStep, body_hash, first_document_url
from monitor.fetch import Fetcher
from monitor.fetch.browser import BrowserFetcher
from monitor.fetch.robots import RobotsCache
from monitor.models import FetchResult, ParsedFeed, Source
from monitor.outbox import OutboxRelay
from monitor.pool import WorkerPool
from monitor.state import StateStore, Validators

__all__ = ["FUTURE_DATE_TOLERANCE", "MAX_CACHE_FLOOR", "HubListener", "PollOutcome", "Poller"]

log = structlog.get_logger(__name__)

# A cache lifetime longer than this is not believed: a server that says "fresh for a
# year" (it happens, on misconfigured sites) must not stop a source for a year.
MAX_CACHE_FLOOR = 86400.0

@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What the scheduler needs to know about a poll."""

    outcome: str  # metric label: "200", "304", or an error kind
    ok: bool
    retry_after: float | None = None
    new_statements: int = 0
    min_interval: float | None = None  # e.g. from RSS <ttl>
    # Publication times (Unix seconds) of the entries of a feed this poll parsed, for
    # an adaptive interval; None when nothing was parsed (or the interval is fixed).
    published: tuple[float, ...] | None = None
    detail: str | None = None  # a finer outcome for the status views: `http_503`


_NOT_MODIFIED = PollOutcome("304", ok=True)  # a 304 without Retry-After or cache hints


# Told of the WebSub hub a source's feed names: (source, hub URL, topic URL).
HubListener = Callable[[Source, str, str], None]


class Poller:
    """Runs one poll of a source: the feed step, which hands its entries to the entry step."""

    def __init__(
        self,
        config: Config,
        *,
        store: StateStore,
        fetcher: Fetcher,
        pool: WorkerPool,
        outbox: OutboxRelay,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        on_hub: HubListener | None = None,
        robots: RobotsCache | None = None,
        browser: BrowserFetcher | None = None,
    ) -> None:
        robots = robots or RobotsCache(fetcher, user_agent=config.fetch.user_agent)
        for source in config.sources:
            if not source.robots:
                log.warning(
                    "robots_txt_ignored", source_id=source.id, reason=source.robots_reason
                )
        self._on_hub = on_hub
        # One poll or push at a time per source, so the two never record one entry twice.
        self._busy: dict[str, asyncio.Lock] = {}
        self._store = store
        self._now = now
        self._entries = EntryStep(
            config, store=store, pool=pool, outbox=outbox, robots=robots, now=now
        )
        self._feed = FeedStep(
            config, store=store, fetcher=fetcher, pool=pool, robots=robots,
            entries=self._entries, now=now, browser=browser,
        )
        self._inflight = metrics.INFLIGHT.labels(stage="poll")

    async def poll(self, source: Source) -> PollOutcome:
        started = time.monotonic()
        seen = metrics.source_metrics(source.id)  # no `.labels()` per poll (~7 % of a 304)
        lock = self._busy.get(source.id)  # no Lock built and dropped per poll
        if lock is None:
            lock = self._busy[source.id] = asyncio.Lock()
        inflight = self._inflight
        inflight.inc()
        try:
            async with lock:
                outcome = await self._poll(source)
        finally:
            inflight.dec()
            metrics.POLL_DURATION.observe(time.monotonic() - started)
        seen.polls(outcome.outcome).inc()
        wall = time.time()
        seen.last_poll.set(wall)
        if outcome.ok:
            seen.last_success.set(wall)
        return outcome

    async def _poll(self, source: Source) -> PollOutcome:
        feed = self._feed
        if source.robots and not await feed.robots_allow(source):
            return PollOutcome("robots", ok=False)
        saved = self._store.validators(source.id)
        discovered = self._store.discovered_url(source.id)
        url = discovered or first_document_url(source)
        result = await feed.fetch(source, url, saved)
        if result.permanent_redirect is not None and url == source.url:
            feed.note_moved(source, result.permanent_redirect)
        if result.not_modified:
            floor = _cache_floor(source, result.max_age, None)
            if floor is None and result.retry_after is None:
                return _NOT_MODIFIED  # the hot path: nothing to build
            return PollOutcome("304", ok=True, retry_after=result.retry_after, min_interval=floor)
        if result.error is not None:
            if discovered and not result.error.retriable:
                self._store.set_discovered_url(source.id, None)  # gone: read the home page again
            log.warning(
                "poll_failed",
                source_id=source.id,
                url=url,
                kind=result.error.kind,
                status=result.status,
                error=result.error.message,
            )
            return PollOutcome(
                result.error.kind, ok=False, retry_after=result.retry_after,
                # The exact status for people (`http_503`); the metric keeps its class.
                detail=f"http_{result.status}" if result.error.kind.startswith("http_")
                and result.status else None,
            )

        validators = Validators(result.etag, result.last_modified, body_hash(result.body))
        if validators.body_hash == saved.body_hash and self._store.has_seen(source.id):
            # The same bytes as last time from a server without validators: no parse.
            if validators != saved:
                self._store.save_validators(source.id, validators)
            return PollOutcome(
                "200", ok=True, min_interval=_cache_floor(source, result.max_age, None)
            )

        parsed = await feed.parse(source, result, kind="feed" if discovered else None)
        if parsed is not None and source.kind == "telegram":
            parsed = await feed.catch_up(source, parsed, result.final_url)
        on_complete: Callable[[], None] | None = None
        if parsed is not None and parsed.follow:
            parsed, validators, on_complete = await feed.follow(source, parsed, saved)
        if parsed is None:
            return PollOutcome("parse", ok=False)
        hub = parsed.hub or result.hub  # in the feed, or in a `Link` header
        if hub is not None and self._on_hub is not None:
            self._on_hub(source, hub, parsed.self_url or result.self_link or result.final_url)
        # The entries go to the entry step; the validators are saved once it is done.
        new = await feed.record(source, parsed, validators, on_complete=on_complete)
        if source.kind == "telegram":
            await self._entries.retract_deleted(source, parsed)
        return PollOutcome(
            "200",
            ok=True,
            new_statements=new,
            min_interval=_cache_floor(source, result.max_age, parsed.ttl),
            retry_after=result.retry_after,
            published=_publication_times(parsed) if source.adaptive else None,
        )

    async def process_pushed(
        self, source: Source, body: bytes, content_type: str | None, *, url: str | None = None
    ) -> PollOutcome:
        """Parse, detect and record a feed body a WebSub hub delivered, as a poll would.

        `url` is the subscribed topic (the feed's URL, against which relative links
        resolve); the source's URL by default. The body is always parsed as a feed.
        The source's validators are kept as they are: they belong to the last GET
        of the feed, and a push says nothing about what a GET would answer.
        """
        async with self._busy.setdefault(source.id, asyncio.Lock()):
            result = FetchResult(
                source_id=source.id,
                url=source.url,
                final_url=url or source.url,
                status=200,
                fetched_at=self._now(),
                body=body,
                content_type=content_type,
            )
            parsed = await self._feed.parse(source, result, kind="feed")
            if parsed is None:
                return PollOutcome("parse", ok=False)
            new = await self._feed.record(source, parsed, self._store.validators(source.id))
        return PollOutcome("200", ok=True, new_statements=new)


def _cache_floor(source: Source, max_age: float | None, ttl: float | None) -> float | None:
    """The lower bound the server's cache hints put on the next delay, if any."""
    if not source.respect_cache_headers or (max_age is None and ttl is None):
        return None
    return min(max(max_age or 0.0, ttl or 0.0), MAX_CACHE_FLOOR)


def _publication_times(parsed: ParsedFeed) -> tuple[float, ...]:
    return tuple(c.published_at.timestamp() for c in parsed.entries if c.published_at)

