"""A post that is its own statement (a Telegram post): its text in, an `Article` out.

There is no page to fetch and extract: the channel's preview carried the
whole post. What extraction adds here is the language, detected from the text
(py3langid, as for pages), so that a post reaches consumers as a page does.
Pure and picklable: it runs in the worker pool, where the model is loaded.
"""

from __future__ import annotations

import datetime as dt

from monitor.extract.text import detect_language
from monitor.models import Article
from monitor.sources.base import plain_text

__all__ = ["post_article"]


def post_article(
    content_html: str | None,
    *,
    title: str | None,
    url: str | None,
    published_at: dt.datetime | None,
) -> Article:
    """The post as an article: its text with line breaks, its title, its language."""
    text = plain_text(content_html, html_markup=True, single_line=False) or ""
    return Article(
        title=title,
        text=text,
        language=detect_language(text) if text else None,
        published_at=published_at,
        canonical_url=url,
    )
