"""`monitor check --probe`: fetch each source once, parse it here, print what was found.

This is how a user debugs a new source: for every configured source, one row
with the detected kind (the parsed format), the HTTP status (or error kind),
the number of items, the newest item's date, the WebSub hub the feed names
and the robots.txt verdict. For a listing page, it also shows the first
`SAMPLES` items it would take (date, title, URL) and why: which block of the
page was chosen as the main list, and on what figures (listing_blocks.py),
so a user sees what the heuristic picked before trusting it; for a Telegram
channel, its newest posts. Nothing is
recorded: the state store, the outbox and Kafka are not touched, and no
statement page is fetched.

The probe is as polite as the service: the same Fetcher (per-host limits,
address policy) and the same robots.txt rules; a feed that robots.txt
disallows is not fetched. Parsing runs in this process (one feed at a time
is no work for a pool).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.config import Config
from monitor.fetch import Fetcher
from monitor.fetch.robots import RobotsCache, origin_of
from monitor.models import Source
from monitor.sources import parse_document
from monitor.sources.listing import explain_listing

__all__ = ["ProbeRow", "format_table", "probe", "probe_sources"]

_HEADERS = ("source", "kind", "status", "items", "newest", "hub", "robots")
SAMPLES = 5  # items shown per listing source (and Telegram channel)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeRow:
    """What one fetch of one source showed."""

    source_id: str
    kind: str  # the parsed format ("rss20", "atom10", "json1.1", ...), "-" if none
    status: str  # the HTTP status, else the error kind; "skipped" when robots.txt said no
    items: int | None
    newest: dt.datetime | None
    hub: str | None
    robots: str  # "allowed (robots.txt 200)", "disallowed (...)", "ignored: <reason>"
    ok: bool  # fetched and parsed into at least one item, or an empty but valid feed
    error: str | None = None
    # Listing pages: the first items (published_at, title, url), and why they were taken.
    samples: tuple[tuple[dt.datetime | None, str | None, str | None], ...] = ()
    why: str | None = None


async def probe(config: Config) -> list[ProbeRow]:
    """Fetch and parse every configured source once, with a fetcher built like the service's."""
    sources = config.resolved_sources()
    from monitor.app import build_fetcher  # the composition root builds it, for both

    fetcher = build_fetcher(config)
    reasons = {s.id: s.robots_reason for s in config.sources}
    async with fetcher:
        robots = RobotsCache(fetcher, user_agent=config.fetch.user_agent)
        return await probe_sources(
            sources,
            fetcher=fetcher,
            robots=robots,
            max_bytes=config.fetch.max_feed_bytes,
            robots_reasons=reasons,
        )


async def probe_sources(
    sources: Sequence[Source],
    *,
    fetcher: Fetcher,
    robots: RobotsCache,
    max_bytes: int,
    robots_reasons: dict[str, str | None] | None = None,
) -> list[ProbeRow]:
    """One row per source, in the order given; the sources are probed concurrently."""
    reasons = robots_reasons or {}
    return list(
        await asyncio.gather(
            *(_probe_one(s, fetcher, robots, max_bytes, reasons.get(s.id)) for s in sources)
        )
    )


async def _probe_one(
    source: Source, fetcher: Fetcher, robots: RobotsCache, max_bytes: int, reason: str | None
) -> ProbeRow:
    if source.robots:
        origin = origin_of(source.url)
        verdict = (
            await robots.verdict(origin, timeout=source.timeout) if origin is not None else None
        )
        allowed = verdict is None or verdict.allows(source.url, robots.user_agent)
        summary = verdict.summary if verdict is not None else "not http(s)"
        robots_text = f"{'allowed' if allowed else 'disallowed'} ({summary})"
        if not allowed:
            return ProbeRow(
                source_id=source.id,
                kind="-",
                status="skipped",
                items=None,
                newest=None,
                hub=None,
                robots=robots_text,
                ok=False,
                error="robots.txt disallows the feed",
            )
    else:
        robots_text = f"ignored: {reason or 'robots: false'}"
    result = await fetcher.fetch(
        source.url, source_id=source.id, kind="feed", timeout=source.timeout, max_bytes=max_bytes
    )
    status = str(result.status) if result.status else "-"
    if result.error is not None:
        return ProbeRow(
            source_id=source.id,
            kind="-",
            status=f"{result.error.kind} ({status})" if result.status else result.error.kind,
            items=None,
            newest=None,
            hub=None,
            robots=robots_text,
            ok=False,
            error=result.error.message,
        )
    parsed = parse_document(
        result.body,
        source_id=source.id,
        feed_url=result.final_url,
        content_type=result.content_type,
        kind=source.kind,
        selector=source.selector,
        link_pattern=source.link_pattern,
    )
    dates = [c.published_at for c in parsed.entries if c.published_at is not None]
    samples: tuple[tuple[dt.datetime | None, str | None, str | None], ...] = ()
    why = None
    if parsed.format == "listing":
        samples = tuple((c.published_at, c.title, c.url) for c in parsed.entries[:SAMPLES])
        why = explain_listing(
            result.body,
            feed_url=result.final_url,
            content_type=result.content_type,
            selector=source.selector,
            link_pattern=source.link_pattern,
        )
    elif parsed.format == "telegram":  # the preview lists posts oldest first
        newest = list(reversed(parsed.entries))[:SAMPLES]
        samples = tuple((c.published_at, c.title, c.url) for c in newest)
        why = f"the newest posts of the channel's web preview ({len(parsed.entries)} on the page)"
    return ProbeRow(
        source_id=source.id,
        kind=parsed.format,
        status=status,
        items=len(parsed.entries),
        newest=max(dates) if dates else None,
        hub=parsed.hub,
        robots=robots_text,
        ok=parsed.error is None or bool(parsed.entries),
        error=parsed.error,
        samples=samples,
        why=why,
    )


def format_table(rows: Sequence[ProbeRow]) -> str:
    """A plain-text table, one line per source, then one line per problem."""
    cells = [
        (
            r.source_id,
            r.kind,
            r.status,
            "-" if r.items is None else str(r.items),
            r.newest.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if r.newest else "-",
            r.hub or "-",
            r.robots,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [_HEADERS, *cells]) for i in range(len(_HEADERS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [_HEADERS, *cells]
    ]
    lines.extend(f"{r.source_id}: {r.error}" for r in rows if r.error)
    for row in rows:
        lines.extend(_samples(row))
    return "\n".join(lines)


def _samples(row: ProbeRow) -> list[str]:
    """The items a listing source would take, and why, under the table."""
    if row.why is None:
        return []
    lines = [f"{row.source_id}: {row.why}"]
    for published, title, url in row.samples:
        when = published.astimezone(dt.UTC).strftime("%Y-%m-%d") if published else "no date   "
        lines.append(f"  {when}  {title or '(no title)'}  {url}")
    if not row.samples:
        lines.append("  (no items)")
    return lines
