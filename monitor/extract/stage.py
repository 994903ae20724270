"""The extract stage as the event loop sees it: pool calls, their failures, their metrics.

`extract_article` and `enrich` are pure functions for the process pool; this
module is the one place that sends work there on behalf of polls and
re-checks, so both extract a page the same way (the source's rules included:
a re-check that ignored them would see an edit in every page).

* `article()` extracts a fetched page with the source's rules. A rule that
  matched nothing is logged and counted
  (`statement_monitor_extraction_rule_misses_total{source_id, rule}`); generic
  extraction stood in for it. A pool timeout is an `ExtractionError("timeout")`,
  retriable. A page over the structural caps (`limits.PageLimits`) is refused
  in the worker before it is parsed (`page_too_complex`); one that hits the
  worker's memory limit is `memory_limit`; neither is retriable.
* `enrich()` adds quotes, speakers, watchlist matches and figures to a
  statement. It cannot lose a statement: if enrichment fails or times out, the
  statement goes out without them, logged and counted
  (`statement_monitor_enrichment_failures_total{source_id}`). A step that
  raises (a bug: `enrich.Enrichment.failures`) drops only that step; it is
  logged once with its traceback and the URL and counted as
  `statement_monitor_extraction_failures_total{kind="internal", reason=<step>}`.
* A bug in `extract_article` itself becomes `InternalExtractionError` (reason
  `internal`) in the worker, traceback included: it is logged here once, and
  the pipeline falls back to the feed's content as for a broken page.
* `article_enriched()` is `article()` with the enrichment of the page's title
  and text done in the same pool call (`extract_and_enrich`), handed to
  `enrich()` later as `found`: one round trip per new statement instead of two,
  and no second wait behind every page queued for the pool (bench/backfill.py,
  1,500 pages: the first event 1.8 s after start instead of 5.6 s, throughput
  47.2 → 48.5 pages/s, within noise: workers spend ~0.3 ms of ~33 ms a page
  on enrichment). A call that
  times out is made again as `article()` alone, so a hang in enrichment costs
  one timeout and then behaves as before.
* `alert_topics()` and `note_hits()` route a recorded event with watchlist
  matches to the watchlists' topics, and count the hits.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

import structlog

from monitor import metrics
from monitor.errors import ExtractionError
from monitor.extract.enrich import Enrichment, enrich
from monitor.extract.isolate import InternalExtractionError, StepFailure, internal_error
from monitor.extract.limits import PageLimits, check_page
from monitor.extract.watchlists import alert_topics, applies_to
from monitor.models import Article, Event, ExtractionRules, Source, Statement, Watchlist
from monitor.pool import PoolMemoryExceeded, PoolTimeout, WorkerPool

__all__ = [
    "Enriched",
    "ExtractionStage",
    "extract_and_enrich",
    "extract_page",
    "matched_watchlists",
    "prepare_worker",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Enriched:
    """The enrichment of one (title, text), or why it failed (`error`)."""

    title: str | None
    text: str
    found: Enrichment | None
    error: str | None = None


def prepare_worker() -> None:
    """A pool worker's start: import feed parsing and extraction, load the language model.

    Done while the service starts (fetching its first feeds), so the first
    statement does not wait for half a second of imports in a worker that is
    already holding it."""
    import monitor.extract.article
    import monitor.sources  # noqa: F401  (feed parsing: feedparser and its kin)
    from monitor.extract.text import load_language_model

    load_language_model()


def extract_page(
    body: bytes,
    *,
    content_type: str | None = None,
    max_pdf_pages: int = 200,
    max_cpu_seconds: float | None = None,
    limits: PageLimits | None = None,
    **options: Any,
) -> Article:
    """`extract_article` for a page within `limits`, or `extract_pdf` for a PDF,
    imported in the worker that runs it.

    A PDF is known by its signature whatever `content_type` says, or by a PDF
    `content_type` (`monitor.extract.pdf.is_pdf`); this is the one place that
    tells the two apart. The pool sends functions by name, so the service's own
    process never imports Trafilatura or pypdf (about 30 MB of memory it would
    not use)."""
    from monitor.extract.pdf import extract_pdf, is_pdf

    if is_pdf(body, content_type):
        return extract_pdf(
            body,
            url=options.get("url"),
            feed_title=options.get("feed_title"),
            feed_published_at=options.get("feed_published_at"),
            max_pages=max_pdf_pages,
            max_cpu_seconds=max_cpu_seconds,
        )
    if limits is not None:  # HTML's structural caps (a PDF is bounded by its page count)
        check_page(body, limits)
    from monitor.extract.article import extract_article

    try:
        return extract_article(body, **options)
    except ExtractionError:
        raise
    except Exception as exc:  # a bug in extraction: the page falls back, with the traceback
        raise internal_error(exc) from None


def extract_and_enrich(
    body: bytes,
    *,
    url: str,
    feed_title: str | None,
    feed_published_at: dt.datetime | None,
    rules: ExtractionRules | None,
    watchlists: tuple[Watchlist, ...],
    limits: PageLimits | None = None,
    **document: Any,
) -> tuple[Article, Enriched]:
    """`extract_article`, then `enrich` of the statement it makes, in one pool task.

    The title enriched is the statement's: the page's, else the feed's
    (as `EntryStep._statement` picks it). An enrichment failure never costs the
    article: it is returned as `Enriched.error`.
    """
    article = extract_page(
        body,
        limits=limits,
        url=url,
        feed_title=feed_title,
        feed_published_at=feed_published_at,
        rules=rules,
        **document,  # content_type, max_pdf_pages, max_cpu_seconds: see extract_page
    )
    title = article.title or feed_title
    try:
        found = enrich(title, article.text, watchlists)
    except Exception as exc:  # a bug in enrichment must not cost the statement
        return article, Enriched(title, article.text, None, repr(exc))
    return article, Enriched(title, article.text, found)


class ExtractionStage:
    """Extraction and enrichment in the worker pool, for every caller alike."""

    def __init__(
        self,
        pool: WorkerPool,
        *,
        timeout: float,
        watchlists: tuple[Watchlist, ...] = (),
        max_pdf_pages: int = 200,
        limits: PageLimits | None = None,
    ) -> None:
        self._pool = pool
        self._timeout = timeout
        self._watchlists = watchlists
        # A PDF's reading stops on its own at 80 % of the task's deadline (a clean
        # `pdf_timeout`, the worker kept); the deadline is the last resort.
        self._pdf = {"max_pdf_pages": max_pdf_pages, "max_cpu_seconds": timeout * 0.8}
        self._limits = limits

    async def article(
        self,
        source: Source,
        body: bytes,
        *,
        url: str,
        feed_title: str | None = None,
        feed_published_at: dt.datetime | None = None,
        content_type: str | None = None,
    ) -> Article:
        """The page (or PDF) extracted with the source's rules.

        Raises:
            ExtractionError: from extraction (not retriable), or `timeout` (retriable).
        """
        try:
            article: Article = await self._pool.run(
                self._timeout,
                extract_page,
                body,
                limits=self._limits,
                url=url,
                feed_title=feed_title,
                feed_published_at=feed_published_at,
                rules=source.rules,
                content_type=content_type,
                **self._pdf,
            )
        except PoolMemoryExceeded as exc:
            raise ExtractionError("memory_limit", str(exc), retriable=False) from exc
        except PoolTimeout as exc:
            raise ExtractionError("timeout", str(exc), retriable=True) from exc
        except InternalExtractionError as exc:
            _log_internal(exc, source_id=source.id, url=url)
            raise
        self._note_rule_misses(source, url, article)
        return article

    async def article_enriched(
        self,
        source: Source,
        body: bytes,
        *,
        url: str,
        feed_title: str | None = None,
        feed_published_at: dt.datetime | None = None,
        content_type: str | None = None,
    ) -> tuple[Article, Enriched | None]:
        """`article()`, with the enrichment of its statement for `enrich(..., found=)`.

        Raises:
            ExtractionError: as `article()`.
        """
        try:
            article, enriched = await self._pool.run(
                self._timeout,
                extract_and_enrich,
                body,
                url=url,
                feed_title=feed_title,
                feed_published_at=feed_published_at,
                rules=source.rules,
                watchlists=self._applying(source),
                content_type=content_type,
                limits=self._limits,
                **self._pdf,
            )
        except PoolMemoryExceeded as exc:
            raise ExtractionError("memory_limit", str(exc), retriable=False) from exc
        except PoolTimeout:
            # Extraction or enrichment hung: extract alone, enrich apart (and time out
            # there, if it is enrichment that hangs), as the two separate calls do.
            found = await self.article(
                source,
                body,
                url=url,
                feed_title=feed_title,
                feed_published_at=feed_published_at,
                content_type=content_type,
            )
            return found, None
        except InternalExtractionError as exc:
            _log_internal(exc, source_id=source.id, url=url)
            raise
        self._note_rule_misses(source, url, article)
        return article, enriched

    def _note_rule_misses(self, source: Source, url: str, article: Article) -> None:
        for rule in article.rule_misses:
            metrics.EXTRACTION_RULE_MISSES.labels(source_id=source.id, rule=rule).inc()
            log.warning(
                "extraction_rule_missed",
                source_id=source.id,
                url=url,
                rule=rule,
                hint=f"the {rule} of this source matched nothing on the page; "
                "generic extraction was used instead (check the selector with "
                "`monitor extract URL --source ID`)",
            )

    async def enrich(
        self, source: Source, statement: Statement, found: Enriched | None = None
    ) -> Statement:
        """The statement with its quotes, speakers and watchlist matches.

        `found`, from `article_enriched()`, is used when it was made from the
        statement's title and text; otherwise they are enriched in the pool now.
        """
        if found is not None and (found.title, found.text) == (statement.title, statement.text):
            if found.found is None:
                return self._unenriched(source, statement, found.error or "unknown")
            return self._with_steps(source, statement, found.found)
        try:
            result: Enrichment = await self._pool.run(
                self._timeout, enrich, statement.title, statement.text, self._applying(source)
            )
        except PoolTimeout as exc:
            return self._unenriched(source, statement, f"timeout: {exc}")
        except Exception as exc:  # a bug in enrichment must not cost the statement
            return self._unenriched(source, statement, repr(exc))
        return self._with_steps(source, statement, result)

    def _with_steps(self, source: Source, statement: Statement, found: Enrichment) -> Statement:
        """The statement with what enrichment found; each step that failed is noted."""
        for failure in found.failures:
            _note_step_failure(failure, source_id=source.id, url=statement.url)
        if found.failures:
            metrics.ENRICHMENT_FAILURES.labels(source_id=source.id).inc()
        return _with(statement, found)

    def _applying(self, source: Source) -> tuple[Watchlist, ...]:
        return tuple(w for w in self._watchlists if applies_to(w, source.id))

    def alert_topics(self, event: Event) -> tuple[str, ...]:
        """The watchlist topics the event also goes to, by its `data.matches`."""
        return alert_topics(matched_watchlists(event), self._watchlists, exclude=event.topic)

    def note_hits(self, event: Event) -> None:
        """Count a recorded event's hits: one per watchlist it matched."""
        for watchlist in matched_watchlists(event):
            metrics.WATCHLIST_HITS.labels(watchlist=watchlist).inc()

    def _unenriched(self, source: Source, statement: Statement, error: str) -> Statement:
        metrics.ENRICHMENT_FAILURES.labels(source_id=source.id).inc()
        log.error(
            "enrichment_failed",
            source_id=source.id,
            url=statement.url,
            statement_id=statement.statement_id,
            error=error,
        )
        return statement


