"""The feed step of a poll: the source's documents, from the GET to the saved validators.

    conditional GET (fetch/) → parse (pool, priority lane) → [Telegram: older pages]
        → follow (child sitemaps, a discovered feed) → detect
        → hand the new and changed entries to the entry step (monitor/entrystep.py)
        → save validators, only once the entry step has recorded every entry

The order of writes is the point of this module: the validators (ETag,
Last-Modified, body hash) of the feed and of followed documents are saved
last, after the entry step reports nothing left behind, so a 304 after a
crash or an outage can never hide a statement. At first sight (without
`backfill`) the entries are recorded silently with the validators in one
transaction, and the entry step is not asked.

Following: a home page's discovered feed replaces the page from the next poll
on; the child sitemaps of an index or robots.txt are read to
`MAX_FOLLOW_DEPTH`, at most `MAX_FOLLOWS_PER_POLL` documents per poll, each
asked with its own validators (kept in memory) and only if robots.txt allows.
A feed reached through a permanent redirect (301, 308) is used, and the move
is logged once per source, with the config line to change (`note_moved`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog

from monitor import metrics
from monitor.config import Config
from monitor.detect import detect, entry_fingerprint
from monitor.entrystep import EntryStep
from monitor.events import statement_key
from monitor.fetch import Fetcher
from monitor.fetch.browser import BrowserFetcher
from monitor.fetch.robots import RobotsCache
from monitor.models import FetchError, FetchResult, ParsedFeed, Source, SourceKind
from monitor.pool import PoolTimeout, WorkerPool
from monitor.sources import parse_document
from monitor.state import StateStore, Validators
from monitor.telegram_poll import catch_up

__all__ = [
    "MAX_FOLLOWS_PER_POLL",
    "MAX_FOLLOW_DEPTH",
    "FeedStep",
    "FollowedFeed",
    "body_hash",
    "first_document_url",
]

log = structlog.get_logger(__name__)

# Documents one poll may follow (child sitemaps, a discovered feed), and how deep:
# robots.txt → sitemap index → sitemap is depth 2.
MAX_FOLLOWS_PER_POLL = 20
MAX_FOLLOW_DEPTH = 2

# What `FeedStep.follow` returns: the merged document (None if unreadable), the
# validators to save for the source, and what to run once they are saved.
FollowedFeed = tuple[ParsedFeed | None, Validators, Callable[[], None] | None]


class FeedStep:
    """Fetches, parses and follows a source's documents, hands their entries to the
    entry step, and saves the validators once every entry is recorded."""

    def __init__(
        self,
        config: Config,
        *,
        store: StateStore,
        fetcher: Fetcher,
        pool: WorkerPool,
        robots: RobotsCache,
        entries: EntryStep,
        now: Callable[[], dt.datetime],
        browser: BrowserFetcher | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._fetcher = fetcher
        self._pool = pool
        self._robots = robots
        self._entries = entries
        self._now = now
        self._browser = browser  # renders `render: browser` sources (monitor/fetch/browser.py)
        # Where each source's feed was last reported to have moved, so a move is logged once.
        self._moved: dict[str, str] = {}
        self._config_index = {s.id: i for i, s in enumerate(config.sources)}
        # The validators of followed documents (child sitemaps). In memory only: after
        # a restart child sitemaps are fetched in full. (The feed a home page links to
        # is kept by the store: `discovered_url`, read from memory, saved on disk.)
        self._followed: dict[tuple[str, str], Validators] = {}

    async def robots_allow(self, source: Source) -> bool:
        """Whether robots.txt lets the source's feed be fetched (logged and counted if not)."""
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
        return allowed

    async def catch_up(self, source: Source, parsed: ParsedFeed, url: str) -> ParsedFeed:
        """A Telegram channel: the older posts too, when none listed is known (telegram_poll)."""

        async def read_page(page: str) -> ParsedFeed | None:
            result = await self._fetch_document(source, page, Validators())
            if result.error is not None:
                log.warning("poll_failed", source_id=source.id, url=page, kind=result.error.kind)
                return None
            return await self.parse(source, result)

        return await catch_up(
            source, parsed, url=url, store=self._store, read_page=read_page
        )

    async def follow(
        self, source: Source, parsed: ParsedFeed, saved: Validators
    ) -> FollowedFeed:
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
            child = await self.parse(source, result, kind="sitemap")
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
    ) -> FollowedFeed:
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
            parsed = await self.parse(source, result, kind="feed")
            validators = Validators(result.etag, result.last_modified, body_hash(result.body))
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
        return await self.fetch(source, url, validators)

    def fetch(
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

    def note_moved(self, source: Source, target: str) -> None:
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

    async def parse(
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

    async def record(
        self,
        source: Source,
        parsed: ParsedFeed,
        validators: Validators,
        *,
        on_complete: Callable[[], None] | None = None,
    ) -> int:
        """Record what is new; save the validators only if nothing was left behind.

        `on_complete` runs right after the validators are saved (it keeps those
        of followed documents, see `follow`).
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


def first_document_url(source: Source) -> str:
    """What a poll fetches first: the source's URL, or for a sitemap source given as a
    site root (`https://host/`), its robots.txt, whose `Sitemap:` lines are followed."""
    if source.kind != "sitemap":
        return source.url  # no urlsplit per poll of a feed (it was ~1.5 % of a 304 poll)
    parts = urlsplit(source.url)
    if parts.path in ("", "/") and not parts.query:
        return urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))
    return source.url


def body_hash(body: bytes) -> str:
    """The fingerprint of a document's bytes: a server without validators sent the same."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()
