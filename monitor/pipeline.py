"""One poll of one source, through every stage, in the order that keeps delivery safe.

    fetch feed → (304: done) → parse (pool) → detect → for each new entry:
        fetch page → extract (pool) → statement → event → outbox (one transaction)
    for each changed entry (its feed fingerprint differs): the same, and if the
        title or text changed, the next version as `.updated` (one transaction)
    → save validators, only once every new entry is recorded

This module wires the stages; it owns no stage's logic. Stages never call
each other: they are handed what they need here.

Failure policy for a feed that cannot be had or read: the poll fails with
one bounded outcome (the fetch error kind, or `parse`), logged with the
source id and counted in `statement_monitor_polls_total`; the scheduler backs
off, and never polls sooner than a Retry-After allows. A malformed feed keeps
the entries feedparser recovers (logged as `feed_malformed_recovered`); one
that yields none, or an empty body, counts in `parse_errors`. A feed reached
through a permanent redirect (301, 308) is used, and the move is logged once
per source, with the config line to change.

Failure policy for a new entry whose page cannot be had:
- a transient failure (timeout, 5xx, pool timeout) leaves the entry
  unrecorded and the validators unsaved, so the next poll fetches the feed in
  full and tries again; after `extract.page_attempts` polls it falls back;
- a permanent failure (404, over the size cap, not HTML, nothing to extract)
  falls back at once. A PDF (by its signature, or its Content-Type) is extracted
  by monitor/extract/pdf.py in the pool; an encrypted, corrupt, image-only or
  hostile one falls back with `pdf_encrypted`, `pdf_corrupt`, `pdf_no_text`,
  `pdf_too_large` or `pdf_timeout`.
Falling back means publishing the statement with the feed's own text and an
`extraction_error` such as `not_html: ...` or `fetch_too_large: ...`, so a
statement is never lost to a broken page. A link to a PDF, an image or any
other non-HTML document is such a statement: recorded, with the feed's text
(empty if the feed has none) and the reason, rather than skipped.

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
broken date (a wrong year, a wrong time zone does not reach a day): the
statement is published with `published_at` null and the date is logged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog

from monitor import metrics
from monitor.config import Config
from monitor.detect import detect, entry_fingerprint
from monitor.entrystep import FUTURE_DATE_TOLERANCE, EntryStep
from monitor.events import statement_key
from monitor.fetch import Fetcher
from monitor.fetch.browser import BrowserFetcher
from monitor.fetch.robots import RobotsCache
from monitor.models import FetchError, FetchResult, ParsedFeed, Source, SourceKind
from monitor.outbox import OutboxRelay
from monitor.pool import PoolTimeout, WorkerPool
from monitor.sources import parse_document
from monitor.state import StateStore, Validators
from monitor.telegram_poll import catch_up

__all__ = ["FUTURE_DATE_TOLERANCE", "MAX_CACHE_FLOOR", "HubListener", "PollOutcome", "Poller"]

log = structlog.get_logger(__name__)

# A cache lifetime longer than this is not believed: a server that says "fresh for a
# year" (it happens, on misconfigured sites) must not stop a source for a year.
MAX_CACHE_FLOOR = 86400.0
# Documents one poll may follow (child sitemaps, a discovered feed), and how deep:
# robots.txt → sitemap index → sitemap is depth 2.
MAX_FOLLOWS_PER_POLL = 20
MAX_FOLLOW_DEPTH = 2


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
    """Runs one poll of a source through fetch, parse, detect, extract and record."""

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
        self._config = config
        self._browser = browser  # renders `render: browser` sources (monitor/fetch/browser.py)
        self._robots = robots or RobotsCache(fetcher, user_agent=config.fetch.user_agent)
        for source in config.sources:
            if not source.robots:
                log.warning(
                    "robots_txt_ignored", source_id=source.id, reason=source.robots_reason
                )
        self._on_hub = on_hub
        # One poll or push at a time per source, so the two never record one entry twice.
        self._busy: dict[str, asyncio.Lock] = {}
        self._store = store
        self._fetcher = fetcher
        self._pool = pool
        self._now = now
        self._entries = EntryStep(
            config, store=store, pool=pool, outbox=outbox, robots=self._robots, now=now
        )
        # Where each source's feed was last reported to have moved, so a move is logged once.
        self._moved: dict[str, str] = {}
        self._config_index = {s.id: i for i, s in enumerate(config.sources)}
        # The validators of followed documents (child sitemaps). In memory only: after
        # a restart child sitemaps are fetched in full. (The feed a home page links to
        # is kept by the store: `discovered_url`, read from memory, saved on disk.)
        self._followed: dict[tuple[str, str], Validators] = {}
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
        if source.robots:
            # A dict lookup for a cached origin; I/O only when robots.txt is due.
            allowed = self._robots.cached(source.url, remember=True)
            if allowed is None:
                allowed = await self._robots.allowed(
                    source.url, remember=True, timeout=source.timeout
                )
            if not allowed:
                metrics.ROBOTS_DISALLOWED.labels(source_id=source.id, kind="feed").inc()
                log.warning(
                    "robots_disallowed",
                    source_id=source.id,
                    url=source.url,
                    kind="feed",
                    user_agent=self._robots.user_agent,
                    hint="ask the site, or set robots: false with a robots_reason",
                )
                return PollOutcome("robots", ok=False)
        saved = self._store.validators(source.id)
        discovered = self._store.discovered_url(source.id)
        url = discovered or _first_document_url(source)
        result = await self._fetch_feed(source, url, saved)
        if result.permanent_redirect is not None and url == source.url:
            self._note_moved(source, result.permanent_redirect)
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

        validators = Validators(result.etag, result.last_modified, _body_hash(result.body))
        if validators.body_hash == saved.body_hash and self._store.has_seen(source.id):
            # The same bytes as last time from a server without validators: no parse.
            if validators != saved:
                self._store.save_validators(source.id, validators)
            return PollOutcome(
                "200", ok=True, min_interval=_cache_floor(source, result.max_age, None)
            )

        parsed = await self._parse(source, result, kind="feed" if discovered else None)
        if parsed is not None and source.kind == "telegram":
            parsed = await self._catch_up(source, parsed, result.final_url)
        on_complete: Callable[[], None] | None = None
        if parsed is not None and parsed.follow:
            parsed, validators, on_complete = await self._follow(source, parsed, saved)
        if parsed is None:
            return PollOutcome("parse", ok=False)
        hub = parsed.hub or result.hub  # in the feed, or in a `Link` header
        if hub is not None and self._on_hub is not None:
            self._on_hub(source, hub, parsed.self_url or result.self_link or result.final_url)
        new = await self._record_new_entries(
            source, parsed, validators, on_complete=on_complete
        )
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
            parsed = await self._parse(source, result, kind="feed")
            if parsed is None:
                return PollOutcome("parse", ok=False)
            new = await self._record_new_entries(
                source, parsed, self._store.validators(source.id)
            )
        return PollOutcome("200", ok=True, new_statements=new)

    async def _catch_up(self, source: Source, parsed: ParsedFeed, url: str) -> ParsedFeed:
        """A Telegram channel: the older posts too, when none listed is known (telegram_poll)."""

        async def read_page(page: str) -> ParsedFeed | None:
            result = await self._fetch_document(source, page, Validators())
            if result.error is not None:
                log.warning("poll_failed", source_id=source.id, url=page, kind=result.error.kind)
                return None
            return await self._parse(source, result)

        return await catch_up(
            source, parsed, url=url, store=self._store, read_page=read_page
        )

    async def _follow(
        self, source: Source, parsed: ParsedFeed, saved: Validators
    ) -> tuple[ParsedFeed | None, Validators, Callable[[], None] | None]:
        """Fetch and parse what a document points to, in this poll; merge their entries.

        A home page's discovered feed is fetched with the source's saved validators
        and replaces the page from the next poll on (its validators are the
        source's from now on). The child sitemaps of an index or robots.txt (and
        theirs, to `MAX_FOLLOW_DEPTH`) are read next; a leaf sitemap is asked with its own
        validators, kept only once the poll has recorded every entry. An index (or
        robots.txt) is saved with no validators and read in full, so the next poll
        asks each child again even when the index did not change. At most
        `MAX_FOLLOWS_PER_POLL` documents are fetched per poll.
        """
        if parsed.format == "discovery":
            return await self._follow_discovered(source, parsed.follow[0], saved)
        entries = list(parsed.entries)
        pending = [(url, 1) for url in parsed.follow]
        seen: set[str] = set()
        fetched: dict[tuple[str, str], Validators] = {}
        while pending and len(seen) < MAX_FOLLOWS_PER_POLL:
            url, depth = pending.pop(0)
            if url in seen:
                continue
            seen.add(url)
            before = self._followed.get((source.id, url), Validators())
            result = await self._fetch_document(source, url, before)
            if result.not_modified:
                continue
            if result.error is not None:
                log.warning(
                    "follow_failed", source_id=source.id, url=url, kind=result.error.kind
                )
                continue
            child = await self._parse(source, result, kind="sitemap")
            if child is None:
                continue
            if not child.follow:  # a nested index is read in full: its children may change
                fetched[(source.id, url)] = Validators(result.etag, result.last_modified)
            entries.extend(child.entries)
            if depth < MAX_FOLLOW_DEPTH:
                pending.extend((u, depth + 1) for u in child.follow if u not in seen)
        if pending:
            log.warning(
                "follow_limit_reached",
                source_id=source.id,
                url=source.url,
                fetched=len(seen),
                left=len(pending),
            )
        merged = ParsedFeed(format=parsed.format, title=parsed.title, entries=tuple(entries))
        return merged, Validators(), lambda: self._followed.update(fetched)

    async def _follow_discovered(
        self, source: Source, feed_url: str, saved: Validators
    ) -> tuple[ParsedFeed | None, Validators, Callable[[], None] | None]:
        """Fetch the feed a home page links to, and poll it instead from now on."""
        result = await self._fetch_document(source, feed_url, saved)
        if result.error is not None:
            log.warning(
                "poll_failed", source_id=source.id, url=feed_url, kind=result.error.kind
            )
            return None, saved, None
        if result.not_modified:
            parsed: ParsedFeed | None = ParsedFeed(format="discovery", title=None, entries=())
            validators = saved
        else:
            parsed = await self._parse(source, result, kind="feed")
            validators = Validators(result.etag, result.last_modified, _body_hash(result.body))
        if parsed is not None and self._store.discovered_url(source.id) != feed_url:
            self._store.set_discovered_url(source.id, feed_url)
            log.info("feed_discovered", source_id=source.id, url=feed_url, page=source.url)
        return parsed, validators, None

    async def _fetch_document(
        self, source: Source, url: str, validators: Validators
    ) -> FetchResult:
        """GET a followed document, conditionally, if robots.txt allows it."""
        if source.robots and not await self._robots.allowed(url):
            return FetchResult(
                source_id=source.id,
                url=url,
                final_url=url,
                status=0,
                fetched_at=self._now(),
                error=FetchError(
                    kind="robots", message="disallowed by robots.txt", retriable=False
                ),
            )
        return await self._fetch_feed(source, url, validators)

    def _fetch_feed(
        self, source: Source, url: str, validators: Validators
    ) -> Coroutine[Any, Any, FetchResult]:
        """A conditional GET of one of the source's documents (its feed, a followed sitemap).

        Not a coroutine itself: the caller awaits the fetcher's, one frame less to
        resume at every step of the request. A `render: browser` source's document is
        rendered in the browser instead (never conditional: a DOM has no validators).
        """
        if source.render == "browser" and self._browser is not None:
            return self._browser.fetch(
                url, source_id=source.id, max_bytes=self._config.fetch.max_feed_bytes
            )
        return self._fetcher.fetch(
            url,
            source_id=source.id,
            kind="feed",
            timeout=source.timeout,
            max_bytes=self._config.fetch.max_feed_bytes,
            etag=validators.etag,
            last_modified=validators.last_modified,
        )

    def _note_moved(self, source: Source, target: str) -> None:
        """Log, once per source and target, that the feed has moved for good."""
        if self._moved.get(source.id) == target:
            return
        self._moved[source.id] = target
        index = self._config_index.get(source.id)
        where = f"sources[{index}].url" if index is not None else f"the url of source {source.id}"
        log.warning(
            "source_moved_permanently",
            source_id=source.id,
            url=source.url,
            new_url=target,
            suggestion=f"update {where} to {target}",
        )

    async def _parse(
        self, source: Source, result: FetchResult, *, kind: SourceKind | None = None
    ) -> ParsedFeed | None:
        """Parse a fetched document as `kind` (default: the source's kind) in the pool."""
        metrics.FEED_PARSES.labels(source_id=source.id).inc()
        try:
            # The priority lane: a poll never waits behind page extraction (issue 13).
            parsed = await self._pool.run_priority(
                self._config.extract.timeout,
                parse_document,
                result.body,
                source_id=source.id,
                feed_url=result.final_url,
                content_type=result.content_type,
                kind=kind or source.kind,
                selector=source.selector,
                link_pattern=source.link_pattern,
            )
        except PoolTimeout as exc:
            metrics.PARSE_ERRORS.labels(source_id=source.id).inc()
            log.error("feed_parse_timeout", source_id=source.id, url=source.url, error=str(exc))
            return None
        if parsed.error is not None and not parsed.entries:
            metrics.PARSE_ERRORS.labels(source_id=source.id).inc()
            log.warning(
                "feed_unreadable",
                source_id=source.id,
                url=source.url,
                error=parsed.error,
                content_type=result.content_type,
            )
            return None
        if parsed.bozo:
            log.info(
                "feed_malformed_recovered",
                source_id=source.id,
                url=source.url,
                entries=len(parsed.entries),
            )
        return parsed

    async def _record_new_entries(
        self,
        source: Source,
        parsed: ParsedFeed,
        validators: Validators,
        *,
        on_complete: Callable[[], None] | None = None,
    ) -> int:
        """Record what is new; save the validators only if nothing was left behind.

        `on_complete` runs right after the validators are saved (it keeps those
        of followed documents, see `_follow`).
        """
        detection = detect(source.id, parsed.entries, self._store)
        if detection.first_sight and not source.backfill:
            self._store.record_silently(
                source.id,
                [
                    (statement_key(source.id, c.key), c.key, c.url, entry_fingerprint(c))
                    for c in detection.new
                    if c.key
                ],
                validators,
            )
            metrics.STATEMENTS_RECORDED_SILENTLY.labels(source_id=source.id).inc(len(detection.new))
            if on_complete is not None:
                on_complete()
            log.info(
                "source_first_sight",
                source_id=source.id,
                url=source.url,
                recorded_silently=len(detection.new),
                backfill=False,
            )
            return 0

        # First poll after an upgrade: fingerprints are stored silently, no edits.
        self._store.set_fingerprints(detection.silent_fingerprints)
        # The entry step records every new and changed entry; the validators wait for it.
        recorded = await self._entries.record(
            source, detection.new, detection.changed, backfill=detection.first_sight
        )
        if recorded.complete:
            self._store.save_validators(source.id, validators)
            if on_complete is not None:
                on_complete()
        return recorded.new_statements

def _first_document_url(source: Source) -> str:
    """What a poll fetches first: the source's URL, or for a sitemap source given as a
    site root (`https://host/`), its robots.txt, whose `Sitemap:` lines are followed."""
    if source.kind != "sitemap":
        return source.url  # no urlsplit per poll of a feed (it was ~1.5 % of a 304 poll)
    parts = urlsplit(source.url)
    if parts.path in ("", "/") and not parts.query:
        return urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))
    return source.url


def _cache_floor(source: Source, max_age: float | None, ttl: float | None) -> float | None:
    """The lower bound the server's cache hints put on the next delay, if any."""
    if not source.respect_cache_headers or (max_age is None and ttl is None):
        return None
    return min(max(max_age or 0.0, ttl or 0.0), MAX_CACHE_FLOOR)


def _publication_times(parsed: ParsedFeed) -> tuple[float, ...]:
    return tuple(c.published_at.timestamp() for c in parsed.entries if c.published_at)


def _body_hash(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()
