"""`monitor extract`: run the extraction stage on files or URLs, one JSON line each.

Prints the `data` fields of a statement event that extraction can fill, plus
`"input"` exactly as given. Every input is answered, each in isolation: a
failing input prints `{"input", "error": {"kind", "message"}}` and the command
goes on to the next. `kind` is the extraction reason (`not_html`, `empty`,
`fetch_http_4xx`, ...), `read_error` for a file that cannot be read, or
`internal` for a bug in extraction (then with the `step` that raised); an
enrichment step that raises leaves the rest of the line (its own field empty)
with the `error`. The exit status is 1 when any input has an `error`.

Extraction rules (README "Extraction rules") can be tried here before they go
into the config: `command_line_rules` merges the options with the rules of a
configured source, and each line then names the rules that matched nothing in
`"rule_misses"`.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from pathlib import Path
from typing import Any, TextIO

import cssselect

from monitor.config import Config
from monitor.errors import ExtractionError
from monitor.events import content_hash, figures_data, quotes_data, rfc3339, speakers_data
from monitor.extract.enrich import enrich
from monitor.extract.isolate import StepFailure
from monitor.extract.rules import compile_selector
from monitor.extract.stage import extract_page
from monitor.fetch import Fetcher
from monitor.fetch.browser import BrowserFetcher
from monitor.models import Article, ExtractionRules

__all__ = ["article_fields", "command_line_rules", "extract_inputs", "source_rules"]

_MAX_PAGE_BYTES = 20_000_000


def article_fields(article: Article, *, url: str | None) -> dict[str, Any]:
    """The event `data` fields that extraction and enrichment fill (not watchlists).

    An enrichment step that raised leaves its field empty and is described in
    `"error"` (kind `internal`).
    """
    found = enrich(article.title, article.text)
    fields: dict[str, Any] = {
        "url": article.canonical_url or url,
        "title": article.title,
        "text": article.text,
        "summary": article.description,
        "language": article.language,
        "published_at": rfc3339(article.published_at),
        "authors": list(article.authors),
        "tags": list(article.tags),
        "content_hash": content_hash(article.title, article.text),
        "quotes": quotes_data(found.quotes),
        "speakers": speakers_data(found.speakers),
        "figures": figures_data(found.figures),
        "media_type": article.media_type,
    }
    if found.failures:
        fields["error"] = _step_error(found.failures)
    return fields


def _step_error(failures: tuple[StepFailure, ...]) -> dict[str, str]:
    first = failures[0]
    steps = ", ".join(f.step for f in failures)
    return {"kind": "internal", "step": steps, "message": f"{first.error} (dropped: {steps})"}


def source_rules(config: Config, source_id: str) -> ExtractionRules | None:
    """The extraction rules of the configured source `source_id` (None if it has none).

    Raises:
        ValueError: no source has that id.
    """
    sources = config.resolved_sources()
    for source in sources:
        if source.id == source_id:
            return source.rules
    known = ", ".join(source.id for source in sources) or "none"
    raise ValueError(f"--source: no source has the id {source_id!r} (configured: {known})")


def command_line_rules(
    base: ExtractionRules | None,
    *,
    content_selector: str | None = None,
    title_selector: str | None = None,
    date_selector: str | None = None,
    date_format: str | None = None,
    remove_selectors: tuple[str, ...] = (),
) -> ExtractionRules | None:
    """`base` (a source's rules) with the options given on the command line.

    An option replaces the source's rule of the same name; `--remove-selector`s
    are added to the source's. None when no rule is left to apply.

    Raises:
        ValueError: a selector is not valid CSS, or a date format has no selector.
    """
    base = base or ExtractionRules()
    rules = ExtractionRules(
        content_selector=content_selector or base.content_selector,
        title_selector=title_selector or base.title_selector,
        date_selector=date_selector or base.date_selector,
        date_format=date_format or base.date_format,
        remove_selectors=(*base.remove_selectors, *remove_selectors),
    )
    for option, selector in (
        ("--content-selector", content_selector),
        ("--title-selector", title_selector),
        ("--date-selector", date_selector),
        *(("--remove-selector", item) for item in remove_selectors),
    ):
        _check_selector(option, selector)
    if rules.date_format and not rules.date_selector:
        raise ValueError("--date-format: needs --date-selector (the element it parses)")
    return rules if rules else None


def _check_selector(option: str, selector: str | None) -> None:
    if selector is None:
        return
    try:
        compile_selector(selector)
    except cssselect.SelectorError as exc:
        raise ValueError(f"{option}: not a valid CSS selector: {selector!r} ({exc})") from None


async def extract_inputs(
    inputs: tuple[str, ...],
    *,
    url: str | None,
    timeout: float,
    out: TextIO,
    rules: ExtractionRules | None = None,
    render: str = "http",
) -> int:
    """Extract each input in turn and print a JSON line for it. Returns the failure count.

    With `rules`, each line also lists the rules that matched nothing (`"rule_misses"`).
    """
    failures = 0
    # The user named these URLs: trust their origins as the service trusts its sources.
    urls = [item for item in inputs if item.lower().startswith(("http://", "https://"))]
    async with Fetcher(user_agent="statement-monitor-extract", trusted_origins=urls) as fetcher:
        browser = None
        if render == "browser":  # the same address policy, host slots and user agent
            browser = BrowserFetcher(
                guard=fetcher.guard, hosts=fetcher.hosts, user_agent="statement-monitor-extract",
                timeout=timeout,
            )
        for item in inputs:
            try:
                if browser is not None and item.lower().startswith(("http://", "https://")):
                    body, page_url = await _rendered(browser, item)
                else:
                    body, page_url = await _read(item, url=url, fetcher=fetcher, timeout=timeout)
                article = await asyncio.to_thread(  # a PDF too (extract_page tells)
                    extract_page, body, url=page_url, rules=rules
                )
                line: dict[str, Any] = {"input": item, **article_fields(article, url=page_url)}
                if rules:
                    line["rule_misses"] = list(article.rule_misses)
            except Exception as exc:  # each input in isolation: a bug answers this one only
                line = {"input": item, "error": _describe(exc)}
            failures += "error" in line
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.flush()
        if browser is not None:
            await browser.close()
    return failures


async def _rendered(browser: BrowserFetcher, item: str) -> tuple[bytes, str | None]:
    result = await browser.fetch(item, source_id="cli", max_bytes=_MAX_PAGE_BYTES)
    if result.error is not None:
        raise ExtractionError(result.error.kind, f"browser failed: {result.error.message}")
    return result.body, result.final_url


async def _read(
    item: str, *, url: str | None, fetcher: Fetcher, timeout: float
) -> tuple[bytes, str | None]:
    if item.lower().startswith(("http://", "https://")):
        result = await fetcher.fetch(
            item, source_id="cli", kind="page", timeout=timeout, max_bytes=_MAX_PAGE_BYTES
        )
        if result.error is not None:
            message = f"fetch failed: {result.error.message}"
            raise ExtractionError(f"fetch_{result.error.kind}", message)  # as the service counts
        return result.body, result.final_url
    return await asyncio.to_thread(Path(item).read_bytes), url


def _describe(exc: Exception) -> dict[str, str]:
    """`{"kind", "message"}` of an input's failure (and the `step` of a bug)."""
    if isinstance(exc, ExtractionError):
        return {"kind": exc.reason, "message": str(exc)}
    if isinstance(exc, OSError):
        message = f"cannot read {exc.filename or 'input'}: {exc.strerror or exc}"
        return {"kind": "read_error", "message": message}
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:  # where the bug is, for the report: "at quotes.py:540 in _span_text"
        last = frames[-1]
        where = f" at {Path(last.filename).name}:{last.lineno} in {last.name}"
    return {"kind": "internal", "step": "extract", "message": f"{exc!r}{where}"}
