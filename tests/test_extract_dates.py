"""The statement's own date: `monitor.extract.dates` and `extract_article`'s `published_at`."""

from __future__ import annotations

import datetime as dt

import lxml.html
import pytest

from monitor.extract.article import extract_article
from monitor.extract.dates import find_lead_date, read_page

BODY = (
    "<p>The ministry said the delegation would meet its counterparts to discuss the security "
    "situation in the region and the next steps of the joint working group on Monday.</p>"
    "<p>The sides agreed to continue contacts at the expert level and to report on the progress "
    "made at the next ministerial meeting, according to the statement.</p>"
)
SIDEBAR = (
    '<aside class="sidebar"><h2>Latest</h2><ul><li>October 23, 2015 <a href="/a">Other</a></li>'
    '<li>23.10.2015 <a href="/b">Another</a></li></ul></aside>'
)
FOOTER = "<footer><p>© 2026 Ministry. All rights reserved.</p></footer>"


def page(lead: str, *, head: str = "", lang: str = "en") -> str:
    return (
        f'<html lang="{lang}"><head><title>Statement | Ministry</title>{head}</head><body>'
        f'<nav><a href="/">Home</a></nav><main><h1>Statement on the talks</h1>{lead}{BODY}'
        f"</main>{SIDEBAR}{FOOTER}</body></html>"
    )


@pytest.mark.parametrize(
    ("lead", "lang", "expected"),
    [
        ("<p>MOSCOW, October 19, 2015 – The Chief of the General Staff briefed attaches.</p>",
         "en", "2015-10-19"),
        ('<p class="date">Pressemitteilung vom 12.03.2024</p>', "de", "2024-03-12"),
        ("<p>Publié le 3 mars 2024</p>", "fr", "2024-03-03"),
        ("<div>19 октября 2015 г. (14:05)</div>", "ru", "2015-10-19"),
        ("<p>For Immediate Release: April 10, 2015</p>", "en", "2015-04-10"),
        ('<p>Last updated: 2 May 2024</p><p class="meta">Published 30 April 2024</p>', "en",
         "2024-04-30"),
        ('<header><time datetime="2023-04-04T10:00:00+02:00">4. April</time></header>', "de",
         "2023-04-04"),
    ],
)
def test_the_lead_date_wins_over_a_newer_sidebar(lead: str, lang: str, expected: str) -> None:
    article = extract_article(page(lead, lang=lang))
    assert article.published_at is not None
    assert article.published_at.date() == dt.date.fromisoformat(expected)


def test_a_page_without_a_date_gives_none_not_the_copyright_year() -> None:
    html = page("").replace(SIDEBAR, "")
    article = extract_article(html)
    assert article.published_at is None


def test_a_date_in_running_prose_is_not_the_statement_date() -> None:
    lead = (
        "<p>" + "The cabinet adopted the draft law today after long consultations with the "
        "federal states and the social partners, and the law shall enter into force on "
        "1 January 2026, the minister said in Berlin.</p>"
    )
    tree = lxml.html.fromstring(page(lead).replace(SIDEBAR, ""))
    assert find_lead_date(tree) is None


def test_structured_metadata_is_left_to_htmldate() -> None:
    head = '<meta property="article:published_time" content="2024-02-07T09:00:00+01:00">'
    tree = lxml.html.fromstring(page("<p>Paris, le 9 février 2024</p>", head=head))
    dates = read_page(tree)
    assert dates.structured
    assert dates.choose("2024-02-07") == "2024-02-07"