def _with(statement: Statement, found: Enrichment) -> Statement:
    return dataclasses.replace(
        statement,
        quotes=found.quotes,
        speakers=found.speakers,
        matches=found.matches,
        figures=found.figures,
    )


def _log_internal(exc: InternalExtractionError, *, source_id: str, url: str) -> None:
    """One log line for a bug in extraction; the pipeline counts it and falls back."""
    log.error(
        "extraction_internal_error",
        source_id=source_id,
        url=url,
        step="extract",
        error=str(exc),
        traceback=exc.traceback,
    )


def _note_step_failure(failure: StepFailure, *, source_id: str, url: str | None) -> None:
    """Count and log (once, with its traceback) an enrichment step that raised."""
    metrics.EXTRACTION_FAILURES.labels(
        source_id=source_id, reason=failure.step, kind="internal"
    ).inc()
    log.error(
        "extraction_internal_error",
        source_id=source_id,
        url=url,
        step=failure.step,
        error=failure.error,
        traceback=failure.traceback,
        hint="only this enrichment step was dropped; the statement went out without it",
    )


def matched_watchlists(event: Event) -> set[str]:
    """The ids of the watchlists in an event's `data.matches` (any event type)."""
    return {str(match["watchlist"]) for match in event.data.get("matches") or ()}
