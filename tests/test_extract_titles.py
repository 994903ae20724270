"""Titles: the statement's own headline, whichever side of `<title>` the site name is on."""

from __future__ import annotations

import pytest

from monitor.extract.article import extract_article
from monitor.extract.titles import clean_title

BODY = (
    "<p>The ministry said the delegation would meet its counterparts to discuss the security "
    "situation in the region and the next steps of the joint working group on Monday.</p>"
    "<p>The sides agreed to continue contacts at the expert level and to report on the progress "
    "made at the next ministerial meeting, according to the statement.</p>"
)


def page(title: str, site: str, content: str) -> str:
    return (
        f"<html><head><title>{title}</title></head><body>"
        f'<header><a class="logo" href="/">{site}</a><nav><a href="/news">News</a></nav></header>'
        f"<main>{content}{BODY}</main><footer>Contact</footer></body></html>"
    )


@pytest.mark.parametrize(
    ("title", "site", "content", "expected"),
    [
        ("Auswärtiges Amt: Außenministerin reist nach Kiew", "Auswärtiges Amt",
         "<p>21.05.2024 - Artikel</p>", "Außenministerin reist nach Kiew"),
        ("GOV.UK - UK statement on the humanitarian situation", "GOV.UK",
         "<p>Press release</p>", "UK statement on the humanitarian situation"),
        ("Bundesministerium des Innern - Neue Regeln für den Katastrophenschutz",
         "Bundesministerium des Innern",
         "<h1>Press releases</h1><h2>Neue Regeln für den Katastrophenschutz</h2>",
         "Neue Regeln für den Katastrophenschutz"),
        ("President of Russia: Meeting with Government members", "President of Russia",
         "<h1>Meeting with Government members</h1>", "Meeting with Government members"),
        ("Statement on the talks | Ministry of Foreign Affairs", "Ministry of Foreign Affairs",
         "<h1>Statement on the talks</h1>", "Statement on the talks"),
    ],
)
def test_the_headline_without_the_site_name_in_either_order(
    title: str, site: str, content: str, expected: str
) -> None:
    assert extract_article(page(title, site, content)).title == expected


def test_a_topic_before_a_colon_is_part_of_the_headline() -> None:
    assert clean_title("Statement: the ministry on the talks") == "Statement: the ministry on the talks"
    assert clean_title("Ukraine: UN chief calls for calm", site_names=["UN News"]) == (
        "Ukraine: UN chief calls for calm"
    )


def test_a_site_name_before_a_colon_is_dropped() -> None:
    assert clean_title("Auswärtiges Amt: Erklärung zur Lage", site_names=["Auswärtiges Amt"]) == (
        "Erklärung zur Lage"
    )
