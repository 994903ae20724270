"""Telegram channels in a poll: catching up with `?before=` pages, and deleted posts.

The pipeline reads a channel's preview page as it reads a feed (fetch, parse
in the pool, detect, record). Two things are the channel's own, and live here:

Catching up (`catch_up`). The preview shows only a channel's latest posts
(about 20). When none of them is known yet (after downtime, or a burst of
posts between two polls), the posts before the oldest one are read with
`?before=<id>`, page after page, until a page holds a known post. At first
sight that happens only with `backfill: true`. Paging is bounded: at most
`max_pages` pages per poll, and it stops on an empty page or one that does not
go further back (ids skipped by deletions cannot make it loop). What is read
is recorded in the same poll, before the validators, as for any document.

Posts (`read_post`). A post is its own statement: no page is fetched; its HTML
is made an article in the pool, and a pool timeout falls back to the feed's
text with `extraction_error` "timeout: ...", as a broken page does.

Deletions (`retract_deleted`). A post id missing between two posts the page
still lists was deleted (ids only grow). A published post of this source
with such an id, not retracted, and posted within the source's
`recheck_window`, is retracted: `statement.retracted` with its last known
title and text, once. A post that has merely scrolled off the page lies
outside the listed range and is never retracted. (Edits need nothing here:
an edited post's text changes its fingerprint, and the pipeline records the
next version as `statement.updated` with the diff.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from monitor import metrics
from monitor.events import build_retraction_event, encode_record, parse_rfc3339
from monitor.extract.post import post_article
from monitor.models import Article, Candidate, ParsedFeed, Source
from monitor.pool import PoolTimeout, WorkerPool
from monitor.sources.base import dedupe
from monitor.sources.telegram import page_url, post_id
from monitor.state import StateStore, VersionRow

__all__ = ["MAX_GAP", "catch_up", "deleted_posts", "read_post", "retract_deleted"]

log = structlog.get_logger(__name__)

MAX_GAP = 2_000  # missing ids looked up per poll, at most (a channel that deleted a great deal)

PageReader = Callable[[str], Awaitable[ParsedFeed | None]]


def _oldest(entries: Sequence[Candidate]) -> int | None:
    ids = [i for i in (post_id(c) for c in entries) if i is not None]
    return min(ids) if ids else None


def _any_known(store: StateStore, source_id: str, entries: Sequence[Candidate]) -> bool:
    return bool(store.known(source_id, [c.key for c in entries if c.key]))


async def catch_up(
    source: Source, first: ParsedFeed, *, url: str, store: StateStore, read_page: PageReader
) -> ParsedFeed:
    """`first` with the older posts a poll must not miss, read with `?before=<id>`."""
    first_sight = not store.has_seen(source.id)
    if first_sight and not source.backfill:
        return first  # the current page is recorded silently; nothing older matters
    entries = list(first.entries)
    page = first.entries
    oldest = _oldest(page)
    pages = 1
    while oldest is not None and (first_sight or not _any_known(store, source.id, page)):
        if pages >= source.max_pages:
            log.warning(
                "telegram_catch_up_limit",
                source_id=source.id,
                url=url,
                pages=pages,
                oldest_read=oldest,
                hint="older posts were not read: raise max_pages to read further back",
            )
            break
        parsed = await read_page(page_url(url, before=oldest))
        pages += 1
        older = _oldest(parsed.entries) if parsed is not None else None
        if parsed is None or older is None or older >= oldest:
            break  # the channel's start, an error, or no progress: never page forever
        entries = [*parsed.entries, *entries]
        page, oldest = parsed.entries, older
    if pages > 1:
        log.info("telegram_caught_up", source_id=source.id, url=url, pages=pages)
    return ParsedFeed(format=first.format, title=first.title, entries=dedupe(entries))


async def read_post(
    post: Candidate, pool: WorkerPool, timeout: float
) -> tuple[Article | None, str | None]:
    """The post made an article in the pool, or (None, why) if that timed out."""
    fields = {"title": post.title, "url": post.url, "published_at": post.published_at}
    try:
        return await pool.run(timeout, post_article, post.content_html, **fields), None
    except PoolTimeout as exc:
        return None, f"timeout: {exc}"


def deleted_posts(
    source: Source, parsed: ParsedFeed, store: StateStore, *, now: dt.datetime
) -> list[dict[str, Any]]:
    """The last published data of each post deleted between two posts still listed."""
    listed = {i: c for c in parsed.entries if (i := post_id(c)) is not None}
    if len(listed) < 2:
        return []
    low, high = min(listed), max(listed)
    prefix = (listed[low].url or "").rsplit("/", 1)[0]
    missing = [i for i in range(low + 1, high) if i not in listed][:MAX_GAP]
    known = store.known(source.id, [f"{prefix}/{i}" for i in missing])
    window_start = now - dt.timedelta(seconds=source.recheck_window)
    found = []
    for record in known.values():
        if not record.published or record.retracted:
            continue
        data = store.last_published(record.statement_id)
        if data is None:
            continue
        posted = parse_rfc3339(data.get("published_at")) or parse_rfc3339(data.get("detected_at"))
        if posted is not None and posted < window_start:
            continue  # deleted long after: outside the window, as for re-checks
        found.append(data)
    return found


async def retract_deleted(
    source: Source,
    parsed: ParsedFeed,
    *,
    store: StateStore,
    now: dt.datetime,
    wait_for_room: Callable[[], Awaitable[None]],
    notify: Callable[[], None],
    alert_topics: Callable[[Any], tuple[str, ...]],
) -> int:
    """Record `statement.retracted` for each deleted post (`deleted_posts`). How many."""
    retracted = 0
    for data in deleted_posts(source, parsed, store, now=now):
        event = build_retraction_event(data, topic=source.topic, retracted_at=now)
        key, value, headers = encode_record(event)
        await wait_for_room()
        recorded = store.record_version(
            VersionRow(
                statement_id=str(data["statement_id"]),
                source_id=source.id,
                previous_version=int(data["version"]),
                version=int(event.data["version"]),
                content_hash=str(event.data["content_hash"]),
                entry_fingerprint=None,
                title=event.data.get("title"),
                text=event.data.get("text"),
                data=event.data,
                event_id=event.id,
                topic=event.topic,
                key=key,
                value=value,
                headers=headers,
                retracted_at=now.timestamp(),
                alert_topics=alert_topics(event),
            )
        )
        if not recorded:
            continue
        notify()
        retracted += 1
        metrics.STATEMENTS_RETRACTED.labels(source_id=source.id).inc()
        log.info(
            "statement_retracted",
            source_id=source.id,
            url=data.get("url"),
            statement_id=data["statement_id"],
            reason="deleted from the channel",
        )
    return retracted
