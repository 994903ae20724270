"""The seed statement rendered as the page a defence ministry's English site serves.

`/work/shared/seed/official-statement-example.txt` is what a naive scraper made
of a Russian MoD briefing: navigation above, a server footer below. This module
turns it back into a realistic page (header navigation, social links,
breadcrumb, headline, article body, related-news sidebar, footer and the
"ServerCode=..." line) so extraction and integration tests run against HTML.

Public API (kept small: the lead's integration tests use it):

    seed_page_html() -> str
    SEED_TITLE, SEED_DATE, SEED_PATH, SEED_FIRST_SENTENCE, SEED_LAST_SENTENCE,
    SEED_QUOTATIONS

The seed file is read at import time from `<repo>/../shared/seed/`, or from
`$MONITOR_SHARED_DIR/seed/` when that variable is set (see tests/shared.py).
When it is absent the module still imports (the constants are empty) and
`seed_page_html()` skips the calling test, so only the tests that use the seed
are skipped on a fresh clone. All string constants are whitespace-collapsed,
the way the extracted text is.
"""

from __future__ import annotations

import datetime as dt
import html
import re

from tests.shared import SEED_FILE, have_shared, require_shared, shared_dir

__all__ = [
    "RELATED_NEWS",
    "SEED_DATE",
    "SEED_FIRST_SENTENCE",
    "SEED_LAST_SENTENCE",
    "SEED_PATH",
    "SEED_QUOTATIONS",
    "SEED_TITLE",
    "SITE_NAME",
    "seed_page_html",
]

SITE_NAME = "Ministry of Defence of the Russian Federation"
SEED_PATH = "/en/news/more.htm?id=12060468@egNews"
SEED_DATE = dt.date(2015, 10, 16)

# Teasers in the sidebar: none of them may leak into the extracted statement.
RELATED_NEWS = (
    "Russian Aerospace Forces aircraft hit 49 ISIS objects over the last 24 hours",
    "Deputy Defence Minister meets foreign military attaches in Moscow",
    "Black Sea Fleet frigate completes live-fire drills near Novorossiysk",
    "Army Games 2016: applications open for international teams",
)

_SERVER_FOOTER = "ServerCode=node3 isCompatibilityMode=false"
_SPACES = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[“\"A-Z])")


