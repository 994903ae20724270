"""Listing pages without a selector: the main list found by structure (issue 16 §1)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.sources import parse_listing
from monitor.sources.base import html_root
from monitor.sources.listing import _link
from monitor.sources.listing_blocks import find_main_list
from monitor.sources.listing_dates import find_date
from monitor.sources.listing_urls import statement_url

BASE = "https://gov.example"
DEVSET = Path(__file__).resolve().parent.parent / "bench" / "listings"


def day(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


# --- dates printed next to links ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "day_first", "expected"),
    [
        ("04/10/15", False, "2015-04-10"),
        ("04/10/15", True, "2015-10-04"),
        ("13/04/2015", False, "2015-04-13"),  # no 13th month: day first whatever the page says
        ("April 10, 2015", False, "2015-04-10"),
        ("Apr. 10th, 2015", False, "2015-04-10"),
        ("10.04.2015", False, "2015-04-10"),
        ("10.04.2015 (12:31)", False, "2015-04-10"),
        ("2015-04-10T09:12:00", False, "2015-04-10"),
        ("Publication : 10 avril 2015", True, "2015-04-10"),
        ("le 6 févr. 2015", True, "2015-02-06"),
        ("10. April 2015", True, "2015-04-10"),
        ("3. März 2015", True, "2015-03-03"),
        ("10 de abril de 2015", True, "2015-04-10"),
        ("10 апреля 2015 г.", True, "2015-04-10"),
        ("1 Декабря 2014", True, "2014-12-01"),
        # The first date printed wins, whatever its form.
        ("01.04.2015 Замечания принимаются до 15 апреля 2015 года", True, "2015-04-01"),
    ],
)
def test_dates_in_the_forms_listing_pages_print(text: str, day_first: bool, expected: str) -> None:
    assert find_date(text, day_first=day_first) == day(expected)


@pytest.mark.parametrize("text", ["", "Version 1.2.3", "31.02.2015", "Call 555-12-34", "May we"])
def test_no_date_where_there_is_none(text: str) -> None:
    assert find_date(text) is None


@given(st.text(max_size=200))
def test_find_date_never_raises(text: str) -> None:
    find_date(text)


# --- which URLs may be statements -----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"{BASE}/index.php?option=com_content&view=article&id=314:slug&catid=8&Itemid=101",
        f"{BASE}/index.cfm?p=PressReleases&ContentRecord_id=9F2B-19B9&ContentType_id=2B9B",
        f"{BASE}/?p=1201",
        f"{BASE}/PressReleaseDetails.aspx?id=1874",
        f"{BASE}/news/2015/pr0410.htm",
        f"{BASE}/news_detail.php?id=2291",
        f"{BASE}/press/news/48211/",
        f"{BASE}/news/more.htm?id=12017653@egNews",
        f"{BASE}/media-center/press-releases/doe-hosts-town-hall",
    ],
)
def test_real_statement_url_forms(url: str) -> None:
    assert statement_url(url, f"{BASE}/news/")


@pytest.mark.parametrize(
    "url",
    [
        f"{BASE}/index.php?option=com_content&view=category&id=8&Itemid=101",
        f"{BASE}/issues/health-care-for-working-families",
        f"{BASE}/tag/energy/",
        f"{BASE}/category/press-releases/",
        f"{BASE}/fr/taxonomy/term/12",
        f"{BASE}/topics/defence",
        f"{BASE}/contact-us",
        f"{BASE}/news/page/2/",
        f"{BASE}/news/?page=2",
        f"{BASE}/news/?PAGEN_1=2",
        f"{BASE}/index.php/actualites?start=4",
        f"{BASE}/news/index.htm",
        f"{BASE}/",
        f"{BASE}/news/",  # the listing page itself
    ],
)
def test_section_and_pagination_urls_are_not_statements(url: str) -> None:
    assert not statement_url(url, f"{BASE}/news/")


# --- the main list --------------------------------------------------------------------------


def listing(body: str, url: str = f"{BASE}/news/") -> list[tuple[str | None, str | None, str]]:
    parsed = parse_listing(body.encode(), source_id="gov", feed_url=url)
    assert parsed.error is None
    return [
        (c.url, c.title, c.published_at.date().isoformat() if c.published_at else "-")
        for c in parsed.entries
    ]


PAGE = """<!DOCTYPE html><html lang="en"><head><title>News</title></head><body>
<div id="menu"><ul class="menu">
 <li><a href="/about-the-ministry-and-its-departments">About the ministry and its many departments</a></li>
 <li><a href="/services/apply-for-a-permit-online">Apply for a permit online today</a></li></ul></div>
<div id="content"><h1>News</h1>
 <div class="lead"><h2><a href="/news/minister-opens-the-new-bridge-over-the-river">Minister opens the
  new bridge over the river</a></h2><span class="date">April 11, 2015</span></div>
 <ul class="news">
  <li class="item first"><span>04/10/15</span> <a href="/news/budget-is-approved">Budget is approved by
   the cabinet</a> <a href="/news/budget-is-approved">Read more</a></li>
  <li class="item"><span>04/09/15</span> <a href="../news/envoy">Minister meets the envoy of Ruritania</a></li>
  <li class="item last"><span>04/08/15</span> <a href="/news/item.php?id=7">Statement on the floods</a></li>
 </ul>
 <div class="pager"><a href="/news/?page=2">Next page of the news</a></div>
</div>
<div class="sidebar"><h3>Issues</h3><ul>
 <li><a href="/issues/jobs-and-the-economy-of-the-regions">Jobs and the economy of the regions</a></li>
 <li><a href="/issues/health-care-for-working-families">Health care for working families</a></li>
 <li><a href="/policy/water-and-the-environment-in-rural-areas">Water and the environment in rural areas</a></li>
