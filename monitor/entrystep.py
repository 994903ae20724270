"""The entry step of a poll: each new or changed entry, from its page to the outbox.

    for each new entry: fetch page → extract (pool) → statement → event → outbox
        (one transaction, with the duplicate check by link and canonical URL)
    for each changed entry (its feed fingerprint differs): the same, and if the
        title or text changed, the next version as `.updated` (one transaction)

The feed step (monitor/feedstep.py) hands this step the new and changed entries
of a poll and waits for `record` before it saves the feed's validators: an
entry left behind (`EntriesRecorded.complete` false) keeps them unsaved, so the
next poll reads the feed in full and tries again.

Failure policy for an entry whose page cannot be had:
- a transient failure (timeout, 5xx, pool timeout) leaves the entry
  unrecorded, so the next poll tries again; after `extract.page_attempts`
  polls it falls back;
- a permanent failure (404, over the size cap, not HTML, nothing to extract)
  falls back at once. A PDF (by its signature, or its Content-Type) is extracted
  by monitor/extract/pdf.py in the pool; an encrypted, corrupt, image-only or
  hostile one falls back with `pdf_encrypted`, `pdf_corrupt`, `pdf_no_text`,
  `pdf_too_large` or `pdf_timeout`.
Falling back means publishing the statement with the feed's own text and an
`extraction_error` such as `not_html: ...` or `fetch_too_large: ...`, so a
statement is never lost to a broken page. A page robots.txt disallows is not
fetched: the statement falls back with "robots: disallowed".

A publication date more than `FUTURE_DATE_TOLERANCE` ahead of detection is a
broken date (a wrong year, a wrong time zone does not reach a day): the
statement is published with `published_at` null and the date is logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from monitor import metrics
from monitor.config import Config
from monitor.detect import entry_fingerprint, url_keys
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
from monitor.extract.stage import Enriched, ExtractionStage
from monitor.fetch.robots import RobotsCache
from monitor.models import Article, Candidate, FetchResult, ParsedFeed, Source, Statement
from monitor.outbox import OutboxRelay
from monitor.pool import WorkerPool
from monitor.state import AliasRow, KnownStatement, NewStatementRow, StateStore, VersionRow
from monitor.telegram_poll import read_post, retract_deleted

__all__ = ["FUTURE_DATE_TOLERANCE", "PAGES_PER_WORKER", "EntriesRecorded", "EntryStep"]

log = structlog.get_logger(__name__)

FUTURE_DATE_TOLERANCE = dt.timedelta(days=1)
PAGES_PER_WORKER = 8  # statement pages in flight per extraction worker

# A changed entry, as detect.py reports it: the candidate, what is known, the new fingerprint.
Change = tuple[Candidate, KnownStatement, str]


@dataclass(frozen=True, slots=True)
class EntriesRecorded:
    """What the entry step did with a poll's entries."""

    new_statements: int  # new entries recorded (published, or known as duplicates)
    complete: bool  # every entry handed over is recorded: the validators may be saved


class _PageUnavailable(Exception):
    """The statement page could not be had this time; try again at the next poll."""


class EntryStep:
    """Records the new and changed entries of a poll: page, extraction, statement,
    versions, and the duplicate check, each with its event in the outbox."""

    def __init__(
        self,
        config: Config,
        *,
        store: StateStore,
        pool: WorkerPool,
        outbox: OutboxRelay,
        robots: RobotsCache,
        now: Callable[[], dt.datetime],
    ) -> None:
        self._config = config
        self._store = store
        self._pool = pool
        self._outbox = outbox
        self._robots = robots
        self._now = now
        self._extract = ExtractionStage(
            pool,
            timeout=config.extract.timeout,
            watchlists=config.resolved_watchlists(),
            max_pdf_pages=config.extract.max_pdf_pages,
            limits=page_limits(config.extract),
        )
        # Pages fetched or in extraction at once: enough to keep every worker busy
        # while the next pages download, few enough to bound memory.
        self._page_slots = asyncio.Semaphore(PAGES_PER_WORKER * config.extract.workers)
        # Polls in which an entry's page was unavailable, by (source, key).
        # In memory only: after a restart an entry simply gets fresh attempts.
        self._page_failures: dict[tuple[str, str], int] = {}

    async def record(
        self,
        source: Source,
        new: tuple[Candidate, ...],
        changed: tuple[Change, ...],
        *,
        backfill: bool,
    ) -> EntriesRecorded:
        """Record every new and changed entry, concurrently; say whether any was left
        behind (a page to try again at the next poll, or a bug, logged)."""
        new = self._after_recovery_horizon(source, new)
        outcomes = await asyncio.gather(
            *(self._record_entry(source, c, backfill=backfill) for c in new),
            *(self._record_change(source, c, k, fp) for c, k, fp in changed),
            return_exceptions=True,
        )
        left_behind = [o for o in outcomes if o is not True]
        for failure in left_behind:
            if isinstance(failure, BaseException) and not isinstance(failure, _PageUnavailable):
                log.error("entry_failed", source_id=source.id, error=repr(failure))
        return EntriesRecorded(
            new_statements=sum(1 for o in outcomes[: len(new)] if o is True),
            complete=not left_behind,
        )

    async def retract_deleted(self, source: Source, parsed: ParsedFeed) -> None:
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
            post, error = await read_post(candidate, self._pool, self._config.extract.timeout)
            return post, error, None
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




def _merge(*groups: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for group in groups for item in group if item))