def _collapse(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _read_seed() -> tuple[str, tuple[str, ...]]:
    """Return (headline, body paragraphs) of the seed file, without nav and footer."""
    if not have_shared(*SEED_FILE):
        return "", ("",)  # seed_page_html() skips the test that needs it
    raw = shared_dir().joinpath(*SEED_FILE).read_text(encoding="utf-8")
    blocks = [_collapse(block) for block in re.split(r"\n\s*\n", raw) if block.strip()]
    # blocks[0] is the navigation + breadcrumb, blocks[1] the headline; the
    # last paragraph ends with the server footer glued on by the scraper.
    headline, *body = blocks[1:]
    last = body[-1]
    if _SERVER_FOOTER in last:
        last = last.replace(_SERVER_FOOTER, "").strip()
    body = [*body[:-1], last] if last else body[:-1]
    return headline, tuple(body)


def _quotations(paragraphs: tuple[str, ...]) -> tuple[str, ...]:
    """Paragraphs opening with “ hold one quotation, up to their last ”."""
    return tuple(p[: p.rindex("”") + 1] for p in paragraphs if p.startswith("“") and "”" in p)


SEED_TITLE, _PARAGRAPHS = _read_seed()
SEED_FIRST_SENTENCE = _SENTENCE_END.split(_PARAGRAPHS[0])[0]
SEED_LAST_SENTENCE = _SENTENCE_END.split(_PARAGRAPHS[-1])[-1]
SEED_QUOTATIONS = _quotations(_PARAGRAPHS)

_MENU = {
    "News": ("Official statements", "Briefings", "Press releases", "Mission in Syria"),
    "Ministry": ("Minister", "Deputy Ministers", "Structure", "History"),
    "Armed Forces": ("Ground Troops", "Aerospace Forces", "Navy", "Airborne Troops"),
    "Activity": ("Military education", "Sports", "International cooperation"),
    "Documents": ("Laws", "Presidential decrees", "Orders"),
    "Multimedia": ("Photo", "Video", "Infographics"),
}


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def _header() -> str:
    social = "".join(
        f'<li><a href="https://{host}/mod_russia" rel="nofollow">{name}</a></li>'
        for name, host in (
            ("Facebook", "www.facebook.com"),
            ("Twitter", "twitter.com"),
            ("Youtube", "www.youtube.com"),
            ("Instagram", "www.instagram.com"),
            ("VKontakte", "vk.com"),
            ("Odnoklassniki", "ok.ru"),
        )
    )
    menu = "".join(
        f'<li class="menu-item"><a href="/en/{section.lower().replace(" ", "_")}.htm">{section}</a>'
        '<ul class="submenu">'
        + "".join(
            f'<li><a href="/en/{section[:3].lower()}/{i}.htm">{sub}</a></li>'
            for i, sub in enumerate(subs)
        )
        + "</ul></li>"
        for section, subs in _MENU.items()
    )
    return (
        '<header id="header">'
        '<div class="top-links"><a href="/en/sitemap.htm">Site Map</a>'
        '<a href="http://mil.ru">Русская версия</a></div>'
        f'<ul class="social">{social}</ul>'
        f'<a class="logo" href="/en/index.htm"><img src="/images/logo_en.png" alt="{SITE_NAME}">'
        f"<span>{SITE_NAME}</span></a>"
        '<form class="search" action="/en/search.htm"><input name="q" placeholder="Search">'
        '<button type="submit">Search</button></form>'
        f'<nav id="menu"><ul>{menu}</ul></nav>'
        "</header>"
    )


def _breadcrumb() -> str:
    return (
        '<div class="breadcrumbs"><a href="/en/index.htm">Home</a>&nbsp; &lt; '
        '<a href="/en/mission_in_syria.htm">Mission in Syria</a>&nbsp; &lt; More</div>'
    )


def _article() -> str:
    paragraphs = "\n".join(f"<p>{_e(p)}</p>" for p in _PARAGRAPHS)
    return (
        '<div class="content">'
        f"{_breadcrumb()}"
        '<div class="date">16.10.2015 (18:45)</div>'
        f"<h1>{_e(SEED_TITLE)}</h1>"
        f'<div class="article">\n{paragraphs}\n</div>'
        '<div class="share"><span>Share:</span>'
        '<a href="#" class="print">Print version</a><a href="#" class="vk">VKontakte</a></div>'
        "</div>"
    )


def _sidebar() -> str:
    items = "".join(
        f'<li><span class="date">{16 - i}.10.2015</span>'
        f'<a href="/en/news/more.htm?id={12060460 - i}@egNews">{_e(title)}</a></li>'
        for i, title in enumerate(RELATED_NEWS)
    )
    return (
        '<aside class="sidebar"><h3>Related news</h3>'
        f'<ul class="news-list">{items}</ul>'
        '<a href="/en/news.htm" class="all">All news</a></aside>'
    )


def _footer() -> str:
    return (
        '<footer id="footer">'
        '<ul class="footer-links"><li><a href="/en/contacts.htm">Contacts</a></li>'
        '<li><a href="/en/terms.htm">Terms of use</a></li>'
        '<li><a href="/en/sitemap.htm">Site Map</a></li></ul>'
        f'<p class="copyright">© 2015 {SITE_NAME}. All rights reserved. '
        "Reproduction of materials requires a hyperlink to mil.ru.</p>"
        "</footer>"
        f"<!-- {_SERVER_FOOTER} -->"
        f'<div class="server-info">{_SERVER_FOOTER}</div>'
    )


def seed_page_html() -> str:
    """The seed statement as a full HTML page served at SEED_PATH on eng.mil.ru.

    Skips the calling test (fails under MONITOR_REQUIRE_SHARED=1) without the seed file."""
    require_shared(*SEED_FILE)
    title = _e(f"{SEED_TITLE} : {SITE_NAME}")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n'
        '<meta charset="utf-8">\n'
        f"<title>{title}</title>\n"
        f'<meta name="description" content="{html.escape(SEED_FIRST_SENTENCE)}">\n'
        '<meta name="keywords" content="Syria, Aerospace Forces, General Staff, briefing">\n'
        f'<meta property="og:title" content="{html.escape(f"{SEED_TITLE} : {SITE_NAME}")}">\n'
        f'<meta property="og:description" content="{html.escape(SEED_FIRST_SENTENCE)}">\n'
        f'<meta property="og:site_name" content="{SITE_NAME}">\n'
        '<meta property="og:type" content="article">\n'
        f'<meta property="og:url" content="http://eng.mil.ru{SEED_PATH}">\n'
        '<meta property="article:published_time" content="2015-10-16T18:45:00+03:00">\n'
        f'<link rel="canonical" href="{html.escape(SEED_PATH)}">\n'
        '<link rel="stylesheet" href="/css/main.css">\n'
        "<script>var _gaq = _gaq || []; _gaq.push(['_trackPageview']);</script>\n"
        "</head>\n<body>\n"
        f"{_header()}\n"
        f'<div id="main">{_article()}{_sidebar()}</div>\n'
        f"{_footer()}\n"
        "</body>\n</html>\n"
    )
