"""Which links of a listing page may be statements, by their URL alone.

`statement_url` is not a test that a URL is an article (an id-less slug may
be one: the structure of the page decides that, see listing_blocks.py). It
is a test that the URL is not a section: a topic, category, "issues", tag,
taxonomy, author, contact or search page, a page of the list itself
(`/page/2`, `?page=`, `?start=`, Joomla `limitstart`, Bitrix `PAGEN_1`,
Joomla `view=category`), a static file, the site root or the listing page.
Every real article form passes: query-string articles (Joomla
`index.php?option=com_content&view=article&id=314:slug`, ColdFusion
`index.cfm?...ContentRecord_id=...`, WordPress `?p=123`, `.aspx?id=`), and
paths ending in `.html`, `.htm`, `.cfm`, `.aspx` or `.php`.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

__all__ = ["statement_url"]

_FILES = re.compile(
    r"\.(?:css|js|png|jpe?g|gif|svg|webp|ico|zip|mp[34]|xml|json|rss|atom)$", re.IGNORECASE
)
# Path segments of sections that are never one statement.
_SECTION_SEGMENTS = frozenset(
    {
        "tag", "tags", "category", "categories", "topic", "topics", "issue", "issues",
        "subject", "subjects", "theme", "themes", "author", "authors", "search", "login",
        "register", "feed", "feeds", "rss", "about", "about-us", "contact", "contacts",
        "contact-us", "privacy", "terms", "sitemap", "cookies", "cookie", "accessibility",
        "subscribe", "newsletter", "rubric", "rubrics", "tegi", "taxonomy",
    }
)  # fmt: skip
_PAGINATION_PATH = re.compile(r"/(?:page|seite|pagina|strana)/?\d+/?$|/p\d+/?$", re.IGNORECASE)
_INDEX_PAGE = re.compile(r"^(?:index|default)\.\w+$", re.IGNORECASE)
# Query keys that page through a list or name a section, never an article.
_SECTION_KEYS = frozenset(
    {
        "page", "paged", "pg", "limitstart", "start", "offset", "tag", "tags", "category",
        "cat", "topic", "issue", "issues", "s", "q", "search", "sectionid", "catid_only",
    }
)  # fmt: skip
_SECTION_VIEWS = frozenset(
    {"category", "categories", "section", "tag", "tags", "featured", "archive", "search"}
)
# Query keys that name one article.
_ARTICLE_KEYS = re.compile(
    r"^(?:id|p|nid|aid|newsid|news_id|articleid|article_id|itemid|contentrecord_id|"
    r"elementid|element_id|docid|releaseid|pressreleaseid|postid|story_id|storyid)$",
    re.IGNORECASE,
)
_PAGEN = re.compile(r"^pagen_\d+$", re.IGNORECASE)


def statement_url(url: str, page_url: str) -> bool:
    """True unless a same-site URL names a section, a file, a page of the list or the site root.

    Not a test that the URL is an article (an id-less slug may be one): the
    structure of the page decides that. A test that it is not a topic,
    category, "issues", tag, author, contact or pagination page.
    """
    parts = urlsplit(url)
    page = urlsplit(page_url)
    if (parts.path.rstrip("/"), parts.query) == (page.path.rstrip("/"), page.query):
        return False
    segments = [s.lower() for s in parts.path.split("/") if s]
    if not segments and not parts.query:
        return False
    if _FILES.search(parts.path) or _PAGINATION_PATH.search(parts.path):
        return False
    if any(segment in _SECTION_SEGMENTS for segment in segments):
        return False
    query = parse_qsl(parts.query, keep_blank_values=True)
    if segments and _INDEX_PAGE.match(segments[-1]) and not query:
        return False
    article = any(_ARTICLE_KEYS.match(key) for key, _ in query)
    for key, value in query:
        low = key.lower()
        if low == "view" and value.lower() in _SECTION_VIEWS:
            return False
        if low == "layout" and value.lower() == "blog":
            return False
        if _PAGEN.match(low) or (low in _SECTION_KEYS and not article):
            return False
    return True