</ul></div></body></html>"""


def test_the_main_list_with_its_featured_newest_item_and_dates() -> None:
    assert listing(PAGE) == [
        (f"{BASE}/news/minister-opens-the-new-bridge-over-the-river",
         "Minister opens the new bridge over the river", "2015-04-11"),
        (f"{BASE}/news/budget-is-approved", "Budget is approved by the cabinet", "2015-04-10"),
        (f"{BASE}/news/envoy", "Minister meets the envoy of Ruritania", "2015-04-09"),
        (f"{BASE}/news/item.php?id=7", "Statement on the floods", "2015-04-08"),
    ]  # fmt: skip


def test_the_choice_is_explained() -> None:
    root = html_root(PAGE.encode(), None)
    assert root is not None
    url = f"{BASE}/news/"
    found = find_main_list(root, page_url=url, resolve=lambda a: _link(a, url, page_url=url))
    assert found is not None
    assert found.path.endswith("ul.news > li.item")
    assert "3 repeated <li.item> blocks" in found.reason and "100% with a date" in found.reason
    assert "1 featured headline" in found.reason


def test_a_dl_list_takes_the_date_before_each_link() -> None:
    page = """<html lang="de"><body><div id="content"><dl>
      <dt>10.04.2015</dt><dd><a href="/presse/2015/ministerin-besucht-mali.html">Ministerin besucht
      Mali</a></dd><dt>08.04.2015</dt><dd><a href="/presse/2015/ruestungsbericht.html">Erster
      Rüstungsbericht vorgelegt</a></dd><dt>01.04.2015</dt><dd><a href="/presse/2015/agenda.html">Agenda
      Attraktivität tritt in Kraft</a></dd></dl></div></body></html>"""
    assert [date for _, _, date in listing(page)] == ["2015-04-10", "2015-04-08", "2015-04-01"]


def test_a_flat_list_takes_the_date_after_each_headline() -> None:
    page = """<html><body><div id="content"><h1>Releases</h1>
      <h3><a href="2015/pr0410.htm">Secretary announces export centers</a></h3><p>April 10, 2015</p>
      <h3><a href="2015/pr0407.htm">Statement on the trade figures</a></h3><p>April 7, 2015</p>
      <h3><a href="2015/pr0331.htm">Grants for coastal resilience</a></h3><p>March 31, 2015</p>
      </div></body></html>"""
    assert listing(page, f"{BASE}/news/index.htm") == [
        (f"{BASE}/news/2015/pr0410.htm", "Secretary announces export centers", "2015-04-10"),
        (f"{BASE}/news/2015/pr0407.htm", "Statement on the trade figures", "2015-04-07"),
        (f"{BASE}/news/2015/pr0331.htm", "Grants for coastal resilience", "2015-03-31"),
    ]


def test_a_selector_or_a_link_pattern_still_wins() -> None:
    by_selector = parse_listing(
        PAGE.encode(), source_id="gov", feed_url=f"{BASE}/news/", selector="div.sidebar a"
    )
    assert len(by_selector.entries) == 3
    assert by_selector.entries[0].url == f"{BASE}/issues/jobs-and-the-economy-of-the-regions"
    by_pattern = parse_listing(
        PAGE.encode(), source_id="gov", feed_url=f"{BASE}/news/", link_pattern=r"/policy/"
    )
    assert [c.url for c in by_pattern.entries] == [
        f"{BASE}/policy/water-and-the-environment-in-rural-areas"
    ]


def test_a_page_with_no_run_of_blocks_gives_no_links() -> None:
    page = """<html><body><div id="content"><h1>Statement on the floods</h1>
      <p>The ministry <a href="/news/2015/earlier-statement-on-the-rain">said earlier</a> that the
      rain would continue.</p></div></body></html>"""
    assert listing(page) == []


# --- the dev set in bench/listings: the targets ---------------------------------------


def test_dev_set_targets() -> None:
    truth = json.loads((DEVSET / "truth.json").read_text(encoding="utf-8"))
    items = taken = 0
    for name, page in truth.items():
        if name.startswith("_"):
            continue
        parsed = parse_listing(
            (DEVSET / name).read_bytes(), source_id="bench", feed_url=page["url"]
        )
        if page["kind"] == "article":
            assert len(parsed.entries) <= 5, name  # a handful, not the navigation
            continue
        newest_url, newest_title, _ = page["items"][0]
        by_url = {c.url: c.title for c in parsed.entries}
        assert by_url.get(newest_url) == newest_title, name
        items += len(page["items"])
        taken += len(parsed.entries)
    assert taken <= 1.2 * items


def test_runs_in_page_furniture_are_never_the_main_list() -> None:
    nav = "".join(f'<li><a href="/section/{i}/news-of-the-section">Section {i}</a></li>' for i in range(9))
    page = f"""<html lang="en"><body><header><nav><ul>{nav}</ul></nav></header>
      <main><article><h1>Statement on the floods</h1><p>The ministry said today that the rain
      would continue.</p></article></main>
      <aside><h2>Related news</h2><ul><li><a href="/news/minister-visits-the-regional-office">Minister
      visits the regional office</a></li><li><a href="/news/annual-report-published-today">Annual
      report published today</a></li></ul></aside>
      <div id="secondary" class="widget-area"><ul><li><a href="/news/one-more-statement-here">One
      more statement here</a></li><li><a href="/news/and-another-statement-here">And another
      statement here</a></li></ul></div></body></html>"""
    assert listing(page) == []
