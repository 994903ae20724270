"""Re-checks: published statements' pages fetched again, to catch edits and retractions.

One background task for all statements (never one per statement). Every `tick`
seconds it asks the state store for a small batch of statements that are due:
published, not retracted, first detected within their source's
`recheck_window`, and not checked for `recheck_interval`. Sources are grouped
by their (interval, window) pair, so a tick costs one indexed query per
distinct pair, not one per source. Each page is fetched through the shared
Fetcher, one after the other, so per-host politeness (slots and delays) and
robots.txt apply as to any page; a batch per tick keeps the rate low.

Outcomes of one re-check:
- 404 or 410, or a redirect that ends on the site's home page (path "/" or
  empty, same host): `.retracted`, once, with the last known title and text;
- the page extracts to a different title or text (`content_hash`): `.updated`;
- anything else (unchanged, a transient error, a 4xx other than 404/410,
  robots.txt disallowing): nothing now; the statement is due again after
  `recheck_interval` while within its window.

`last_checked_at` is written before the fetch, so a crash or a shutdown moves
the schedule on, and the next version with its outbox row is written in one
transaction, guarded by the version it replaces (a poll that recorded an edit
in between wins; this re-check then writes nothing). Everything is in the
state store, so re-checks survive restarts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import structlog

from monitor import metrics
from monitor.config import Config
from monitor.errors import ExtractionError
from monitor.events import (
    build_retraction_event,
    build_update_event,
    content_hash,
    encode_record,
    parse_rfc3339,
    statement_data,
)
from monitor.extract.limits import page_limits
from monitor.extract.stage import ExtractionStage
from monitor.fetch import Fetcher
from monitor.fetch.robots import RobotsCache
from monitor.models import Article, Event, Source, Statement
from monitor.outbox import OutboxRelay
from monitor.pool import WorkerPool
from monitor.state import DueStatement, StateStore, VersionRow

__all__ = ["RETRACTED_STATUSES", "Rechecker", "is_home_redirect"]

log = structlog.get_logger(__name__)

RETRACTED_STATUSES = frozenset({404, 410})
BATCH = 10  # statements re-checked per tick, at most
MAX_TICK = 2.0  # seconds between looks at the state store


def is_home_redirect(url: str, final_url: str) -> bool:
    """Whether a fetch of `url` ended, through redirects, on the home page of its site."""
    start, end = urlsplit(url), urlsplit(final_url)
    return (
        start.path not in ("", "/")
        and end.path in ("", "/")
        and not end.query
        and start.hostname == end.hostname
    )


class Rechecker:
    """The one task that re-checks recently published statements."""

    def __init__(
        self,
        config: Config,
        sources: list[Source],
        *,
        store: StateStore,
        fetcher: Fetcher,
        pool: WorkerPool,
        outbox: OutboxRelay,
        robots: RobotsCache | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        owns: Callable[[str], bool] | None = None,
    ) -> None:
        self._config = config
        # With coordination: only the sources this instance polls now are re-checked.
        self._owns = owns
        self._sources = {source.id: source for source in sources}
        self._store = store
        self._extract = ExtractionStage(
            pool,
            timeout=config.extract.timeout,
            watchlists=config.resolved_watchlists(),
            max_pdf_pages=config.extract.max_pdf_pages,
            limits=page_limits(config.extract),
        )
        self._outbox = outbox
        self._robots = robots or RobotsCache(fetcher, user_agent=config.fetch.user_agent)
        self._now = now
        groups: dict[tuple[float, float], list[str]] = {}
        for source in sources:
            if source.kind == "telegram":
                continue  # its posts are re-read on the channel's page (telegram_poll.py)
            groups.setdefault((source.recheck_interval, source.recheck_window), []).append(
                source.id
            )
        self._groups = groups
        shortest = min((interval for interval, _ in groups), default=MAX_TICK)
        self.tick = max(0.1, min(MAX_TICK, shortest / 2))

    async def run(self) -> None:
        """Re-check due statements until cancelled."""
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recheck_crashed")  # a bug must not stop the re-checks for good
            await asyncio.sleep(self.tick)

    async def run_once(self) -> int:
        """One batch: re-check what is due now. Returns how many were checked."""
        due: list[DueStatement] = []
        now = time.time()
        for (interval, window), all_ids in self._groups.items():
            source_ids = all_ids if self._owns is None else [i for i in all_ids if self._owns(i)]
            if not source_ids:
                continue
            due.extend(
                self._store.due_for_recheck(
                    source_ids, interval=interval, window=window, limit=BATCH - len(due), now=now
                )
            )
            if len(due) >= BATCH:
                break
        self._store.mark_checked([d.statement_id for d in due], now)
        for statement in due:
            outcome = await self.recheck(statement)
            metrics.RECHECKS.labels(source_id=statement.source_id, outcome=outcome).inc()
        return len(due)

    async def recheck(self, due: DueStatement) -> str:
        """Fetch one statement's page again; record an update or a retraction. The outcome."""
        source = self._sources[due.source_id]
        page = await self._robots.fetch_page(
            source, due.url, max_bytes=self._config.fetch.max_page_bytes
        )
        if page is None:
            return "robots"
        if page.status in RETRACTED_STATUSES or (
            page.ok and is_home_redirect(due.url, page.final_url)
        ):
            if due.data.get("extraction_error"):
                # Published from the feed's text because the page could not be had from
                # the start: a page that never was cannot be withdrawn.
                return "never_extracted"
            return await self._retract(source, due, reason=f"HTTP {page.status}")
        if page.error is not None:
            log.info(
                "recheck_failed",
                source_id=source.id,
                url=due.url,
                kind=page.error.kind,
                error=page.error.message,
            )
            return page.error.kind
        previous = due.data
        try:
            article = await self._extract.article(
                source,
                page.body,
                url=page.final_url,
                feed_title=previous.get("title"),
                feed_published_at=parse_rfc3339(previous.get("published_at")),
                content_type=page.content_type,
            )
        except ExtractionError as exc:
            # The page is there but yields no statement now (a timeout, an error page
            # served with 200): not a retraction, and not an edit. Try again later.
            log.info(
                "recheck_failed", source_id=source.id, url=due.url, kind=exc.reason, error=str(exc)
            )
            return exc.reason
        statement = _next_version(previous, article, self._now())
        if statement.content_hash == due.content_hash:
            return "unchanged"
        statement = await self._extract.enrich(source, statement)
        event = build_update_event(previous, statement, topic=source.topic)
        if not await self._record(source, due, statement_data(statement), event):
            return "superseded"
        metrics.STATEMENTS_UPDATED.labels(source_id=source.id).inc()
        log.info(
            "statement_updated",
            source_id=source.id,
            url=due.url,
            statement_id=due.statement_id,
            version=statement.version,
            fields=event.data["changes"]["fields"],
            by="recheck",
        )
        return "updated"

    async def _retract(self, source: Source, due: DueStatement, *, reason: str) -> str:
        event = build_retraction_event(due.data, topic=source.topic, retracted_at=self._now())
        if not await self._record(source, due, event.data, event):
            return "superseded"
        metrics.STATEMENTS_RETRACTED.labels(source_id=source.id).inc()
        log.info(
            "statement_retracted",
            source_id=source.id,
            url=due.url,
            statement_id=due.statement_id,
            reason=reason,
        )
        return "retracted"

    async def _record(
        self, source: Source, due: DueStatement, data: dict[str, Any], event: Event
    ) -> bool:
        key, value, headers = encode_record(event, max_bytes=self._config.kafka.max_event_bytes)
        await self._outbox.wait_for_room()
        recorded = self._store.record_version(
            VersionRow(
                statement_id=due.statement_id,
                source_id=source.id,
                previous_version=due.version,
                version=int(data["version"]),
                content_hash=str(data["content_hash"]),
                entry_fingerprint=None,  # keep the feed's
                title=data.get("title"),
                text=data.get("text"),
                data=data,
                event_id=event.id,
                topic=event.topic,
                key=key,
                value=value,
                headers=headers,
                retracted_at=event.time.timestamp() if "retracted_at" in data else None,
                alert_topics=self._extract.alert_topics(event),
            )
        )
        if recorded:
            self._outbox.notify()
            self._extract.note_hits(event)
        return recorded


def _next_version(previous: dict[str, Any], article: Article, now: dt.datetime) -> Statement:
    """The statement as the page reads now: the last published data with the new extraction."""
    title = article.title or previous.get("title")
    text = article.text
    return Statement(
        statement_id=str(previous["statement_id"]),
        source_id=str(previous["source_id"]),
        source_name=str(previous.get("source_name") or previous["source_id"]),
        feed_url=str(previous.get("feed_url") or ""),
        url=previous.get("url"),
        guid=previous.get("guid"),
        title=title,
        text=text,
        summary=previous.get("summary"),
        language=article.language or previous.get("language"),
        published_at=parse_rfc3339(previous.get("published_at")),
        detected_at=now,
        authors=tuple(previous.get("authors") or ()),
        tags=tuple(previous.get("tags") or ()),
        content_hash=content_hash(title, text),
        version=int(previous["version"]) + 1,
        backfill=False,
        extraction_error=None,
        media_type=article.media_type,
        sources=tuple(previous.get("sources") or ()),
    )
