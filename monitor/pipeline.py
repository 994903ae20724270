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
import dataclasses
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
from monitor.detect import detect, entry_fingerprint, url_keys
from monitor.errors import ExtractionError
from monitor.events import (
    build_event,
    build_update_event,
    content_hash,
    encode_record,
    statement_data,
    statement_key,
)
from monitor.extract.feedtext import html_to_text
from monitor.extract.limits import page_limits
from monitor.extract.post import post_article
from monitor.extract.stage import Enriched, ExtractionStage
from monitor.fetch import Fetcher
from monitor.fetch.browser import BrowserFetcher
from monitor.fetch.robots import RobotsCache
from monitor.models import (
    Article,
    Candidate,
    FetchError,
    FetchResult,
    ParsedFeed,
    Source,
    SourceKind,
    Statement,
)
from monitor.outbox import OutboxRelay
from monitor.pool import PoolTimeout, WorkerPool
from monitor.sources import parse_document
from monitor.state import (
    AliasRow,
    KnownStatement,
    NewStatementRow,
    StateStore,
    Validators,
    VersionRow,
)
from monitor.telegram_poll import catch_up, retract_deleted

__all__ = ["FUTURE_DATE_TOLERANCE", "MAX_CACHE_FLOOR", "HubListener", "PollOutcome", "Poller"]

log = structlog.get_logger(__name__)

FUTURE_DATE_TOLERANCE = dt.timedelta(days=1)
# A cache lifetime longer than this is not believed: a server that says "fresh for a
# year" (it happens, on misconfigured sites) must not stop a source for a year.
MAX_CACHE_FLOOR = 86400.0
# Documents one poll may follow (child sitemaps, a discovered feed), and how deep:
# robots.txt → sitemap index → sitemap is depth 2.
MAX_FOLLOWS_PER_POLL = 20
MAX_FOLLOW_DEPTH = 2
PAGES_PER_WORKER = 8  # statement pages in flight per extraction worker


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


