"""`monitor extract`: run the extraction stage on files or URLs, one JSON line each.

Prints the `data` fields of a statement event that extraction can fill, plus
`"input"` exactly as given. A failing input prints `{"input", "error"}` and
the command goes on to the next.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, TextIO

from monitor.errors import ExtractionError
from monitor.events import content_hash, rfc3339
from monitor.extract import extract_article
from monitor.fetch import Fetcher
from monitor.models import Article

__all__ = ["article_fields", "extract_inputs"]

_MAX_PAGE_BYTES = 20_000_000


def article_fields(article: Article, *, url: str | None) -> dict[str, Any]:
    """The event `data` fields that extraction fills."""
    return {
        "url": article.canonical_url or url,
        "title": article.title,
        "text": article.text,
        "summary": article.description,
        "language": article.language,
        "published_at": rfc3339(article.published_at),
        "authors": list(article.authors),
        "tags": list(article.tags),
        "content_hash": content_hash(article.title, article.text),
    }


async def extract_inputs(
    inputs: tuple[str, ...], *, url: str | None, timeout: float, out: TextIO
) -> int:
    """Extract each input in turn and print a JSON line for it. Returns the failure count."""
    failures = 0
    # The user named these URLs: trust their origins as the service trusts its sources.
    urls = [item for item in inputs if item.lower().startswith(("http://", "https://"))]
    async with Fetcher(user_agent="statement-monitor-extract", trusted_origins=urls) as fetcher:
        for item in inputs:
            try:
                body, page_url = await _read(item, url=url, fetcher=fetcher, timeout=timeout)
                article = await asyncio.to_thread(extract_article, body, url=page_url)
                line: dict[str, Any] = {"input": item, **article_fields(article, url=page_url)}
            except (ExtractionError, OSError) as exc:
                failures += 1
                line = {"input": item, "error": _describe(exc)}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.flush()
    return failures


async def _read(
    item: str, *, url: str | None, fetcher: Fetcher, timeout: float
) -> tuple[bytes, str | None]:
    if item.lower().startswith(("http://", "https://")):
        result = await fetcher.fetch(
            item, source_id="cli", kind="page", timeout=timeout, max_bytes=_MAX_PAGE_BYTES
        )
        if result.error is not None:
            raise ExtractionError(result.error.kind, f"fetch failed: {result.error.message}")
        return result.body, result.final_url
    return await asyncio.to_thread(Path(item).read_bytes), url


def _describe(exc: Exception) -> str:
    if isinstance(exc, ExtractionError):
        return f"{exc.reason}: {exc}"
    if isinstance(exc, OSError):
        return f"cannot read {exc.filename or 'input'}: {exc.strerror or exc}"
    return str(exc)