class _PageUnavailable(Exception):
    """The statement page could not be had this time; try again at the next poll."""


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
        self._extract = ExtractionStage(
            pool,
            timeout=config.extract.timeout,
            watchlists=config.resolved_watchlists(),
            max_pdf_pages=config.extract.max_pdf_pages,
            limits=page_limits(config.extract),
        )
        self._outbox = outbox
        self._now = now
        # Pages fetched or in extraction at once: enough to keep every worker busy
        # while the next pages download, few enough to bound memory.
        self._page_slots = asyncio.Semaphore(PAGES_PER_WORKER * config.extract.workers)
        # Polls in which an entry's page was unavailable, by (source, key).
        # In memory only: after a restart an entry simply gets fresh attempts.
        self._page_failures: dict[tuple[str, str], int] = {}
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
            await self._retract_deleted(source, parsed)
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

    async def _retract_deleted(self, source: Source, parsed: ParsedFeed) -> None:
        """A Telegram channel: posts deleted between two listed ones are retracted."""
        await retract_deleted(
            source,
            parsed,
            store=self._store,
            now=self._now(),
            wait_for_room=self._outbox.wait_for_room,
            notify=self._outbox.notify,
            alert_topics=self._extract.alert_topics,
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
        new = self._after_recovery_horizon(source, detection.new)
        outcomes = await asyncio.gather(
            *(self._record_entry(source, c, backfill=detection.first_sight) for c in new),
            *(self._record_change(source, c, k, fp) for c, k, fp in detection.changed),
            return_exceptions=True,
        )
        left_behind = [o for o in outcomes if o is not True]
        for failure in left_behind:
            if isinstance(failure, BaseException) and not isinstance(failure, _PageUnavailable):
                log.error("entry_failed", source_id=source.id, error=repr(failure))
        if not left_behind:
            self._store.save_validators(source.id, validators)
            if on_complete is not None:
                on_complete()
        return sum(1 for o in outcomes[: len(new)] if o is True)

    def _after_recovery_horizon(
        self, source: Source, entries: tuple[Candidate, ...]
    ) -> tuple[Candidate, ...]:
        """After a recovery of the store from the output topic (monitor/recovery.py):
        entries the topic lacks but the feed dates before the horizon were there before
        anything it holds was published, so they are recorded silently, not published."""
        horizon = self._store.recovery_horizon(source.id)
        if horizon is None:
            return entries
        older = [
            c for c in entries
            if c.key and c.published_at is not None
            and (c.published_at if c.published_at.tzinfo else c.published_at.replace(
                tzinfo=dt.UTC)).timestamp() < horizon
        ]
        if not older:
            return entries
        self._store.record_silently(
            source.id,
            [(statement_key(source.id, c.key), c.key, c.url, entry_fingerprint(c))
             for c in older if c.key],
            None,  # the validators wait for the other entries of this poll
        )
        log.info("entries_before_recovery_horizon", source_id=source.id,
                 recorded_silently=len(older))
        handled = {id(c) for c in older}
        return tuple(c for c in entries if id(c) not in handled)

    async def _record_entry(self, source: Source, candidate: Candidate, *, backfill: bool) -> bool:
        assert candidate.key is not None
        if self._known_elsewhere(source, candidate):
            return True
        article, error, enriched = await self._article(source, candidate)
        statement = self._statement(source, candidate, article, error, backfill=backfill)
        statement = await self._extract.enrich(source, statement, enriched)
        event = build_event(statement, topic=source.topic)
        key, value, headers = encode_record(event, max_bytes=self._config.kafka.max_event_bytes)
        await self._outbox.wait_for_room()
        # The duplicate check (by link and canonical URL) and the write are one
        # transaction, with no await before it: two sources racing publish once.
        duplicate_of = self._store.record_statement(
            NewStatementRow(
                statement_id=statement.statement_id,
                source_id=source.id,
                entry_key=candidate.key,
                url=statement.url,
                content_hash=statement.content_hash,
                version=statement.version,
                detected_at=statement.detected_at.timestamp(),
                event_id=event.id,
                topic=event.topic,
                key=key,
                value=value,
                headers=headers,
                entry_fingerprint=entry_fingerprint(candidate),
                title=statement.title,
                text=statement.text,
                data=event.data,
                url_keys=url_keys(candidate.url, statement.url),
                alert_topics=self._extract.alert_topics(event),
            )
        )
        self._page_failures.pop((source.id, candidate.key), None)
        if duplicate_of is not None:
            self._note_duplicate(source, candidate, duplicate_of)
            return True
        self._outbox.notify()
        self._extract.note_hits(event)
        metrics.STATEMENTS_DETECTED.labels(source_id=source.id).inc()
        log.info(
            "statement_detected",
            source_id=source.id,
            url=statement.url,
            statement_id=statement.statement_id,
            title=statement.title,
        )
        return True

    def _known_elsewhere(self, source: Source, candidate: Candidate) -> bool:
        """Record the entry as an alias if its link is a published statement's already
        (another source's, or another feed's): no page fetch, no event."""
        assert candidate.key is not None
        keys = url_keys(candidate.url)
        existing = self._store.statement_for_urls(keys)
        own_id = statement_key(source.id, candidate.key)
        if existing is None or existing == own_id:
            return False
        self._store.record_alias(
            AliasRow(
                statement_id=own_id,
                source_id=source.id,
                entry_key=candidate.key,
                url=candidate.url,
                alias_of=existing,
                entry_fingerprint=entry_fingerprint(candidate),
                url_keys=keys,
            )
        )
        self._note_duplicate(source, candidate, existing)
        return True

    def _note_duplicate(self, source: Source, candidate: Candidate, statement_id: str) -> None:
        metrics.STATEMENTS_DEDUPLICATED.labels(source_id=source.id).inc()
        log.info(
            "statement_already_known",
            source_id=source.id,
            url=candidate.url,
            statement_id=statement_id,
            hint="the same page came through another source or feed: published once, "
            "this source is added to data.sources of its next version",
        )

    async def _record_change(
        self, source: Source, candidate: Candidate, known: KnownStatement, fingerprint: str
    ) -> bool:
        """A published entry changed in the feed: extract the page again; if the title or
        text changed, record the next version and its `.updated` event in one transaction.
        Otherwise (or if the page now falls back to the feed) keep only the new fingerprint:
        a page that is gone is for the re-checks to retract, not for a feed edit."""
        assert candidate.key is not None
        article, error, enriched = await self._article(source, candidate)
        statement = self._statement(source, candidate, article, error, backfill=False)
        if error is not None or statement.content_hash == known.content_hash:
            self._store.set_fingerprints([(known.statement_id, fingerprint)])
            self._page_failures.pop((source.id, candidate.key), None)
            return True
        previous = self._store.last_published(known.statement_id) or {}
        statement = dataclasses.replace(
            statement,
            version=known.version + 1,
            sources=tuple(previous.get("sources") or ()),
        )
        statement = await self._extract.enrich(source, statement, enriched)
        event = build_update_event(previous, statement, topic=source.topic)
        key, value, headers = encode_record(event, max_bytes=self._config.kafka.max_event_bytes)
        await self._outbox.wait_for_room()
        recorded = self._store.record_version(
            VersionRow(
                statement_id=statement.statement_id,
                source_id=source.id,
                previous_version=known.version,
                version=statement.version,
                content_hash=statement.content_hash,
                entry_fingerprint=fingerprint,
                title=statement.title,
                text=statement.text,
                data=statement_data(statement),
                event_id=event.id,
                topic=event.topic,
                key=key,
                value=value,
                headers=headers,
                alert_topics=self._extract.alert_topics(event),
            )
        )
        self._page_failures.pop((source.id, candidate.key), None)
        if recorded:
            self._outbox.notify()
            self._extract.note_hits(event)
            metrics.STATEMENTS_UPDATED.labels(source_id=source.id).inc()
            log.info(
                "statement_updated",
                source_id=source.id,
                url=statement.url,
                statement_id=statement.statement_id,
                version=statement.version,
                fields=event.data["changes"]["fields"],
            )
        return True

    async def _article(
        self, source: Source, candidate: Candidate
    ) -> tuple[Article | None, str | None, Enriched | None]:
        """The extracted page and its enrichment, or (None, reason, None) when the
        feed's own content must do."""
        if candidate.url is None:
            return None, None, None  # nothing to fetch: the feed entry is the statement
        if source.kind == "telegram":  # the post is the statement: no page to fetch
            try:
                post = await self._pool.run(
                    self._config.extract.timeout,
                    post_article,
                    candidate.content_html,
                    title=candidate.title,
                    url=candidate.url,
                    published_at=candidate.published_at,
                )
            except PoolTimeout as exc:
                return None, f"timeout: {exc}", None
            return post, None, None
        metrics.INFLIGHT.labels(stage="extract").inc()
        try:
            # Pages are fetched no faster than the pool extracts them: without this
            # bound a backfill of 5,000 entries held every page in memory at once
            # (peak RSS 512 MB in bench/backfill.py).
            # A browser page is loaded before a slot is taken: a slow browser source
            # must not hold the slots that plain sources' pages need.
            page = await self._fetch_page(source, candidate) if source.render == "browser" else None
            async with self._page_slots:
                article, enriched = await self._fetch_and_extract(source, candidate, page)
            return article, None, enriched
        except ExtractionError as exc:
            metrics.EXTRACTION_FAILURES.labels(
                source_id=source.id, reason=exc.reason, kind=exc.kind
            ).inc()
            if exc.retriable and not self._out_of_attempts(source, candidate):
                log.warning(
                    "page_unavailable",
                    source_id=source.id,
                    url=candidate.url,
                    reason=exc.reason,
                    error=str(exc),
                )
                raise _PageUnavailable(str(exc)) from exc
            log.warning(
                "page_fallback_to_feed",
                source_id=source.id,
                url=candidate.url,
                reason=exc.reason,
                error=str(exc),
            )
            return None, f"{exc.reason}: {exc}", None
        finally:
            metrics.INFLIGHT.labels(stage="extract").dec()

    async def _fetch_page(self, source: Source, candidate: Candidate) -> FetchResult:
        assert candidate.url is not None
        page = await self._robots.fetch_page(
            source, candidate.url, max_bytes=self._config.fetch.max_page_bytes
        )
        if page is None:
            raise ExtractionError("robots", "disallowed", retriable=False)
        return page

    async def _fetch_and_extract(
        self, source: Source, candidate: Candidate, page: FetchResult | None = None
    ) -> tuple[Article, Enriched | None]:
        if page is None:
            page = await self._fetch_page(source, candidate)
        if page.error is not None:
            raise ExtractionError(
                f"fetch_{page.error.kind}", page.error.message, retriable=page.error.retriable
            )
        return await self._extract.article_enriched(
            source,
            page.body,
            url=page.final_url,
            feed_title=candidate.title,
            feed_published_at=candidate.published_at,
            content_type=page.content_type,
        )

    def _out_of_attempts(self, source: Source, candidate: Candidate) -> bool:
        assert candidate.key is not None
        slot = (source.id, candidate.key)
        self._page_failures[slot] = self._page_failures.get(slot, 0) + 1
        return self._page_failures[slot] >= self._config.extract.page_attempts

    def _statement(
        self,
        source: Source,
        candidate: Candidate,
        article: Article | None,
        error: str | None,
        *,
        backfill: bool,
    ) -> Statement:
        assert candidate.key is not None
        if article is not None:
            title = article.title or candidate.title
            text = article.text
            url = article.canonical_url or candidate.url
        else:
            title = candidate.title
            text = (
                html_to_text(candidate.content_html)
                if candidate.content_html
                else (candidate.summary or "")
            )
            url = candidate.url
        detected_at = self._now()
        published_at = _plausible_date(
            source,
            candidate,
            article.published_at if article and article.published_at else candidate.published_at,
            detected_at,
        )
        hash_ = content_hash(title, text)
        return Statement(
            statement_id=statement_key(source.id, candidate.key),
            source_id=source.id,
            source_name=source.name,
            feed_url=candidate.feed_url,
            url=url,
            guid=candidate.guid,
            title=title,
            text=text,
            summary=candidate.summary or (article.description if article else None),
            language=article.language if article else None,
            published_at=published_at,
            detected_at=detected_at,
            authors=_merge(candidate.authors, article.authors if article else ()),
            tags=_merge(source.tags, candidate.tags, article.tags if article else ()),
            content_hash=hash_,
            version=1,
            backfill=backfill,
            extraction_error=error,
            extra=candidate.extra,
            media_type=article.media_type if article is not None else _fallback_media(error),
        )


def _fallback_media(error: str | None) -> str | None:
    """What the linked document was, when its text fell back to the feed's: a PDF
    extraction failure says; otherwise unknown (None)."""
    return "application/pdf" if error and error.startswith("pdf_") else None


def _plausible_date(
    source: Source, candidate: Candidate, published_at: dt.datetime | None, detected_at: dt.datetime
) -> dt.datetime | None:
    """`published_at`, unless it lies beyond `FUTURE_DATE_TOLERANCE` ahead of detection."""
    if published_at is None or published_at <= detected_at + FUTURE_DATE_TOLERANCE:
        return published_at
    log.warning(
        "published_at_in_future",
        source_id=source.id,
        url=candidate.url,
        guid=candidate.guid,
        published_at=published_at.isoformat(),
    )
    return None


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


def _merge(*groups: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for group in groups for item in group if item))


def _body_hash(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()
